// A sweep's report: everything the numbers say, in one report.md in the sweep folder.
//   1. collect the results (results.json/.csv) and compare the families (compare.json, plots
//      loss_vs_compute and compute_multiplier), as `moelab compare` does
//   2. fit a law to the points when they can identify it (fit-<law>/: fit.json, fit.md, plots), as
//      `moelab fit --sweep` does; when they cannot, the report says why instead
//   3. report.md: the points, the comparison (per family, the dense frontier, multipliers), the fit
//      (parameters with bootstrap intervals, optimal allocation or sparsity tables), each image
//      linked by a path relative to the sweep folder, and any sections a caller adds (a study's
//      verdict goes first).
// Law choice when none is given: abnar when the points span two or more sparsities, else
// chinchilla when they span two or more model sizes and token counts, else power (loss vs compute).
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import type { Comparison } from './compare.js';
import { compareSweepWithPlots, type ComparePlots } from './compare_sweep.js';
import type { SweepResults } from './results.js';
import { readManifest } from './manifest.js';
import { resolveLaw } from './fit/laws/index.js';
import type { Law } from './fit/law.js';
import { checkFitData } from './fit/fit.js';
import { pointsFromSweepResults } from './fit/read.js';
import type { Point } from './fit/points.js';
import { fitReport, type FitReport } from './fit/report.js';
import { analyseFit, type Analysis } from './fit/analyse.js';
import { writeFitOutputs } from './fit/outputs.js';
import { allocationMarkdown, fitMarkdown, sig, sparsityMarkdown, table } from './fit/markdown.js';

export const REPORT_MD = 'report.md';

export interface SweepReportOptions {
  /** A built-in law name or a law file; default: chosen from the points (see the file comment). */
  law?: string;
  /** Bootstrap resamples for the fit's intervals (default 100). */
  bootstrap?: number;
  seed?: number;
  /** Extrapolate multipliers beyond the dense frontier's loss range (default true, flagged). */
  extrapolate?: boolean;
  /** Report title (default: the sweep's description, else its folder). */
  title?: string;
  /** Markdown placed right after the title (a study's verdict), given what the report found. */
  preface?: (found: SweepReportData) => string;
}

export interface SweepFit {
  law: Law;
  report: FitReport;
  analysis: Analysis;
  /** Why the optimal allocation / sparsity tables are missing (null when they are there or the law has none). */
  analysisSkipped: string | null;
  /** The fit's folder (fit-<law> in the sweep folder). */
  dir: string;
  files: string[];
}

export interface SweepReportData {
  dir: string;
  results: SweepResults;
  comparison: Comparison;
  plots: ComparePlots;
  fit: SweepFit | null;
  /** Why no fit was made (null when there is one). */
  fitSkipped: string | null;
}

export interface SweepReport extends SweepReportData {
  /** The report.md written. */
  path: string;
  markdown: string;
}

/** The law to fit to these points, or why none can be. */
export function chooseLaw(points: readonly Point[], requested?: string): { law: Law } | { skipped: string } {
  const tryLaw = (law: Law): { law: Law } | { skipped: string } => {
    try {
      checkFitData(law, points);
      return { law };
    } catch (e) {
      return { skipped: (e as Error).message };
    }
  };
  if (requested) return tryLaw(resolveLaw(requested));
  if (points.length === 0) return { skipped: 'no finished point has a validation loss yet' };
  const distinct = (f: (p: Point) => number) => new Set(points.map(f)).size;
  const reasons: string[] = [];
  const candidates = ['power'];
  if (distinct((p) => p.params) >= 2 && distinct((p) => p.tokens) >= 2) candidates.unshift('chinchilla');
  else reasons.push('chinchilla needs two or more model sizes and token counts');
  if (distinct((p) => p.sparsity) >= 2) candidates.unshift('abnar');
  else reasons.push('abnar needs two or more sparsities');
  for (const name of candidates) {
    const r = tryLaw(resolveLaw(name));
    if ('law' in r) return r;
    reasons.push(r.skipped);
  }
  return { skipped: reasons.join('; ') };
}

const fmtLoss = (v: number) => v.toFixed(4);

function pointsSection(r: SweepResults): string {
  const rows = [...r.results].sort((a, b) => a.family.localeCompare(b.family) || a.trainingFlops - b.trainingFlops || a.seed - b.seed)
    .map((p) => [p.family, p.name, String(p.seed), p.budget === null ? '' : sig(p.budget), String(p.steps), sig(p.paramsTotal), sig(p.paramsActive),
      sig(p.sparsity, 3), sig(p.tokens), sig(p.trainingFlops), fmtLoss(p.valLoss)]);
  const out = [`## Points`, '', `${r.results.length} finished point(s) (results.csv holds them with every axis).`, ''];
  if (rows.length) out.push(table(['family', 'run', 'seed', 'budget (FLOPs)', 'steps', 'params', 'active', 'sparsity', 'tokens', 'FLOPs', 'val loss'], rows), '');
  if (r.missing.length) {
    out.push(`${r.missing.length} point(s) without a result:`, '');
    for (const m of r.missing) out.push(`- ${m.name} (${m.hash}): ${m.state}${m.reason ? `: ${m.reason.split('\n')[0]}` : ''}`);
    out.push('');
  }
  return out.join('\n');
}

