/**
 * Limited-memory BFGS (Nocedal & Wright, Numerical Optimization, 2nd ed., Algorithm 7.4/7.5):
 * the search direction is -H g, where H is the inverse-Hessian estimate built by the two-loop
 * recursion from the last m pairs s = x_{k+1} - x_k, y = g_{k+1} - g_k, with H0 = (s'y / y'y) I.
 * Steps satisfy the strong Wolfe conditions (line_search.ts), which keep s'y > 0 on smooth
 * functions; a pair with s'y <= eps |s||y| is skipped rather than stored.
 *
 * Stops when max|g| <= gtol ('gradient'), when the decrease in f is at most
 * ftol * max(|f_k|, |f_{k+1}|) ('function-change': relative, so objectives of tiny magnitude, such
 * as a Huber loss with delta 1e-3, are not stopped early; Besiroglu et al. 2024, arXiv 2404.10102,
 * trace the Chinchilla fit's errors to exactly that), after maxIterations, or when no step
 * decreases f even along steepest descent ('line-search-failed').
 */
import { strongWolfe, type Evaluated } from './line_search.js';

export interface ValueAndGrad {
  value: number;
  grad: Float64Array;
}

export type Objective = (x: Float64Array) => ValueAndGrad;

export interface LbfgsOptions {
  /** Pairs kept (default 10). */
  m?: number;
  maxIterations?: number;
  /** Stop when max |grad| <= gtol (default 1e-10). */
  gtol?: number;
  /** Stop when (f_k - f_{k+1}) <= ftol * max(|f_k|, |f_{k+1}|) (default 1e-14). */
  ftol?: number;
  /** Wolfe constants (defaults 1e-4 and 0.9). */
  c1?: number;
  c2?: number;
  maxLineSearchEvaluations?: number;
}

export type LbfgsReason = 'gradient' | 'function-change' | 'max-iterations' | 'line-search-failed' | 'non-finite-start';

export interface LbfgsResult {
  x: Float64Array;
  value: number;
  grad: Float64Array;
  iterations: number;
  evaluations: number;
  converged: boolean;
  reason: LbfgsReason;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** d = -H g by the two-loop recursion over the stored pairs (oldest first). */
function direction(g: Float64Array, S: Float64Array[], Y: Float64Array[], rho: number[]): Float64Array {
  const q = Float64Array.from(g);
  const alpha = new Array<number>(S.length);
  for (let i = S.length - 1; i >= 0; i--) {
    alpha[i] = rho[i] * dot(S[i], q);
    for (let j = 0; j < q.length; j++) q[j] -= alpha[i] * Y[i][j];
  }
  if (S.length > 0) {
    const last = S.length - 1;
    const gamma = dot(S[last], Y[last]) / dot(Y[last], Y[last]);
    for (let j = 0; j < q.length; j++) q[j] *= gamma;
  }
  for (let i = 0; i < S.length; i++) {
    const beta = rho[i] * dot(Y[i], q);
    for (let j = 0; j < q.length; j++) q[j] += (alpha[i] - beta) * S[i][j];
  }
  for (let j = 0; j < q.length; j++) q[j] = -q[j];
  return q;
}

/** Minimises f from x0. f must return the value and its gradient; x0 is not modified. */
export function lbfgs(f: Objective, x0: ArrayLike<number>, opts: LbfgsOptions = {}): LbfgsResult {
  const m = opts.m ?? 10;
  const maxIterations = opts.maxIterations ?? 1000;
  const gtol = opts.gtol ?? 1e-10;
  const ftol = opts.ftol ?? 1e-14;
  const ls = { c1: opts.c1 ?? 1e-4, c2: opts.c2 ?? 0.9, maxEvaluations: opts.maxLineSearchEvaluations ?? 40 };
  if (!(m >= 1)) throw new Error(`lbfgs: memory m must be >= 1, got ${m}`);

  let x = Float64Array.from(x0);
  let { value, grad } = f(x);
  let evaluations = 1;
  const done = (iterations: number, reason: LbfgsReason): LbfgsResult => ({
    x, value, grad, iterations, evaluations, reason,
    converged: reason === 'gradient' || reason === 'function-change',
  });
  if (!Number.isFinite(value) || !grad.every(Number.isFinite)) return done(0, 'non-finite-start');
  if (maxAbs(grad) <= gtol) return done(0, 'gradient');

  const S: Float64Array[] = [], Y: Float64Array[] = [], rho: number[] = [];
  for (let k = 0; k < maxIterations; k++) {
    let d = direction(grad, S, Y, rho);
    let slope = dot(grad, d);
    if (!(slope < 0)) {
      // Not a descent direction (round-off in H): forget the memory and go downhill.
      S.length = Y.length = rho.length = 0;
      d = direction(grad, S, Y, rho);
      slope = dot(grad, d);
    }
    const trial = (dir: Float64Array) => (a: number): Evaluated => {
      const xa = new Float64Array(x.length);
      for (let i = 0; i < x.length; i++) xa[i] = x[i] + a * dir[i];
      const r = f(xa);
      return { a, value: r.value, grad: r.grad, slope: dot(r.grad, dir) };
    };
    // Without curvature information the first step is scaled to move x by at most 1 per coordinate.
    const a0 = S.length === 0 ? Math.min(1, 1 / maxAbs(grad)) : 1;
    let found = strongWolfe(trial(d), value, slope, a0, ls);
    if (!found && S.length > 0) {
      S.length = Y.length = rho.length = 0;
      d = direction(grad, S, Y, rho);
      slope = dot(grad, d);
      found = strongWolfe(trial(d), value, slope, Math.min(1, 1 / maxAbs(grad)), ls);
    }
    if (!found) return done(k, 'line-search-failed');
    evaluations += found.evaluations;
    const p = found.point;
    const s = new Float64Array(x.length), y = new Float64Array(x.length);
    const xNew = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      xNew[i] = x[i] + p.a * d[i];
      s[i] = xNew[i] - x[i];
      y[i] = p.grad[i] - grad[i];
    }
    const sy = dot(s, y);
    if (sy > 1e-12 * Math.sqrt(dot(s, s) * dot(y, y))) {
      if (S.length === m) { S.shift(); Y.shift(); rho.shift(); }
      S.push(s); Y.push(y); rho.push(1 / sy);
    }
    const decrease = value - p.value;
    x = xNew;
    value = p.value;
    grad = p.grad;
    if (maxAbs(grad) <= gtol) return done(k + 1, 'gradient');
    if (decrease <= ftol * Math.max(Math.abs(value + decrease), Math.abs(value))) return done(k + 1, 'function-change');
  }
  return done(maxIterations, 'max-iterations');
}
