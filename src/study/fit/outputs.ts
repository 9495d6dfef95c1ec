/**
 * The files `moelab fit` leaves in its output folder: fit.json (everything, machine-readable),
 * fit.md (tables, linking the images), fit_vs_points.{vl.json,svg,png}, isoflop.{...} when runs
 * share compute budgets, and, for Abnar's law, optimal_sparsity.{vl.json,svg,png}. Files are replaced atomically, so a reader never sees half.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../io/atomic.js';
import type { TopLevelSpec } from 'vega-lite';
import { isoFlopSpec, lawVsPointsSpec, optimalSparsitySpec, type SparsityRow } from '../plot/specs.js';
import { specToSvg, svgToPng } from '../plot/render.js';
import { fitCurves, isoFlopData, type Analysis } from './analyse.js';
import type { Law } from './law.js';
import { allocationMarkdown, fitMarkdown, sparsityMarkdown } from './markdown.js';
import type { Point } from './points.js';
import type { FitReport } from './report.js';

/** The report as plain JSON: parameters under their formula names with intervals. */
export function fitSummary(report: FitReport, analysis?: Analysis): Record<string, unknown> {
  return {
    law: report.law,
    formula: report.formula,
    citation: report.citation,
    points: report.points,
    huberDelta: report.huberDelta,
    params: Object.fromEntries(report.params.map((p) => [p.name, { value: p.value, lo: p.lo, hi: p.hi }])),
    r2: report.r2,
    objective: report.fit.objective,
    converged: report.fit.converged,
    stop: report.fit.reason,
    iterations: report.fit.iterations,
    bootstrap: report.bootstrap,
    extrapolation: report.extrapolation,
    residuals: report.residuals.map((r) => ({ ...r.point, compute: r.compute, predicted: r.predicted, residual: r.residual })),
    ...(analysis?.allocation ? { allocation: analysis.allocation } : {}),
    ...(analysis?.sparsityByCompute ? { optimalSparsity: { denseFraction: analysis.denseFraction, byCompute: analysis.sparsityByCompute, byParams: analysis.sparsityByParams } } : {}),
  };
}

/** Writes <name>.vl.json, .svg and .png into dir (atomically), appending their paths to files. */
export async function writePlot(dir: string, name: string, spec: TopLevelSpec, files: string[]): Promise<void> {
  const svg = await specToSvg(spec);
  for (const [ext, content] of [['vl.json', JSON.stringify(spec, null, 1) + '\n'], ['svg', svg], ['png', svgToPng(svg)]] as const) {
    const path = join(dir, `${name}.${ext}`);
    writeFileAtomic(path, content);
    files.push(path);
  }
}

export async function writeFitOutputs(dir: string, law: Law, report: FitReport, analysis: Analysis, points: readonly Point[]): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const curves = fitCurves(law, report, points);
  await writePlot(dir, 'fit_vs_points', lawVsPointsSpec(curves.observed, curves.fitted, 'training compute (FLOPs)', `${law.name} fit vs points`), files);
  let md = fitMarkdown(report) + '\n![fitted law vs points](fit_vs_points.png)\n';
  const iso = isoFlopData(report, points);
  if (iso) {
    await writePlot(dir, 'isoflop', isoFlopSpec(iso.rows, iso.minima, `IsoFLOP curves, ${report.law} fit`), files);
    md += '\n![isoFLOP curves](isoflop.png)\n';
  }
  if (analysis.allocation) md += '\n' + allocationMarkdown(analysis.allocation);
  if (analysis.sparsityByCompute && analysis.sparsityByParams) {
    const rows: SparsityRow[] = analysis.sparsityByCompute.map((o) => ({ compute: o.compute, sparsity: o.sparsity, series: 'S*(C), N free' }));
    for (const o of analysis.sparsityByParams) rows.push({ compute: o.compute, sparsity: o.sparsity, series: `S*(N=${o.params.toPrecision(2)})` });
    await writePlot(dir, 'optimal_sparsity', optimalSparsitySpec(rows), files);
    md += '\n' + sparsityMarkdown(analysis.sparsityByCompute, analysis.sparsityByParams, analysis.denseFraction) + '\n![optimal sparsity vs compute](optimal_sparsity.png)\n';
  }
  const mdPath = join(dir, 'fit.md'), jsonPath = join(dir, 'fit.json');
  writeFileAtomic(mdPath, md);
  writeFileAtomic(jsonPath, JSON.stringify(fitSummary(report, analysis), null, 1) + '\n');
  files.push(mdPath, jsonPath);
  return files;
}
