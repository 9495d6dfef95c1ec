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
  /** x: [T, d] tokens (flattened batch) -> [T, d]. */
  abstract forward(x: Tensor): Tensor;
  /** Auxiliary training loss of the last forward (already scaled by its coefficient), if any. */
  auxLoss(): Tensor | null {
    return null;
  }
  /** Statistics of the last forward pass (load balance, drops, ...), for metrics. */
  stats(): FfnStats | null {
    return null;
  }
  /** Forward multiply-accumulates per token (the reference's FLOP convention). */
  abstract macsPerToken(): number;
}
