// BatchNorm1d: the module that holds a BatchNorm's parameters and running statistics (the op is
// tensor/ops/batchnorm.ts). Parameter and buffer names follow torch's state_dict.
import { Tensor, zeros, full, batchNorm } from '../tensor/index.js';
import { Module } from './module.js';

/**
 * torch.nn.BatchNorm1d over the last axis of [T, C]: in training, normalises with the batch mean
 * and biased variance and updates running_mean / running_var (unbiased) with momentum 0.1; in
 * eval, normalises with the running statistics. eps 1e-5, affine weight (ones) and bias (zeros).
 */
export class BatchNorm1d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly running_mean: Tensor;
  readonly running_var: Tensor;
  readonly num_batches_tracked: Tensor;
  constructor(readonly C: number, readonly eps = 1e-5, readonly momentum = 0.1) {
    super();
    this.weight = this.param('weight', full([C], 1));
    this.bias = this.param('bias', zeros([C]));
    this.running_mean = this.buffer('running_mean', zeros([C]));
    this.running_var = this.buffer('running_var', full([C], 1));
    this.num_batches_tracked = this.buffer('num_batches_tracked', new Tensor(new Int32Array(1), []));
  }

  forward(x: Tensor): Tensor {
    const r = batchNorm(x, this.weight, this.bias, { mean: this.running_mean, var: this.running_var },
      { training: this.training, eps: this.eps, momentum: this.momentum });
    if (this.training) {
      this.running_mean.f32.set(r.running.mean.f32);
      this.running_var.f32.set(r.running.var.f32);
      (this.num_batches_tracked.data as Int32Array)[this.num_batches_tracked.offset]++;
    }
    return r.y;
  }
}
