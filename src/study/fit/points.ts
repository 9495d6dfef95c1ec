/**
 * One observed training run for a scaling-law fit, and the features the laws read from it.
 *
 * Compute: a point's training FLOPs are its `flops` when given, else 6 * N_active * D
 * (Kaplan et al. 2020; Hoffmann et al. 2022 use C = 6ND for dense models; Abnar et al. 2025,
 * appendix C, use C = 6 N_a D with N_a the active parameters of an MoE). N_active is
 * `activeParams` when given, else (1 - S) * N: the idealisation that every parameter sits in an
 * expert, which overstates the saving when attention and embeddings are dense.
 */

export interface Point {
  /** Total parameters N. */
  params: number;
  /** Training tokens D. */
  tokens: number;
  /** Fraction of inactive experts S in [0, 1) (Abnar et al. 2025); 0 for dense models. */
  sparsity: number;
  /** Final validation loss (nats/token). */
  loss: number;
  activeParams?: number;
  flops?: number;
  family?: string;
}

export function activeParams(p: Point): number {
  return p.activeParams ?? p.params * (1 - p.sparsity);
}

export function computeOf(p: Point): number {
  return p.flops ?? 6 * activeParams(p) * p.tokens;
}

/** Feature vector read by the laws' terms: index 0 is the constant 1. */
export const FEATURES = ['one', 'logN', 'logD', 'log1mS', 'logC'] as const;
export type Feature = (typeof FEATURES)[number];
export const FEATURE_INDEX: Record<Feature, number> = { one: 0, logN: 1, logD: 2, log1mS: 3, logC: 4 };

export function features(p: Point): Float64Array {
  return Float64Array.of(1, Math.log(p.params), Math.log(p.tokens), Math.log1p(-p.sparsity), Math.log(computeOf(p)));
}

/** Throws a clear error for a point that no law can use; `where` names it (file and line). */
export function checkPoint(p: Point, where: string): void {
  const bad = (field: string, why: string) => { throw new Error(`${where}: ${field} ${why}`); };
  if (!(p.params > 0) || !Number.isFinite(p.params)) bad('params', `must be a positive number, got ${p.params}`);
  if (!(p.tokens > 0) || !Number.isFinite(p.tokens)) bad('tokens', `must be a positive number, got ${p.tokens}`);
  if (!(p.sparsity >= 0 && p.sparsity < 1)) bad('sparsity', `must be in [0, 1) (fraction of inactive experts), got ${p.sparsity}`);
  if (!(p.loss > 0) || !Number.isFinite(p.loss)) bad('loss', `must be a positive number, got ${p.loss}`);
  if (p.activeParams !== undefined && !(p.activeParams > 0 && p.activeParams <= p.params)) {
    bad('active_params', `must be positive and at most params (${p.params}), got ${p.activeParams}`);
  }
  if (p.flops !== undefined && !(p.flops > 0 && Number.isFinite(p.flops))) bad('flops', `must be a positive number, got ${p.flops}`);
}
