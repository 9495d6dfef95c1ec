/**
 * The fitting objective of Hoffmann et al. 2022 (arXiv 2203.15556), approach 3:
 *   sum_i w_i * Huber_delta(log Lhat_i - log L_i),
 *   Huber_delta(r) = r^2 / 2 if |r| <= delta, else delta * (|r| - delta / 2)
 * (delta = 1e-3 by default, as theirs; scipy.special.huber is the same function). Summed, not
 * averaged, following Besiroglu et al. 2024 (arXiv 2404.10102). Weights w_i are the multiplicities
 * of a bootstrap resample (1 for a plain fit).
 */
import { logPredict, type Law } from './law.js';
import type { Objective } from './lbfgs.js';
import { features, type Point } from './points.js';

export const DEFAULT_HUBER_DELTA = 1e-3;

export function huber(r: number, delta: number): number {
  const a = Math.abs(r);
  return a <= delta ? 0.5 * r * r : delta * (a - 0.5 * delta);
}

export function huberSlope(r: number, delta: number): number {
  return Math.abs(r) <= delta ? r : delta * Math.sign(r);
}

export function checkDelta(delta: number): void {
  if (!(delta > 0) || !Number.isFinite(delta)) throw new Error(`Huber delta must be a positive number, got ${delta}`);
}

/** The objective and its analytic gradient over the law's internal parameters. */
export function makeObjective(law: Law, points: readonly Point[], delta = DEFAULT_HUBER_DELTA, weights?: ArrayLike<number>): Objective {
  checkDelta(delta);
  const F = points.map(features);
  const logL = points.map((p) => Math.log(p.loss));
  const work = new Float64Array(law.terms.length);
  return (x) => {
    const grad = new Float64Array(x.length);
    let value = 0;
    for (let i = 0; i < F.length; i++) {
      const w = weights ? weights[i] : 1;
      if (w === 0) continue;
      // The gradient of the term needs the residual first, so predict, then add grad with the slope.
      const r = logPredict(law, x, F[i], undefined, 1, work) - logL[i];
      value += w * huber(r, delta);
      logPredict(law, x, F[i], grad, w * huberSlope(r, delta), work);
    }
    return { value, grad };
  };
}

/** Objective value only (for screening the start grid). */
export function objectiveValue(law: Law, F: readonly Float64Array[], logL: readonly number[], x: Float64Array, delta: number, work: Float64Array): number {
  let value = 0;
  for (let i = 0; i < F.length; i++) value += huber(logPredict(law, x, F[i], undefined, 1, work) - logL[i], delta);
  return value;
}
