/**
 * Fits a law by Hoffmann et al. 2022 approach 3: L-BFGS on the Huber objective (objective.ts) from
 * a grid of starting points, best result kept. The full grid (4500 starts for chinchilla) is first
 * screened by objective value and L-BFGS runs from the `starts` best grid points (plus any extra
 * starts): on the Chinchilla grid the screened fit reaches the same optimum as SciPy run from every
 * start (test/fit_golden.test.ts), at a fraction of the cost, which matters for the bootstrap.
 */
import { lbfgs, type LbfgsOptions, type LbfgsReason } from './lbfgs.js';
import { lawParams, type Law } from './law.js';
import { DEFAULT_HUBER_DELTA, makeObjective, objectiveValue, checkDelta } from './objective.js';
import { features, checkPoint, type Point } from './points.js';

export interface FitOptions {
  huberDelta?: number;
  /** L-BFGS runs from this many of the best grid points (default 10). */
  starts?: number;
  /** More starting points (internal vectors), e.g. a previous optimum. */
  extraStarts?: ArrayLike<number>[];
  /** Multiplicity of each point (bootstrap); default 1 each. */
  weights?: ArrayLike<number>;
  lbfgs?: LbfgsOptions;
}

export interface LawFit {
  law: string;
  /** Internal parameter vector (log-coefficients and exponents). */
  x: Float64Array;
  /** Parameters under their names in the formula. */
  params: Record<string, number>;
  objective: number;
  converged: boolean;
  reason: LbfgsReason;
  iterations: number;
  startsRun: number;
}

// max|grad| <= 1e-10 is at the round-off floor of these objectives (a Huber sum of ~1e-5 on noisy data):
// tighter, no step changes f any more and the line search fails instead.
export const FIT_LBFGS: LbfgsOptions = { gtol: 1e-10, ftol: 1e-15, maxIterations: 2000 };

/** Refuses data that cannot identify the law, with what to do about it. */
export function checkFitData(law: Law, points: readonly Point[]): void {
  points.forEach((p, i) => checkPoint(p, `point ${i + 1}`));
  if (points.length < law.internal.length + 1) {
    throw new Error(`law ${law.name} has ${law.internal.length} parameters and needs at least ${law.internal.length + 1} points; got ${points.length}`);
  }
  if (law.uses.sparsity && new Set(points.map((p) => p.sparsity)).size < 2) {
    throw new Error(`law ${law.name} needs points at two or more sparsity levels (dense-only data cannot separate its sparsity terms); use --law chinchilla for dense runs`);
  }
}

/** The grid points with the lowest objective, best first. */
export function screenGrid(law: Law, points: readonly Point[], delta: number, count: number, weights?: ArrayLike<number>): Float64Array[] {
  const F = points.map(features);
  const logL = points.map((p) => Math.log(p.loss));
  const keepF: Float64Array[] = [], keepL: number[] = [];
  F.forEach((f, i) => {
    for (let k = 0; k < (weights ? weights[i] : 1); k++) { keepF.push(f); keepL.push(logL[i]); }
  });
  const sizes = law.grid.map((g) => g.length);
  const total = sizes.reduce((a, b) => a * b, 1);
  const x = new Float64Array(sizes.length);
  const work = new Float64Array(law.terms.length);
  const scored: Array<{ value: number; x: Float64Array }> = [];
  for (let n = 0; n < total; n++) {
    let r = n;
    for (let j = sizes.length - 1; j >= 0; j--) { x[j] = law.grid[j][r % sizes[j]]; r = Math.floor(r / sizes[j]); }
    const value = objectiveValue(law, keepF, keepL, x, delta, work);
    if (!Number.isFinite(value)) continue;
    if (scored.length < count || value < scored[scored.length - 1].value) {
      scored.push({ value, x: Float64Array.from(x) });
      scored.sort((a, b) => a.value - b.value);
      if (scored.length > count) scored.pop();
    }
  }
  return scored.map((s) => s.x);
}

export function fitLaw(law: Law, points: readonly Point[], opts: FitOptions = {}): LawFit {
  const delta = opts.huberDelta ?? DEFAULT_HUBER_DELTA;
  checkDelta(delta);
  if (!opts.weights) checkFitData(law, points);
  const f = makeObjective(law, points, delta, opts.weights);
  const starts = [...(opts.extraStarts ?? []).map((s) => Float64Array.from(s)), ...screenGrid(law, points, delta, opts.starts ?? 10, opts.weights)];
  const runs = starts.map((x0) => lbfgs(f, x0, { ...FIT_LBFGS, ...opts.lbfgs })).filter((r) => Number.isFinite(r.value));
  const lowest = Math.min(...runs.map((r) => r.value));
  // Starts that reach the same optimum differ only in round-off; prefer one that met a stop
  // criterion over one whose line search ran into that round-off floor.
  const tie = (v: number) => v <= lowest + 1e-10 * Math.abs(lowest);
  const pick = runs.find((r) => tie(r.value) && r.converged) ?? runs.find((r) => r.value === lowest);
  const best: LawFit | null = pick
    ? { law: law.name, x: pick.x, params: lawParams(law, pick.x), objective: pick.value, converged: pick.converged, reason: pick.reason, iterations: pick.iterations, startsRun: starts.length }
    : null;
  if (!best) throw new Error(`law ${law.name}: no start gave a finite objective; check the data (losses, params, tokens)`);
  return best;
}
