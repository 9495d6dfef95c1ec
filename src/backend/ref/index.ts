// The pure-TypeScript reference: every Kernels method, written for clarity. It is the oracle the
// native kernels are tested against and the fallback where the addon cannot be built. Each module
// spread here exports kernels only (helpers live in check.ts and math.ts), so `ref` has exactly
// the contract's names (a test compares them with KERNEL_NAMES).
import type { Kernels } from '../kernels.js';
import * as gemm from './gemm.js';
import * as elementwise from './elementwise.js';
import * as reduce from './reduce.js';
import * as norm from './norm.js';
import * as loss from './loss.js';
import * as attention from './attention.js';
import * as indexing from './indexing.js';
import * as optim from './optim.js';
import * as random from './random.js';
import * as peerRetrieve from './peer_retrieve.js';
import * as peerExperts from './peer_experts.js';
import * as peerRows from './peer_rows.js';
import * as batchnorm from './batchnorm.js';
import * as sparseAdam from './sparse_adam.js';
import * as routing from './routing.js';
import * as bf16 from './bf16.js';

let refThreads = 1;

export const ref: Kernels = {
  name: 'ref',
  cpuInfo: () => ({ isa: 'js', avx2: false, fma: false, avx512f: false, bf16: true }),
  getThreads: () => refThreads,
  setThreads: (n: number) => { refThreads = n; },
  ...gemm,
  ...elementwise,
  ...reduce,
  ...norm,
  ...loss,
  ...attention,
  ...indexing,
  ...optim,
  ...random,
  ...peerRetrieve,
  ...peerExperts,
  ...peerRows,
  ...batchnorm,
  ...sparseAdam,
  ...routing,
  ...bf16,
};
