/**
 * The feed-forward slot of a transformer block. Dense MLP, MoE and PEER layers all implement this,
 * so the transformer never needs to know which one a layer holds.
 */
import type { Tensor } from '../tensor/index.js';
import { Module } from './module.js';

export interface FfnStats {
  [key: string]: number | number[];
}

export abstract class FeedForward extends Module {
  /**
   * x: [T, d] tokens (flattened batch) -> [T, d]. `seed` (a uint32) keys every random number this
   * call draws (e.g. MoE router jitter in training); a layer keeps no random state between calls,
   * so the same seed gives the same output. Layers that draw nothing ignore it.
   */
  abstract forward(x: Tensor, seed?: number): Tensor;
  /** Auxiliary training loss of the last forward (already scaled by its coefficient), if any. */
  auxLoss(): Tensor | null {
    return null;
  }
  /** Statistics of the last forward pass (load balance, drops, ...), for metrics. */
  stats(): FfnStats | null {
    return null;
  }
}
