/** The dense feed-forward block: x -> fc2(gelu(fc1(x))), d -> hidden -> d. */
import { Tensor, gelu } from '../tensor/index.js';
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
    return this.fc2.forward(gelu(this.fc1.forward(x))); // [T, d] -> [T, hidden] -> [T, d]
  }
}