function compareSection(c: Comparison, plots: ComparePlots): string {
  const out = ['## Compute-matched comparison', '',
    'Seeds of one config are averaged (± their standard deviation). Multiplier = training FLOPs a dense model needs for the same loss ' +
    '(log-log interpolation on the dense frontier) / the run\'s FLOPs (Artetxe et al. 2021); > 1 means the sparse model needs less compute.', ''];
  const rows = c.families.flatMap((f) => f.points.map((p) => [f.family, p.name, sig(p.compute), `${fmtLoss(p.loss)}${p.lossStd !== null ? ` ± ${fmtLoss(p.lossStd)}` : ''}`, String(p.seeds)]));
  if (rows.length) out.push(table(['family', 'point', 'FLOPs', 'val loss', 'seeds'], rows), '');
  out.push(`Dense frontier: ${c.denseFrontier.length ? c.denseFrontier.map((p) => `(${sig(p.compute)} FLOPs, ${fmtLoss(p.loss)})`).join(', ') : 'none (no dense runs)'}.`, '');
  if (c.multipliers.length) {
    if (c.denseFrontier.length < 2) out.push('No multipliers: they need at least two dense points of different compute on the frontier.', '');
    else {
      out.push(table(['family', 'point', 'FLOPs', 'val loss', 'dense FLOPs for that loss', 'multiplier', 'note'], c.multipliers.map((m) => [
        m.family, m.name, sig(m.compute), fmtLoss(m.loss), m.denseCompute === null ? 'n/a' : sig(m.denseCompute),
        m.multiplier === null ? 'n/a' : `${m.multiplier.toFixed(2)}x`, m.extrapolated ? `extrapolated (${m.extrapolated})` : '',
      ])), '');
      const g = (v: number | null) => (v === null ? 'n/a' : `${v.toFixed(2)}x`);
      out.push(table(['family', 'points', 'geometric mean multiplier', 'interpolated only'], c.summary.map((s) => [s.family, String(s.points), g(s.geomeanMultiplier), g(s.interpolatedGeomean)])), '');
    }
  }
  if (plots.images.lossVsCompute) out.push(`![loss vs compute](${plots.images.lossVsCompute})`, '');
  if (plots.images.multiplier) out.push(`![compute multiplier vs budget](${plots.images.multiplier})`, '');
  return out.join('\n');
}

function fitSection(dir: string, fit: SweepFit | null, skipped: string | null): string {
  if (!fit) return ['## Fit', '', `No law was fitted: ${skipped}.`, ''].join('\n');
  const rel = (name: string) => relative(dir, join(fit.dir, name));
  const has = (name: string) => fit.files.some((f) => f.endsWith(`/${name}`)) || existsSync(join(fit.dir, name));
  const out = [fitMarkdown(fit.report), `Files: ${rel('fit.json')}, ${rel('fit.md')}.`, ''];
  if (has('fit_vs_points.png')) out.push(`![fitted law vs points](${rel('fit_vs_points.png')})`, '');
  if (has('isoflop.png')) out.push(`![isoFLOP curves](${rel('isoflop.png')})`, '');
  const a = fit.analysis;
  if (fit.analysisSkipped) out.push(`No optimal ${fit.law.name === 'abnar' ? 'sparsity' : 'allocation'} table: ${fit.analysisSkipped}.`, '');
  if (a.allocation) out.push(allocationMarkdown(a.allocation));
  if (a.sparsityByCompute && a.sparsityByParams) {
    out.push(sparsityMarkdown(a.sparsityByCompute, a.sparsityByParams, a.denseFraction));
    if (has('optimal_sparsity.png')) out.push(`![optimal sparsity vs compute](${rel('optimal_sparsity.png')})`, '');
  }
  return out.join('\n');
}

/**
 * Collect → compare (+ plots) → fit (when the points allow; + plots) → report.md, all in the sweep
 * folder. Returns what it found and wrote.
 */
export async function writeSweepReport(sweepDir: string, o: SweepReportOptions = {}): Promise<SweepReport> {
  const { results, comparison, plots } = await compareSweepWithPlots(sweepDir, { extrapolate: o.extrapolate });
  const dir = results.dir;
  const { points } = pointsFromSweepResults({ results: results.results }, join(dir, 'results.json'));
  const choice = chooseLaw(points, o.law);
  let fit: SweepFit | null = null;
  let fitSkipped: string | null = null;
  if ('law' in choice) {
    try {
      const report = fitReport(choice.law, points, { bootstrap: o.bootstrap, seed: o.seed });
      // A fit whose exponents rule out an optimum (e.g. alpha < 0 on noisy small runs) is still
      // worth reporting: only the allocation / sparsity tables are left out, with the reason.
      let analysis: Analysis, analysisSkipped: string | null = null;
      try {
        analysis = analyseFit(report, points);
      } catch (e) {
        analysis = { budgets: [], denseFraction: 0 };
        analysisSkipped = (e as Error).message;
      }
      const fitDir = join(dir, `fit-${choice.law.name}`);
      fit = { law: choice.law, report, analysis, analysisSkipped, dir: fitDir, files: await writeFitOutputs(fitDir, choice.law, report, analysis, points) };
    } catch (e) {
      fitSkipped = `fitting ${choice.law.name} failed: ${(e as Error).message}`;
    }
  } else fitSkipped = choice.skipped;
  const data: SweepReportData = { dir, results, comparison, plots, fit, fitSkipped };
  const title = o.title ?? readManifest(dir)?.spec.description ?? `Sweep ${dir}`;
  const parts = [`# ${title}`, '', `Sweep folder: \`${dir}\`; results collected ${results.collectedAt}.`, ''];
  if (o.preface) parts.push(o.preface(data));
  parts.push(pointsSection(results), compareSection(comparison, plots), fitSection(dir, fit, fitSkipped));
  const markdown = parts.join('\n');
  const path = join(dir, REPORT_MD);
  writeFileAtomic(path, markdown);
  return { ...data, path, markdown };
}
