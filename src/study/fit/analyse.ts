/**
 * What follows from a fitted law over a range of budgets: the Chinchilla compute-optimal
 * allocation, or Abnar's optimal sparsity S*(C) and S*(N; C) (optimal.ts), and the fitted curves
 * to draw against the points.
 */
import type { Law } from './law.js';
import { abnarLoss, abnarOptimalSparsity, abnarSparsityForParams, chinchillaOptimal, logBudgets, type AbnarParams, type Allocation, type ChinchillaParams, type SparsityOptimum } from './optimal.js';
import { computeOf, type Point } from './points.js';
import { budgetGroups } from '../compare.js';
import { predictLoss, type FitReport } from './report.js';
import type { IsoFlopRow, SeriesRow } from '../plot/specs.js';
import { minimize1d } from './min1d.js';

export interface AnalyseOptions {
  /** Compute budgets for the tables (default: 1 per decade from the smallest run's compute to 100x the largest). */
  budgets?: number[];
  /** Share of parameters outside the experts for Abnar's C = 6 N_active D (default 0). */
  denseFraction?: number;
}

export interface Analysis {
  budgets: number[];
  allocation?: Allocation[];
  sparsityByCompute?: SparsityOptimum[];
  sparsityByParams?: SparsityOptimum[];
  denseFraction: number;
}

export function defaultBudgets(points: readonly Point[]): number[] {
  const C = points.map(computeOf);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...C)));
  return logBudgets(lo, 10 ** Math.ceil(Math.log10(Math.max(...C) * 100)), 1);
}

export function analyseFit(report: FitReport, points: readonly Point[], o: AnalyseOptions = {}): Analysis {
  const budgets = o.budgets ?? defaultBudgets(points);
  for (const b of budgets) if (!(b > 0 && Number.isFinite(b))) throw new Error(`budgets must be positive numbers of FLOPs, got ${b}`);
  const denseFraction = o.denseFraction ?? 0;
  const out: Analysis = { budgets, denseFraction };
  const p = report.fit.params;
  if (report.law === 'chinchilla') {
    out.allocation = budgets.map((C) => chinchillaOptimal(p as unknown as ChinchillaParams, C));
  } else if (report.law === 'abnar') {
    const ap = p as unknown as AbnarParams;
    out.sparsityByCompute = budgets.map((C) => abnarOptimalSparsity(ap, C, { denseFraction }));
    const sizes = [...new Set(points.map((q) => q.params))].sort((a, b) => a - b);
    const pick = sizes.length <= 4 ? sizes : [0, 1, 2, 3].map((i) => sizes[Math.round((i * (sizes.length - 1)) / 3)]);
    out.sparsityByParams = budgets.flatMap((C) => pick.map((N) => abnarSparsityForParams(ap, C, N, { denseFraction })))
      .filter((r) => r.tokens >= 1);
  }
  return out;
}

const fmt = (v: number) => v.toPrecision(2);

/**
 * Points and fitted curves for the fit-vs-points plot, with compute on x. Power: one curve over
 * compute. Otherwise one series per model (same params, sparsity, active params), its curve over
 * tokens from half the smallest to twice the largest observed.
 */
