/**
 * What a fitted law says to do with a compute budget C (training FLOPs).
 *
 * Chinchilla (Hoffmann et al. 2022, arXiv 2203.15556, eq. 4 and appendix D.2): minimising
 * E + A/N^alpha + B/D^beta subject to C = 6ND gives
 *   G = (alpha A / (beta B))^(1/(alpha+beta)),  N*(C) = G (C/6)^(beta/(alpha+beta)),  D*(C) = (C/6) / N*.
 *
 * Abnar et al. 2025 (arXiv 2501.12370): the compute relation is C = 6 N_active D (their appendix C
 * compares this estimate with a finer FLOP count), with N_active = N * activeFraction(S). We use
 *   activeFraction(S) = f + (1 - f)(1 - S),
 * f the share of parameters outside the experts (always active; attention, embeddings). f = 0, the
 * default, is the idealisation N_active = (1 - S) N. Then
 *   S*(C)    = argmin over S in [0, Smax] and N of L(N, C / (6 N activeFraction(S)), S)
 *   S*(N; C) = argmin over S of L(N, C / (6 N activeFraction(S)), S)     (total parameters fixed)
 * found numerically (min1d.ts); an optimum on the edge of the search box is flagged.
 */
import { minimize1d } from './min1d.js';

export interface ChinchillaParams { E: number; A: number; B: number; alpha: number; beta: number }
export interface AbnarParams {
  a: number; b: number; c: number; d: number; e: number;
  alpha: number; beta: number; lambda: number; delta: number; gamma: number;
}

export function chinchillaLoss(p: ChinchillaParams, N: number, D: number): number {
  return p.E + p.A / N ** p.alpha + p.B / D ** p.beta;
}

export function abnarLoss(p: AbnarParams, N: number, D: number, S: number): number {
  const dense = 1 - S;
  return p.a / N ** p.alpha + p.b / D ** p.beta + p.c / dense ** p.lambda + p.d / (dense ** p.delta * N ** p.gamma) + p.e;
}

export interface Allocation { compute: number; params: number; tokens: number; loss: number; tokensPerParam: number }

export function chinchillaOptimal(p: ChinchillaParams, compute: number): Allocation {
  if (!(p.alpha > 0 && p.beta > 0)) throw new Error(`compute-optimal allocation needs alpha > 0 and beta > 0; the fit gave alpha=${p.alpha}, beta=${p.beta}`);
  const G = ((p.alpha * p.A) / (p.beta * p.B)) ** (1 / (p.alpha + p.beta));
  const N = G * (compute / 6) ** (p.beta / (p.alpha + p.beta));
  const D = compute / 6 / N;
  return { compute, params: N, tokens: D, loss: chinchillaLoss(p, N, D), tokensPerParam: D / N };
}

export interface SparsityOptions {
  /** Share of parameters outside the experts (always active), f above; default 0. */
  denseFraction?: number;
  /** Largest sparsity searched (default 0.999: S = 1 has no active expert). */
  maxSparsity?: number;
  /** Range of total parameters searched for S*(C) (default 1e3 .. C/6 / 1e3 tokens). */
  minParams?: number;
}

export interface SparsityOptimum {
  compute: number;
  sparsity: number;
  params: number;
  activeParams: number;
  tokens: number;
  loss: number;
  /**
   * The optimum is at the largest sparsity searched or on the edge of the parameter range, so the
   * law's true optimum may lie outside. (S* = 0 is not flagged: dense is a real answer.)
   */
  atBoundary: boolean;
}

function activeFraction(S: number, f: number): number {
  return f + (1 - f) * (1 - S);
}

function checkSparsityOptions(o: SparsityOptions): { f: number; sMax: number } {
  const f = o.denseFraction ?? 0, sMax = o.maxSparsity ?? 0.999;
  if (!(f >= 0 && f < 1)) throw new Error(`dense fraction must be in [0, 1), got ${f}`);
  if (!(sMax > 0 && sMax < 1)) throw new Error(`max sparsity must be in (0, 1), got ${sMax}`);
  return { f, sMax };
}

/** S*(N; C): the best sparsity for a model of N total parameters trained with compute C. */
export function abnarSparsityForParams(p: AbnarParams, compute: number, params: number, o: SparsityOptions = {}): SparsityOptimum {
  const { f, sMax } = checkSparsityOptions(o);
  const tokens = (S: number) => compute / (6 * params * activeFraction(S, f));
  const m = minimize1d((S) => abnarLoss(p, params, tokens(S), S), 0, sMax);
  const fr = activeFraction(m.x, f);
  return { compute, sparsity: m.x, params, activeParams: params * fr, tokens: tokens(m.x), loss: m.value, atBoundary: m.atBoundary && m.x > sMax / 2 };
}

/** S*(C): sparsity and total parameters that minimise the loss for compute C. */
export function abnarOptimalSparsity(p: AbnarParams, compute: number, o: SparsityOptions = {}): SparsityOptimum {
  const { f, sMax } = checkSparsityOptions(o);
  const minLogN = Math.log(o.minParams ?? 1e3);
  const bestForS = (S: number) => {
    const fr = activeFraction(S, f);
    // At least 1e3 tokens: below that no law fitted on real runs means anything.
    const maxLogN = Math.log(compute / (6 * fr * 1e3));
    if (!(maxLogN > minLogN)) return { x: NaN, value: Infinity, atBoundary: true };
    return minimize1d((lnN) => abnarLoss(p, Math.exp(lnN), compute / (6 * Math.exp(lnN) * fr), S), minLogN, maxLogN, 100);
  };
  const outer = minimize1d((S) => bestForS(S).value, 0, sMax, 100);
  const inner = bestForS(outer.x);
  const params = Math.exp(inner.x), fr = activeFraction(outer.x, f);
  return {
    compute, sparsity: outer.x, params, activeParams: params * fr, tokens: compute / (6 * params * fr),
    loss: inner.value, atBoundary: (outer.atBoundary && outer.x > sMax / 2) || inner.atBoundary,
  };
}

/** Budgets spaced evenly in log between lo and hi (inclusive), `perDecade` per factor of 10. */
export function logBudgets(lo: number, hi: number, perDecade = 1): number[] {
  if (!(lo > 0 && hi >= lo)) throw new Error(`budgets need 0 < lo <= hi, got ${lo}, ${hi}`);
  const n = Math.max(1, Math.round(Math.log10(hi / lo) * perDecade));
  return Array.from({ length: n + 1 }, (_, i) => lo * (hi / lo) ** (i / n));
}
