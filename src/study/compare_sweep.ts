// compare on a sweep folder: collect its results (writing results.json/.csv), compare, and write
// compare.json beside them for reports and plots; compareSweepWithPlots also draws the comparison:
//   loss_vs_compute.{vl.json,svg,png}     loss against training FLOPs per family, log-log
//   compute_multiplier.{vl.json,svg,png}  each sparse point's multiplier against its compute (only
//                                         when some multiplier could be read off the dense frontier)
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { compareResults, type CompareOptions, type Comparison } from './compare.js';
import { writeResults, type SweepResults } from './results.js';
import { computeMultiplierSpec, lossVsComputeSpec } from './plot/specs.js';
import { writePlot } from './fit/outputs.js';

export const COMPARE_JSON = 'compare.json';
export const LOSS_VS_COMPUTE = 'loss_vs_compute';
export const COMPUTE_MULTIPLIER = 'compute_multiplier';

export function compareSweep(sweepDir: string, opts: CompareOptions = {}): { results: SweepResults; comparison: Comparison } {
  const results = writeResults(sweepDir);
  const comparison = compareResults(results.results, opts);
  writeFileAtomic(join(results.dir, COMPARE_JSON), JSON.stringify(comparison, null, 2) + '\n');
  return { results, comparison };
}

export interface ComparePlots {
  /** Every file written (spec, SVG and PNG of each plot). */
  files: string[];
  /** PNG names (relative to the sweep folder) of the plots drawn. */
  images: { lossVsCompute: string | null; multiplier: string | null };
}

/** The comparison's plots into `dir`; a plot without data (no results, no multiplier) is not drawn. */
export async function writeComparePlots(dir: string, c: Comparison): Promise<ComparePlots> {
  const files: string[] = [];
  const images: ComparePlots['images'] = { lossVsCompute: null, multiplier: null };
  const rows = c.families.flatMap((f) => f.points.map((p) => ({ family: f.family, compute: p.compute, loss: p.loss, params: p.paramsTotal })));
  if (rows.length) {
    await writePlot(dir, LOSS_VS_COMPUTE, lossVsComputeSpec(rows, 'Validation loss vs training compute (mean over seeds)', c.denseFrontier), files);
    images.lossVsCompute = `${LOSS_VS_COMPUTE}.png`;
  }
  const mult = c.multipliers.filter((m) => m.multiplier !== null).map((m) => ({ family: m.family, compute: m.compute, multiplier: m.multiplier!, params: m.paramsTotal }));
  if (mult.length) {
    await writePlot(dir, COMPUTE_MULTIPLIER, computeMultiplierSpec(mult, 'Compute multiplier vs dense (> 1: fewer FLOPs for the same loss)'), files);
    images.multiplier = `${COMPUTE_MULTIPLIER}.png`;
  }
  return { files, images };
}

/** compareSweep, then the plots next to compare.json. */
export async function compareSweepWithPlots(sweepDir: string, opts: CompareOptions = {}): Promise<{ results: SweepResults; comparison: Comparison; plots: ComparePlots }> {
  const r = compareSweep(sweepDir, opts);
  return { ...r, plots: await writeComparePlots(r.results.dir, r.comparison) };
}
