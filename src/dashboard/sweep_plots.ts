// A sweep folder's plots, built server-side with the study's own spec functions (study/plot/specs.ts)
// from the files the study commands write, so the page draws exactly what the reports draw:
//   results.json (moelab sweep)   loss vs training compute per family (seeds of a config averaged,
//                                 as compare does: study/compare.ts groupSeeds)
//   compare.json (moelab compare) compute multiplier vs dense against compute
//   fit-<law>/fit.json (moelab fit --sweep)  the fitted law vs the points, isoFLOP curves when runs
//                                 share budgets, Abnar's optimal sparsity. fit.json keeps the
//                                 formula's parameters and the points (its residuals), which is all
//                                 study/fit/analyse.ts needs to redraw the curves of a built-in law.
// Files that are missing are skipped; files that cannot be read become notes, never errors.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { computeMultiplierSpec, isoFlopSpec, lawVsPointsSpec, lossVsComputeSpec, optimalSparsitySpec, type SparsityRow } from '../study/plot/specs.js';
import { denseFrontier, groupSeeds, type Comparison } from '../study/compare.js';
import { isDenseFamily } from '../study/family.js';
import type { SweepResult } from '../study/results.js';
import { fitCurves, isoFlopData } from '../study/fit/analyse.js';
import { getLaw } from '../study/fit/laws/index.js';
import { internalFromParams, lawParams } from '../study/fit/law.js';
import type { Point } from '../study/fit/points.js';
import type { FitReport } from '../study/fit/report.js';

export interface SweepPlot { name: string; file: string; spec: TopLevelSpec }

export interface SweepView {
  id: string;
  collectedAt: string | null;
  /** Runs with a result, and points without one. */
  results: number;
  missing: number;
  plots: SweepPlot[];
  notes: string[];
}

const MAX_BYTES = 16 << 20;
const obj = (v: unknown): Record<string, unknown> | null => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Parsed JSON of `dir/name`; undefined when absent; a note when unreadable. */
function readJson(dir: string, name: string, notes: string[]): unknown {
  const path = join(dir, name);
  try {
    const size = statSync(path).size;
    if (size > MAX_BYTES) {
      notes.push(`${name}: ${size} bytes, larger than the ${MAX_BYTES >> 20} MiB the dashboard reads`);
      return undefined;
    }
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    notes.push(`${name}: ${e instanceof SyntaxError ? `not valid JSON (${e.message})` : (e as Error).message}`);
    return undefined;
  }
}

/** The entries of results.json that carry what the plot needs. */
function sweepResults(json: unknown, notes: string[]): SweepResult[] {
  const list = obj(json)?.results;
  if (!Array.isArray(list)) {
    notes.push("results.json: no 'results' array (expected moelab sweep's {dir, collectedAt, results, missing})");
    return [];
  }
  const ok = list.filter((r): r is SweepResult => {
    const o = obj(r);
    return !!o && typeof o.family === 'string' && num(o.valLoss) !== undefined && num(o.trainingFlops) !== undefined && (o.valLoss as number) > 0 && (o.trainingFlops as number) > 0;
  }).map((r) => ({ ...r, group: typeof r.group === 'string' ? r.group : r.hash ?? r.name }));
  if (ok.length < list.length) notes.push(`results.json: ${list.length - ok.length} entr${list.length - ok.length === 1 ? 'y' : 'ies'} without family, valLoss or trainingFlops skipped`);
  return ok;
}

/** Loss vs compute: one point per config (seeds averaged), one line per model, the dense frontier dashed. */
export function lossVsComputePlot(results: readonly SweepResult[]): SweepPlot | null {
  if (!results.length) return null;
  const points = groupSeeds(results);
  const rows = points.map((p) => ({ family: p.family, compute: p.compute, loss: p.loss, params: p.paramsTotal })).sort((a, b) => a.family.localeCompare(b.family) || a.compute - b.compute);
  return { name: 'loss_vs_compute', file: 'results.json', spec: lossVsComputeSpec(rows, undefined, denseFrontier(points.filter((p) => isDenseFamily(p.family)))) };
}

export function multiplierPlot(comparison: unknown, notes: string[]): SweepPlot | null {
  const ms = obj(comparison)?.multipliers;
  if (!Array.isArray(ms)) {
    notes.push("compare.json: no 'multipliers' array");
    return null;
  }
  const rows = (ms as Comparison['multipliers']).filter((m) => typeof m?.family === 'string' && num(m.compute)! > 0 && num(m.multiplier)! > 0)
    .map((m) => ({ family: m.family, compute: m.compute, multiplier: m.multiplier!, params: num(m.paramsTotal) }));
  if (!rows.length) {
    notes.push('compare.json: no compute multipliers (it needs at least two dense points on the frontier and a sparse family)');
    return null;
  }
  return { name: 'compute_multiplier', file: 'compare.json', spec: computeMultiplierSpec(rows) };
}

