// moelab compare: compute-matched comparison of a sweep's families against its dense frontier
// (study/compare.ts); also writes the sweep's results.json/.csv, compare.json and the plots
// (loss_vs_compute, compute_multiplier: vega-lite spec, SVG, PNG) beside them.
import type { Command } from 'commander';
import { compareSweepWithPlots } from '../index.js';

const sci = (x: number | null): string => (x === null ? 'n/a' : x.toExponential(3));

export function registerCompare(program: Command): void {
  program
    .command('compare')
    .description('compute-matched comparison: per family loss vs training FLOPs, and each sparse run\'s compute multiplier against the dense frontier')
    .requiredOption('--sweep <dir>', 'sweep folder (moelab sweep --out)')
    .option('--json', 'print the comparison as one JSON object')
    .option('--no-extrapolate', 'leave multipliers outside the dense runs\' loss range empty instead of extrapolating (flagged) in log-log')
    .addHelpText('after', '\nmultiplier = FLOPs a dense model needs for the same loss (log-log interpolation on the dense frontier) / the run\'s FLOPs (Artetxe et al. 2021).\n' +
      'Writes results.json/.csv, compare.json and the plots loss_vs_compute and compute_multiplier (.vl.json, .svg, .png) into the sweep folder.')
    .action(async (o) => {
      const { results, comparison: c, plots } = await compareSweepWithPlots(o.sweep, { extrapolate: o.extrapolate !== false });
      if (o.json) {
        process.stdout.write(JSON.stringify(c) + '\n');
        return;
      }
      const out = (l: string) => void process.stdout.write(l + '\n');
      if (results.missing.length) out(`${results.missing.length} point(s) without a result (see moelab sweep status --out ${o.sweep})`);
      for (const f of c.families) {
        out(`${f.family}:`);
        for (const p of f.points) out(`  ${sci(p.compute)} FLOPs  loss ${p.loss.toFixed(4)}${p.seeds > 1 ? ` ± ${p.lossStd!.toFixed(4)} (${p.seeds} seeds)` : ''}  ${p.name}`);
      }
      out(`dense frontier: ${c.denseFrontier.length ? c.denseFrontier.map((p) => `(${sci(p.compute)}, ${p.loss.toFixed(4)})`).join(' ') : 'none (no dense runs)'}`);
      if (c.denseFrontier.length < 2 && c.multipliers.length) out('multipliers need at least two dense points of different compute on the frontier');
      for (const m of c.multipliers) {
        const x = m.multiplier === null ? 'n/a' : `${m.multiplier.toFixed(2)}x`;
        out(`  ${m.family} ${m.name}: ${sci(m.compute)} FLOPs, loss ${m.loss.toFixed(4)} -> dense needs ${sci(m.denseCompute)}: ${x}${m.extrapolated ? ` (extrapolated: ${m.extrapolated})` : ''}`);
      }
      for (const s of c.summary) {
        const g = (v: number | null) => (v === null ? 'n/a' : `${v.toFixed(2)}x`);
        out(`${s.family}: geometric mean multiplier ${g(s.geomeanMultiplier)} over ${s.points} point(s) (interpolated only: ${g(s.interpolatedGeomean)})`);
      }
      const imgs = [plots.images.lossVsCompute, plots.images.multiplier].filter((x) => x !== null);
      out(imgs.length ? `plots: ${imgs.map((i) => `${o.sweep}/${i}`).join(', ')} (and .svg, .vl.json)` : 'no plots (no results yet)');
    });
}
