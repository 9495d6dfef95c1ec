/**
 * A scaling law as moelab fits it: log L = LSE_k(t_k), every term t_k linear in the internal
 * parameters. A power-law term A / N^alpha is exp(a - alpha log N) with A = e^a, so positive
 * coefficients are fitted in log space and exponents directly, as in Hoffmann et al. 2022
 * (arXiv 2203.15556), approach 3: log L = LSE(a - alpha log N, b - beta log D, e).
 * Exponents are free reals: the sign convention of a formula (a/N^alpha vs a N^alpha) only flips
 * the fitted exponent's sign.
 */
import { FEATURE_INDEX, type Feature } from './points.js';

/** One factor of a term: coef * x[param] * feature. */
export interface TermPart {
  param: number;
  feature: number;
  coef: number;
}

export interface LawParam {
  /** Name in the formula (E, A, alpha, ...). */
  name: string;
  /** Internal parameter it comes from. */
  internal: number;
  /** true: the formula's value is exp(internal) (a positive coefficient); false: the internal value itself. */
  exp: boolean;
}

export interface Law {
  name: string;
  formula: string;
  citation: string;
  /** Internal parameter names, in the order of the optimised vector. */
  internal: string[];
  params: LawParam[];
  terms: TermPart[][];
  /** Values of each internal parameter for the grid of starting points (Cartesian product). */
  grid: number[][];
  /** Which inputs the law reads, to refuse data that cannot identify it. */
  uses: { sparsity: boolean; compute: boolean };
}

/** Builds a law from a compact description: terms as lists of [internal name, feature, coef]. */
export function defineLaw(d: {
  name: string;
  formula: string;
  citation: string;
  internal: Record<string, number[]>;
  params: Array<[name: string, internal: string, exp: boolean]>;
  terms: Array<Array<[internal: string, feature: Feature, coef: number]>>;
}): Law {
  const names = Object.keys(d.internal);
  const idx = (n: string) => {
    const i = names.indexOf(n);
    if (i < 0) throw new Error(`law ${d.name}: unknown internal parameter '${n}'`);
    return i;
  };
  const terms = d.terms.map((t) => t.map(([p, f, coef]) => ({ param: idx(p), feature: FEATURE_INDEX[f], coef })));
  const used = new Set(terms.flat().map((t) => t.feature));
  return {
    name: d.name,
    formula: d.formula,
    citation: d.citation,
    internal: names,
    params: d.params.map(([name, internal, exp]) => ({ name, internal: idx(internal), exp })),
    terms,
    grid: names.map((n) => d.internal[n]),
    uses: { sparsity: used.has(FEATURE_INDEX.log1mS), compute: used.has(FEATURE_INDEX.logC) },
  };
}

/**
 * log of the predicted loss at one point (features F). When grad is given, adds
 * weight * d(log L)/dx into it: d(LSE)/dt_k is softmax(t)_k.
 */
export function logPredict(law: Law, x: Float64Array, F: Float64Array, grad?: Float64Array, weight = 1, work?: Float64Array): number {
  const K = law.terms.length;
  const t = work ?? new Float64Array(K);
  let max = -Infinity;
  for (let k = 0; k < K; k++) {
    let s = 0;
    for (const part of law.terms[k]) s += part.coef * x[part.param] * F[part.feature];
    t[k] = s;
    if (s > max) max = s;
  }
  let sum = 0;
  for (let k = 0; k < K; k++) sum += Math.exp(t[k] - max);
  const out = max + Math.log(sum);
  if (grad) {
    for (let k = 0; k < K; k++) {
      const w = (weight * Math.exp(t[k] - max)) / sum;
      for (const part of law.terms[k]) grad[part.param] += w * part.coef * F[part.feature];
    }
  }
  return out;
}

/** The formula's parameter values (E, A, alpha, ...) from an internal vector. */
export function lawParams(law: Law, x: ArrayLike<number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of law.params) out[p.name] = p.exp ? Math.exp(x[p.internal]) : x[p.internal];
  return out;
}

/** The internal vector from the formula's parameter values; throws on a missing or non-positive value. */
export function internalFromParams(law: Law, values: Record<string, number>): Float64Array {
  const x = new Float64Array(law.internal.length);
  for (const p of law.params) {
    const v = values[p.name];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`law ${law.name}: parameter ${p.name} missing or not a number`);
    if (p.exp && !(v > 0)) throw new Error(`law ${law.name}: parameter ${p.name} must be positive, got ${v}`);
    x[p.internal] = p.exp ? Math.log(v) : v;
  }
  return x;
}
