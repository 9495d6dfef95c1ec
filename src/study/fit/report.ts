/**
 * A fit with what it is worth: each parameter with a bootstrap 95% interval (points resampled with
 * replacement, law refitted, 2.5th and 97.5th percentiles; Besiroglu et al. 2024 report Chinchilla's
 * parameters this way), R^2 on the loss, per-point residuals, and an extrapolation check: refit
 * without the points at the largest compute and predict them.
 */
import { fitLaw, checkFitData, type FitOptions, type LawFit } from './fit.js';
import { logPredict, type Law } from './law.js';
import { DEFAULT_HUBER_DELTA } from './objective.js';
import { computeOf, features, type Point } from './points.js';
import { Rng } from '../../util/random.js';

export interface ParamEstimate { name: string; value: number; lo: number; hi: number }

export interface Residual { point: Point; compute: number; predicted: number; residual: number; logResidual: number }

export type Extrapolation =
  | { heldOut: number; minCompute: number; points: Array<{ point: Point; compute: number; predicted: number; relError: number }>; meanAbsRelError: number }
  | { skipped: string };

export interface FitReport {
  law: string;
  formula: string;
  citation: string;
  huberDelta: number;
  points: number;
  fit: LawFit;
  params: ParamEstimate[];
  r2: number;
  residuals: Residual[];
  extrapolation: Extrapolation;
  bootstrap: { samples: number; failed: number; seed: number };
}

export interface ReportOptions extends FitOptions {
  /** Bootstrap resamples (default 100; 0 disables the intervals). */
  bootstrap?: number;
  seed?: number;
  /** Points with compute >= max / heldOutFactor are held out for the extrapolation check (default 1.05). */
  heldOutFactor?: number;
}

export function predictLoss(law: Law, x: Float64Array, p: Point): number {
  return Math.exp(logPredict(law, x, features(p)));
}

export function rSquared(observed: readonly number[], predicted: readonly number[]): number {
  const mean = observed.reduce((a, b) => a + b, 0) / observed.length;
  let res = 0, tot = 0;
  observed.forEach((o, i) => { res += (o - predicted[i]) ** 2; tot += (o - mean) ** 2; });
  return tot > 0 ? 1 - res / tot : NaN;
}

function percentile(sorted: readonly number[], q: number): number {
  const pos = q * (sorted.length - 1), i = Math.floor(pos), frac = pos - i;
  return i + 1 < sorted.length ? sorted[i] * (1 - frac) + sorted[i + 1] * frac : sorted[i];
}

/** Bootstrap draws of the formula's parameters; each resample refits from the full fit's optimum and the 2 best grid points. */
export function bootstrapParams(law: Law, points: readonly Point[], full: LawFit, samples: number, seed: number, o: FitOptions = {}) {
  const rng = new Rng(seed, 7); // stream 7: bootstrap resampling
  const draws: Record<string, number>[] = [];
  let failed = 0;
  for (let b = 0; b < samples; b++) {
    const w = new Float64Array(points.length);
    for (let i = 0; i < points.length; i++) w[rng.int(points.length)]++;
    try {
      const r = fitLaw(law, points, { ...o, weights: w, starts: 2, extraStarts: [full.x] });
      if (Object.values(r.params).every(Number.isFinite)) draws.push(r.params); else failed++;
    } catch {
      failed++;
    }
  }
  return { draws, failed };
}

export function extrapolationCheck(law: Law, points: readonly Point[], o: FitOptions & { heldOutFactor?: number } = {}): Extrapolation {
  const C = points.map(computeOf);
  const maxC = Math.max(...C), cut = maxC / (o.heldOutFactor ?? 1.05);
  const train = points.filter((_, i) => C[i] < cut), test = points.filter((_, i) => C[i] >= cut);
  try {
    checkFitData(law, train);
  } catch (e) {
    return { skipped: `without the ${test.length} point(s) at the largest compute: ${(e as Error).message}` };
  }
  const fit = fitLaw(law, train, o);
  const rows = test.map((point) => {
    const predicted = predictLoss(law, fit.x, point);
    return { point, compute: computeOf(point), predicted, relError: (predicted - point.loss) / point.loss };
  });
  return { heldOut: rows.length, minCompute: cut, points: rows, meanAbsRelError: rows.reduce((a, r) => a + Math.abs(r.relError), 0) / rows.length };
}

export function fitReport(law: Law, points: readonly Point[], o: ReportOptions = {}): FitReport {
  const huberDelta = o.huberDelta ?? DEFAULT_HUBER_DELTA;
  const samples = o.bootstrap ?? 100, seed = o.seed ?? 0;
  if (!(Number.isInteger(samples) && samples >= 0)) throw new Error(`bootstrap samples must be a non-negative integer, got ${samples}`);
  const fit = fitLaw(law, points, o);
  const predicted = points.map((p) => predictLoss(law, fit.x, p));
  const { draws, failed } = samples > 0 ? bootstrapParams(law, points, fit, samples, seed, o) : { draws: [], failed: 0 };
  const params = law.params.map(({ name }) => {
    const v = draws.map((d) => d[name]).sort((a, b) => a - b);
    return { name, value: fit.params[name], lo: v.length ? percentile(v, 0.025) : NaN, hi: v.length ? percentile(v, 0.975) : NaN };
  });
  return {
    law: law.name, formula: law.formula, citation: law.citation, huberDelta, points: points.length, fit, params,
    r2: rSquared(points.map((p) => p.loss), predicted),
    residuals: points.map((point, i) => ({
      point, compute: computeOf(point), predicted: predicted[i], residual: point.loss - predicted[i],
      logResidual: Math.log(predicted[i]) - Math.log(point.loss),
    })),
    extrapolation: extrapolationCheck(law, points, o),
    bootstrap: { samples, failed, seed },
  };
}