export function fitCurves(law: Law, report: FitReport, points: readonly Point[]): { observed: SeriesRow[]; fitted: SeriesRow[] } {
  const steps = 40;
  if (!law.uses.compute) {
    const groups = new Map<string, Point[]>();
    for (const q of points) {
      const key = `N=${fmt(q.params)}` + (law.uses.sparsity ? ` S=${fmt(q.sparsity)}` : '') + (q.activeParams !== undefined ? ` Na=${fmt(q.activeParams)}` : '');
      groups.set(key, [...(groups.get(key) ?? []), q]);
    }
    const observed: SeriesRow[] = [], fitted: SeriesRow[] = [];
    for (const [series, qs] of groups) {
      for (const q of qs) observed.push({ series, x: computeOf(q), loss: q.loss });
      const D = qs.map((q) => q.tokens), lo = Math.min(...D) / 2, hi = Math.max(...D) * 2;
      const base = qs[0];
      for (let i = 0; i <= steps; i++) {
        const tokens = lo * (hi / lo) ** (i / steps);
        const q: Point = { params: base.params, sparsity: base.sparsity, activeParams: base.activeParams, tokens, loss: 1 };
        fitted.push({ series, x: computeOf(q), loss: predictLoss(law, report.fit.x, q) });
      }
    }
    return { observed, fitted };
  }
  const C = points.map(computeOf), lo = Math.min(...C) / 2, hi = Math.max(...C) * 2;
  const observed = points.map((q, i) => ({ series: q.family ?? 'runs', x: C[i], loss: q.loss }));
  const fitted = Array.from({ length: steps + 1 }, (_, i) => {
    const flops = lo * (hi / lo) ** (i / steps);
    return { series: 'fit', x: flops, loss: predictLoss(law, report.fit.x, { params: 1, tokens: 1, sparsity: 0, loss: 1, flops }) };
  });
  return { observed, fitted };
}

export interface IsoFlopData { rows: IsoFlopRow[]; minima: IsoFlopRow[] }

/**
 * Points on shared compute budgets (isoFLOP sweeps): runs whose compute lies within 5% of a
 * budget's first run share a budget (budgetGroups), and its runs of one sparsity form one curve (a budget mixing
 * dense and MoE runs is two curves: loss against total parameters means different things at
 * different sparsities). Seeds of one size are one point, their mean loss. A curve needs two sizes,
 * and a budget at least 3 runs. The minimum of each curve comes from the fitted law (Chinchilla: the
 * closed-form N*(C), one per budget; Abnar: minimised over N at the curve's sparsity). Null when no
 * curve qualifies.
 */
export function isoFlopData(report: FitReport, points: readonly Point[]): IsoFlopData | null {
  const groups = budgetGroups(points, computeOf);
  const budgetOf = (g: Point[]) => Math.exp(g.reduce((s, p) => s + Math.log(computeOf(p)), 0) / g.length);
  const rows: IsoFlopRow[] = [];
  const minima: IsoFlopRow[] = [];
  const mixed = new Set(points.map((p) => Math.round(p.sparsity * 1e3))).size > 1;
  for (const g of groups.filter((x) => x.length >= 3)) {
    const budget = budgetOf(g);
    const bySparsity = new Map<number, Point[]>();
    for (const p of g) {
      const key = Math.round(p.sparsity * 1e3);
      bySparsity.set(key, [...(bySparsity.get(key) ?? []), p]);
    }
    let drawn = false;
    for (const curve of bySparsity.values()) {
      const bySize = new Map<number, number[]>();
      for (const p of curve) bySize.set(p.params, [...(bySize.get(p.params) ?? []), p.loss]);
      if (bySize.size < 2) continue;
      drawn = true;
      const S = curve[0].sparsity;
      for (const [params, ls] of bySize) rows.push({ budget, params, loss: ls.reduce((a, b) => a + b, 0) / ls.length, ...(mixed ? { sparsity: S } : {}) });
      if (report.law === 'abnar') {
        const ap = report.fit.params as unknown as AbnarParams;
        const Ns = [...bySize.keys()];
        const lo = Math.log(Math.min(...Ns) / 10), hi = Math.log(Math.max(...Ns) * 10);
        const m = minimize1d((lnN) => abnarLoss(ap, Math.exp(lnN), budget / (6 * Math.exp(lnN) * (1 - S)), S), lo, hi, 100);
        if (!m.atBoundary) minima.push({ budget, params: Math.exp(m.x), loss: m.value, ...(mixed ? { sparsity: S } : {}) });
      }
    }
    if (drawn && report.law === 'chinchilla') {
      const cp = report.fit.params as unknown as ChinchillaParams;
      if (!(cp.alpha > 0 && cp.beta > 0)) continue; // no finite optimum: curves without minima
      const a = chinchillaOptimal(cp, budget);
      minima.push({ budget, params: a.params, loss: a.loss });
    }
  }
  return rows.length ? { rows, minima } : null;
}
