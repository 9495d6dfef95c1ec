// The tensor library: storage and views, autograd, and the op set the models are built from.
export * from './tensor.js';
export { backward, noGrad, isGradEnabled } from './autograd.js';
export * from './ops/elementwise.js';
export * from './ops/reduce.js';
export * from './ops/matmul.js';
export * from './ops/nn.js';
export * from './ops/indexing.js';
export * from './ops/random.js';
export * from './ops/moe.js';
export * from './ops/router_loss.js';
export * from './ops/routing.js';
export * from './runtime.js';
export * from './ops/peer.js';
export * from './ops/batchnorm.js';
export { adviseHugePages } from './memory.js';
export { stepScope, poolStats, resetPoolStats, configurePool, clearPool, release, type PoolStats } from './pool.js';
export * from './ops/optim.js';
