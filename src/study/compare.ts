// Compute-matched comparison (Artetxe et al. 2021, "Efficient Large Scale Language Modeling with
// Mixtures of Experts", Sec. 4: "how much compute a dense model needs to match the MoE's loss").
//
// 1. Points that differ only by seed are one point: mean loss, mean training FLOPs.
// 2. The dense frontier: dense points sorted by compute, keeping each one whose loss is below that
//    of every cheaper dense point (the monotone lower envelope; a dense run beaten by a cheaper one
//    is off the frontier). Runs of one budget (computes within 5%) count as one compute, so only
//    the budget's best dense run is on it.
// 3. For a sparse point of loss L and compute C: the dense compute C_d(L) is read off the frontier
//    by linear interpolation of log C against log L between the two frontier points whose losses
//    bracket L; the multiplier is C_d(L) / C (> 1: the sparse model saves compute).
//    A loss outside the frontier's range is extrapolated linearly in log-log from the nearest
//    frontier segment and flagged ('below-dense-range': lower loss than any dense run reached, the
//    usual case for MoE at the top budget; 'above-dense-range'), or left null when extrapolation is
//    off. With fewer than two frontier points there is no slope: multipliers are null.
import { isDenseFamily } from './family.js';
import type { SweepResult } from './results.js';

export interface ComparePoint {
  family: string;
  group: string;
  name: string;
  /** Mean training FLOPs over seeds. */
  compute: number;
  /** Mean final validation loss over seeds. */
  loss: number;
  seeds: number;
  /** Sample standard deviation of the loss over seeds (null for one seed). */
  lossStd: number | null;
  paramsTotal: number;
  paramsActive: number;
}

export interface FrontierPoint {
  compute: number;
  loss: number;
}

export type Extrapolation = 'below-dense-range' | 'above-dense-range';

export interface DenseMatch {
  compute: number;
  extrapolated: Extrapolation | null;
}

export interface ComputeMultiplier extends ComparePoint {
  /** Dense compute for the same loss (null when it cannot be read off the frontier). */
  denseCompute: number | null;
  multiplier: number | null;
  extrapolated: Extrapolation | null;
}

export interface FamilySummary {
  family: string;
  points: number;
  /** Geometric mean of the multipliers (null when there are none). */
  geomeanMultiplier: number | null;
  /** The same over interpolated (not extrapolated) multipliers only. */
  interpolatedGeomean: number | null;
}

export interface Comparison {
  families: { family: string; points: ComparePoint[] }[];
  denseFrontier: FrontierPoint[];
  multipliers: ComputeMultiplier[];
  summary: FamilySummary[];
}

export interface CompareOptions {
  /** Extrapolate beyond the dense frontier's loss range (flagged); default true. */
  extrapolate?: boolean;
}

/** Seeds of one config merged into one point (mean loss and compute). */
export function groupSeeds(results: readonly SweepResult[]): ComparePoint[] {
  const groups = new Map<string, SweepResult[]>();
  for (const r of results) groups.set(r.group, [...(groups.get(r.group) ?? []), r]);
  return [...groups.values()].map((rs) => {
    const n = rs.length;
    const loss = rs.reduce((s, r) => s + r.valLoss, 0) / n;
    const std = n > 1 ? Math.sqrt(rs.reduce((s, r) => s + (r.valLoss - loss) ** 2, 0) / (n - 1)) : null;
    return {
      family: rs[0].family, group: rs[0].group, name: rs[0].name, compute: rs.reduce((s, r) => s + r.trainingFlops, 0) / n, loss, seeds: n, lossStd: std,
      paramsTotal: rs[0].paramsTotal, paramsActive: rs[0].paramsActive,
    };
  });
}

/**
 * Runs of one isoFLOP budget differ in compute by step rounding only (e.g. 3.390e12 and 3.391e12):
 * computes within this relative distance of a group's smallest are one budget. Budgets of a sweep
 * are a factor 2 or more apart.
 */
export const SAME_BUDGET = 0.05;

/** Items grouped by budget (SAME_BUDGET), in increasing compute. */
export function budgetGroups<T>(items: readonly T[], computeOf: (x: T) => number): T[][] {
  const groups: T[][] = [];
  for (const x of [...items].sort((a, b) => computeOf(a) - computeOf(b))) {
    const g = groups[groups.length - 1];
    if (g && computeOf(x) <= computeOf(g[0]) * (1 + SAME_BUDGET)) g.push(x); else groups.push([x]);
  }
  return groups;
}

/**
 * The monotone lower envelope of (compute, loss) points, by increasing compute, over the best point
 * of each budget: two points of one budget on it would make a vertical segment (any loss -> that compute).
 */
export function denseFrontier(points: readonly FrontierPoint[]): FrontierPoint[] {
  const out: FrontierPoint[] = [];
  for (const g of budgetGroups(points, (p) => p.compute)) {
    const best = g.reduce((a, b) => (b.loss < a.loss ? b : a));
    if (!out.length || best.loss < out[out.length - 1].loss) out.push({ compute: best.compute, loss: best.loss });
  }
  return out;
}

/** The compute the frontier needs for `loss` (log-log interpolation; see the file comment). */
export function denseComputeFor(frontier: readonly FrontierPoint[], loss: number, opts: CompareOptions = {}): DenseMatch | null {
  const n = frontier.length;
  if (n < 2 || !(loss > 0)) return null;
  const y = Math.log(loss);
  const ys = frontier.map((p) => Math.log(p.loss)); // decreasing
  const xs = frontier.map((p) => Math.log(p.compute));
  let i: number;
  let extrapolated: Extrapolation | null = null;
  if (y > ys[0]) {
    i = 0;
    extrapolated = 'above-dense-range';
  } else if (y < ys[n - 1]) {
    i = n - 2;
    extrapolated = 'below-dense-range';
  } else {
    i = 0;
    while (i < n - 2 && y < ys[i + 1]) i++;
  }
  if (extrapolated && opts.extrapolate === false) return null;
  const t = (ys[i] - y) / (ys[i] - ys[i + 1]);
  return { compute: Math.exp(xs[i] + t * (xs[i + 1] - xs[i])), extrapolated };
}

const geomean = (xs: number[]): number | null => (xs.length ? Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length) : null);

export function compareResults(results: readonly SweepResult[], opts: CompareOptions = {}): Comparison {
  const points = groupSeeds(results);
  const familyNames = [...new Set(points.map((p) => p.family))].sort((a, b) => (isDenseFamily(a) ? -1 : isDenseFamily(b) ? 1 : a.localeCompare(b)));
  const families = familyNames.map((family) => ({ family, points: points.filter((p) => p.family === family).sort((a, b) => a.compute - b.compute) }));
  const frontier = denseFrontier(points.filter((p) => isDenseFamily(p.family)));
  const multipliers: ComputeMultiplier[] = families.filter((f) => !isDenseFamily(f.family)).flatMap((f) => f.points.map((p) => {
    const m = denseComputeFor(frontier, p.loss, opts);
    return { ...p, denseCompute: m?.compute ?? null, multiplier: m ? m.compute / p.compute : null, extrapolated: m?.extrapolated ?? null };
  }));
  const summary = families.filter((f) => !isDenseFamily(f.family)).map((f) => {
    const ms = multipliers.filter((m) => m.family === f.family && m.multiplier !== null);
    return {
      family: f.family, points: f.points.length,
      geomeanMultiplier: geomean(ms.map((m) => m.multiplier!)),
      interpolatedGeomean: geomean(ms.filter((m) => !m.extrapolated).map((m) => m.multiplier!)),
    };
  });
  return { families, denseFrontier: frontier, multipliers, summary };
}
