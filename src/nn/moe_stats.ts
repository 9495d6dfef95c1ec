/**
 * Routing statistics of an MoE layer summed over a window of forward passes (an evaluation, say), so
 * a dead expert means "no token of the whole window", not "none in the last batch".
 *
 * Per window: tokens T, routed assignments A (slots before drops), kept assignments, per-expert
 * assignment counts n_e, tokens that reached no expert, summed per-token router entropy and the
 * per-forward router loss values.
 */
import type { FfnStats } from './ffn.js';

export interface ForwardRouting {
  T: number;
  /** Assignments per expert before drops. [E] */
  counts: Int32Array;
  /** Assignments that were processed (after capacity drops). */
  kept: number;
  /** Source token of every processed assignment (to find tokens no expert saw). */
  tok: Int32Array;
  /** Routing distribution [T, E] (softmax, or sigmoid scores normalised per token). */
  p: Float32Array;
  /** Unweighted balance loss (null when the routing has none) and z-loss. */
  balance: number | null;
  z: number;
}

export class RoutingStats {
  private tokens = 0;
  private assigned = 0;
  private kept = 0;
  private unrouted = 0;
  private entropy = 0;
  private forwards = 0;
  private balanceSum = 0;
  private balanceForwards = 0;
  private zSum = 0;
  private counts: Float64Array;

  constructor(readonly experts: number) {
    this.counts = new Float64Array(experts);
  }

  reset(): void {
    this.tokens = this.assigned = this.kept = this.unrouted = this.entropy = 0;
    this.forwards = this.balanceSum = this.balanceForwards = this.zSum = 0;
    this.counts.fill(0);
  }

  add(r: ForwardRouting): void {
    const E = this.experts;
    this.tokens += r.T;
    for (let e = 0; e < E; e++) {
      this.counts[e] += r.counts[e];
      this.assigned += r.counts[e];
    }
    this.kept += r.kept;
    const seen = new Uint8Array(r.T);
    for (const t of r.tok) seen[t] = 1;
    for (let t = 0; t < r.T; t++) this.unrouted += 1 - seen[t];
    for (let i = 0; i < r.T * E; i++) {
      const p = r.p[i];
      if (p > 0) this.entropy -= p * Math.log(p);
    }
    this.forwards++;
    this.zSum += r.z;
    if (r.balance !== null) {
      this.balanceSum += r.balance;
      this.balanceForwards++;
    }
  }

  /**
   * load[e] = n_e / A; utilisation[e] = n_e / (A / E) (1 = its fair share, 0 = dead); imbalance =
   * max utilisation (max/mean load); deadExperts = experts with n_e = 0; dropRate = dropped / A;
   * unroutedTokens = fraction of tokens no expert processed; routerEntropy = mean per token (nats);
   * balanceLoss, zLoss = means over the window's forwards (balanceLoss omitted when not computed).
   * `bias` (loss-free balancing) adds the bias per expert and its range.
   */
  summary(bias?: Float32Array): FfnStats | null {
    if (!this.forwards) return null;
    const E = this.experts, A = this.assigned;
    const load = Array.from(this.counts, (n) => (A ? n / A : 0));
    const utilisation = load.map((l) => l * E);
    const out: FfnStats = {
      tokens: this.tokens,
      load,
      utilisation,
      imbalance: Math.max(...utilisation),
      deadExperts: utilisation.filter((u) => u === 0).length,
      dropRate: A ? (A - this.kept) / A : 0,
      unroutedTokens: this.tokens ? this.unrouted / this.tokens : 0,
      routerEntropy: this.tokens ? this.entropy / this.tokens : 0,
      zLoss: this.zSum / this.forwards,
    };
    if (this.balanceForwards) out.balanceLoss = this.balanceSum / this.balanceForwards;
    if (bias) {
      out.bias = Array.from(bias);
      out.biasMin = Math.min(...bias);
      out.biasMax = Math.max(...bias);
    }
    return out;
  }
}
