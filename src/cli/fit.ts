import type { Command } from 'commander';
import { dirname, join, resolve } from 'node:path';
import {
  resolveLaw, lawNames, readPointsFile, readSweepDir, fitReport, analyseFit, writeFitOutputs, fitSummary, fitMarkdown,
  allocationMarkdown, sparsityMarkdown, type Point,
} from '../index.js';
import { floatOption, intOption } from './common.js';

function budgetsOption(v: string): number[] {
  return v.split(',').map((s) => {
    const n = Number(s.trim());
    if (!(n > 0 && Number.isFinite(n))) throw new Error(`--budgets takes positive FLOP counts separated by commas, got '${s}'`);
    return n;
  });
}

export function registerFit(program: Command): void {
  program
    .command('fit')
    .description('fit a scaling law (chinchilla, abnar, power) to runs; report parameters with bootstrap intervals, optimal allocation or sparsity, plots')
    .option('--points <file>', 'CSV with columns params, tokens, loss [, sparsity, active_params, flops, family]')
    .option('--sweep <dir>', "a sweep folder: reads <dir>/results.json")
    .requiredOption('--law <name>', `law to fit: ${lawNames().join(', ')}, or a JSON law file (see README)`)
    .option('--json', 'print the fit as JSON')
    .option('--huber-delta <x>', 'Huber delta on log-loss residuals', floatOption('--huber-delta'), 1e-3)
    .option('--bootstrap <n>', 'bootstrap resamples for the 95% intervals (0: none)', intOption('--bootstrap'), 100)
    .option('--seed <n>', 'bootstrap seed', intOption('--seed'), 0)
    .option('--budgets <list>', 'compute budgets (FLOPs) for the tables, comma-separated', budgetsOption)
    .option('--dense-fraction <f>', "abnar: share of parameters outside the experts in C = 6 N_active D", floatOption('--dense-fraction'), 0)
    .option('--out <dir>', 'folder for fit.json, fit.md and plots (default: fit-<law> next to the input)')
    .addHelpText('after', [
      '',
      'Laws: chinchilla L = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022);',
      '      abnar L = a/N^alpha + b/D^beta + c/(1-S)^lambda + d/((1-S)^delta N^gamma) + e (Abnar et al. 2025);',
      '      power L = E + A/C^alpha, C the training FLOPs (flops column, else 6 * active params * tokens).',
      'Fitted as Hoffmann et al. approach 3: Huber loss of log residuals, L-BFGS from a grid of starts.',
    ].join('\n'))
    .action(async (o) => {
      if (!o.points === !o.sweep) throw new Error('give exactly one of --points FILE.csv or --sweep DIR');
      const law = resolveLaw(o.law);
      let points: Point[], skipped = 0, defaultOut: string;
      if (o.points) {
        points = readPointsFile(o.points);
        defaultOut = join(dirname(resolve(o.points)), `fit-${law.name}`);
      } else {
        ({ points, skipped } = readSweepDir(o.sweep));
        defaultOut = join(resolve(o.sweep), `fit-${law.name}`);
      }
      const report = fitReport(law, points, { huberDelta: o.huberDelta, bootstrap: o.bootstrap, seed: o.seed });
      const analysis = analyseFit(report, points, { budgets: o.budgets, denseFraction: o.denseFraction });
      const out = o.out ?? defaultOut;
      const files = await writeFitOutputs(out, law, report, analysis, points);
      if (o.json) {
        process.stdout.write(JSON.stringify({ ...fitSummary(report, analysis), skippedPoints: skipped, outputs: files }) + '\n');
        return;
      }
      let text = fitMarkdown(report).split('\n### Residuals')[0];
      if (analysis.allocation) text += '\n' + allocationMarkdown(analysis.allocation);
      if (analysis.sparsityByCompute && analysis.sparsityByParams) text += '\n' + sparsityMarkdown(analysis.sparsityByCompute, analysis.sparsityByParams, analysis.denseFraction);
      if (skipped) text += `\n${skipped} sweep point(s) without a final loss were skipped.\n`;
      process.stdout.write(`${text}\nwrote ${files.length} files to ${out}\n`);
    });
}
