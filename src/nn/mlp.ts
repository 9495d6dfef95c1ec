/** The dense feed-forward block: x -> fc2(gelu(fc1(x))), d -> hidden -> d, as one fused op (mlpGelu). */
import { Tensor, mlpGelu } from '../tensor/index.js';
import { FeedForward } from './ffn.js';
import { Linear } from './layers.js';

export class MLP extends FeedForward {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(readonly d: number, readonly hidden: number) {
    super();
    this.fc1 = this.child('fc1', new Linear(d, hidden));
    this.fc2 = this.child('fc2', new Linear(hidden, d));
  }
  forward(x: Tensor): Tensor {
    // [T, d] -> [T, hidden] -> [T, d]; GELU runs in the epilogues of fc1's GEMM and of d(hidden)'s
    return mlpGelu(x, this.fc1.weight, this.fc1.bias, this.fc2.weight, this.fc2.bias);
  }
}