/** The points a fit used, from fit.json's residuals. */
function fitPoints(residuals: unknown): Point[] {
  if (!Array.isArray(residuals)) return [];
  const out: Point[] = [];
  for (const r of residuals) {
    const o = obj(r);
    const params = num(o?.params), tokens = num(o?.tokens), loss = num(o?.loss);
    if (!o || params === undefined || tokens === undefined || loss === undefined) continue;
    const p: Point = { params, tokens, loss, sparsity: num(o.sparsity) ?? 0 };
    if (num(o.activeParams) !== undefined) p.activeParams = o.activeParams as number;
    if (num(o.flops) !== undefined) p.flops = o.flops as number;
    if (typeof o.family === 'string') p.family = o.family;
    out.push(p);
  }
  return out;
}

/** Plots of one fit.json (`file` names it relative to the sweep folder). */
export function fitPlots(fit: unknown, file: string, notes: string[]): SweepPlot[] {
  const f = obj(fit);
  const lawName = typeof f?.law === 'string' ? f.law : null;
  if (!f || !lawName) {
    notes.push(`${file}: no 'law' field: not a moelab fit.json`);
    return [];
  }
  let law;
  try {
    law = getLaw(lawName);
  } catch {
    notes.push(`${file}: law '${lawName}' is not built in, so its curves cannot be redrawn here (see the fit's own plots next to it)`);
    return [];
  }
  const values: Record<string, number> = {};
  for (const [k, v] of Object.entries(obj(f.params) ?? {})) if (num(obj(v)?.value) !== undefined) values[k] = obj(v)!.value as number;
  let x: Float64Array;
  try {
    x = internalFromParams(law, values);
  } catch (e) {
    notes.push(`${file}: ${(e as Error).message}`);
    return [];
  }
  const points = fitPoints(f.residuals);
  if (!points.length) {
    notes.push(`${file}: no points (residuals) to draw`);
    return [];
  }
  // what fitCurves and isoFlopData read of a report: the law's name and the fitted vector
  const report = { law: lawName, fit: { x, params: lawParams(law, x) } } as unknown as FitReport;
  const curves = fitCurves(law, report, points);
  const plots: SweepPlot[] = [{ name: 'fit_vs_points', file, spec: lawVsPointsSpec(curves.observed, curves.fitted, 'training compute (FLOPs)', `${law.name} fit vs points`) }];
  const iso = isoFlopData(report, points);
  if (iso) plots.push({ name: 'isoflop', file, spec: isoFlopSpec(iso.rows, iso.minima, `IsoFLOP curves, ${lawName} fit`) });
  const sp = obj(f.optimalSparsity);
  if (sp && Array.isArray(sp.byCompute) && Array.isArray(sp.byParams)) {
    const rows: SparsityRow[] = [];
    for (const o of sp.byCompute) if (num(o?.compute) !== undefined && num(o?.sparsity) !== undefined) rows.push({ compute: o.compute, sparsity: o.sparsity, series: 'S*(C), N free' });
    for (const o of sp.byParams) if (num(o?.compute) !== undefined && num(o?.sparsity) !== undefined && num(o?.params) !== undefined) rows.push({ compute: o.compute, sparsity: o.sparsity, series: `S*(N=${(o.params as number).toPrecision(2)})` });
    if (rows.length) plots.push({ name: 'optimal_sparsity', file, spec: optimalSparsitySpec(rows) });
  }
  return plots;
}

/** fit.json files of a sweep: its own and those of `fit-<law>/` folders (moelab fit's default --out). */
function fitFiles(dir: string): string[] {
  let names: string[] = [];
  try {
    names = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory() && e.name.startsWith('fit')).map((e) => `${e.name}/fit.json`).sort();
  } catch {
    /* the folder vanished: nothing to add */
  }
  return ['fit.json', ...names];
}

/** Everything the page shows for sweep folder `dir` (id: its path below the runs folder). */
export function sweepView(id: string, dir: string): SweepView {
  const notes: string[] = [];
  const plots: SweepPlot[] = [];
  const resultsJson = readJson(dir, 'results.json', notes);
  let results: SweepResult[] = [];
  if (resultsJson === undefined) notes.push('no results.json yet: `moelab sweep` writes it when points finish (or `moelab compare --sweep DIR`)');
  else results = sweepResults(resultsJson, notes);
  const loss = lossVsComputePlot(results);
  if (loss) plots.push(loss);
  const cmp = readJson(dir, 'compare.json', notes);
  if (cmp !== undefined) {
    const m = multiplierPlot(cmp, notes);
    if (m) plots.push(m);
  }
  for (const file of fitFiles(dir)) {
    const fit = readJson(dir, file, notes);
    if (fit !== undefined) plots.push(...fitPlots(fit, file, notes));
  }
  const r = obj(resultsJson);
  return {
    id,
    collectedAt: typeof r?.collectedAt === 'string' ? r.collectedAt : null,
    results: results.length,
    missing: Array.isArray(r?.missing) ? r.missing.length : 0,
    plots, notes,
  };
}
