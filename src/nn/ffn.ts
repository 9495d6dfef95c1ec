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
   * so the same seed gives the same output. Layers that draw nothing ignore it. `seqLen` S says the
   * T tokens are T/S sequences of S consecutive tokens (default: one sequence), for layers whose
   * training signal is per sequence (MoE's sequence-level balancing loss).
   */
  abstract forward(x: Tensor, seed?: number, seqLen?: number): Tensor;
  /** Auxiliary training loss of the last forward (already scaled by its coefficient), if any. */
  auxLoss(): Tensor | null {
    return null;
  }
  /**
   * Statistics for metrics (load balance, drops, ...). MoE summarises every forward since the last
   * resetStats() (so an evaluation's dead experts are those no token of it reached); PEER summarises
   * its evaluation-mode forwards since then (expert coverage and KL from uniform, per layer and head).
   */
  stats(): FfnStats | null {
    return null;
  }
  /** Starts a new statistics window (the trainer calls it before each evaluation). */
  resetStats(): void {}
  /**
   * Called by trainStep after every optimizer step, for state updated from the step's routing
   * rather than by gradients (MoE's auxiliary-loss-free balancing bias).
   */
  afterStep(): void {}
}
