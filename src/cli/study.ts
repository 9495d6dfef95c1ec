// moelab study NAME: a predefined scaling study (moe-vs-dense, sparsity, peer-isoflop) sized to a
// time budget on this machine, trained, fitted, plotted and judged in <out>/report.md;
// moelab report --sweep DIR: the same report (without a verdict) for any sweep folder.
import type { Command } from 'commander';
import { join } from 'node:path';
import {
  runStudy, dryRunStudy, studyNames, getStudy, parseDuration, parseOverrides, writeSweepReport, countModel, formatCount, lawNames,
  type StudyEvent, type StudyPlan,
} from '../index.js';
import { collect, intOption } from './common.js';

const sci = (x: number): string => x.toExponential(2);

function planText(plan: StudyPlan, reused: boolean): string {
  const lines = [
    `study ${plan.study}: ${reused ? `plan kept in the folder (made ${plan.createdAt})` : 'new plan'}; budget ${plan.budgetSeconds.toFixed(0)} s = ` +
      `calibration ${plan.calibrationSeconds.toFixed(1)} s + training ${plan.predictedTrainingSeconds.toFixed(0)} s (of ${plan.trainingSeconds.toFixed(0)}) + report ${plan.reportSeconds.toFixed(0)} s`,
    `compute budgets: ${plan.budgets.map(sci).join(', ')} FLOPs; seeds ${JSON.stringify(plan.spec.seeds)}`,
    ...plan.calibration.map((c) => `  measured ${c.key}: ${(c.secPerStep * 1000).toFixed(1)} ms/step, ${sci(c.flopsPerStep)} FLOPs/step, ${c.runs} run(s) per budget`),
  ];
  return lines.join('\n');
}

export function registerStudy(program: Command): void {
  program
    .command('study')
    .description(`run a predefined scaling study sized to a time budget on this machine: ${studyNames().join(', ')}; writes <out>/report.md with the paper's finding judged from the runs`)
    .argument('<name>', studyNames().join(' | '))
    .option('-b, --budget <time>', 'wall-clock budget for the whole study (runs, fit, plots, report), e.g. 1h, 20m, 90s', '1h')
    .option('-o, --out <dir>', 'study folder (default: studies/<name>)')
    .option('-d, --data <path>', 'text file or folder to train on (repeatable; default: the bundled corpus)', collect)
    .option('--set <key=value>', 'override a config field of every run, e.g. --set model.layers=4 (repeatable)', collect)
    .option('--bootstrap <n>', 'bootstrap resamples for the fitted parameters\' intervals', intOption('--bootstrap'), 100)
    .option('--dry-run', 'measure this machine and list the plan (budgets, runs, steps) without training or writing anything')
    .addHelpText('after', [
      '',
      'moe-vs-dense  Artetxe et al. 2021: dense vs MoE (8 experts, top-2) at 2 widths x 3 budgets x 2 seeds; compute multiplier > 1?',
      'sparsity      Abnar et al. 2025: fixed active parameters, 2..16 experts (S 0..0.875) x 2 budgets x 2 seeds; loss falls with sparsity?',
      'peer-isoflop  He 2024: PEER vs dense vs MoE at equal FLOPs, 2 budgets x 2 seeds; PEER beats dense?',
      '',
      'The plan (measured step times, budgets) is kept in <out>/study.json: re-running the command resumes the same study.',
      'Exit status 3 when some run failed (the report lists it), 130 when interrupted (re-run to resume).',
    ].join('\n'))
    .action(async (name: string, o) => {
      getStudy(name);
      const out: string = o.out ?? join('studies', name);
      const common = { study: name, out, budgetSeconds: parseDuration(o.budget), dataPaths: o.data, set: o.set ? parseOverrides(o.set) : undefined, bootstrap: o.bootstrap };
      const say = (l: string) => void process.stderr.write(l + '\n');
      if (o.dryRun) {
        const { plan, reused, sweep } = dryRunStudy(common);
        process.stdout.write(planText(plan, reused) + '\n');
        process.stdout.write(`${sweep.points.length} runs in ${out}:\n`);
        for (const { point: p, action } of sweep.points) {
          const c = countModel(p.config.model);
          process.stdout.write(`  ${action.padEnd(10)} ${p.name.padEnd(34)} ${String(p.steps).padStart(6)} steps  ${sci(p.trainingFlops)} FLOPs  ${formatCount(c.paramsTotal)} params (${formatCount(c.paramsActive)} active)\n`);
        }
        return;
      }
      const stop = new AbortController();
      const onSignal = () => {
        if (stop.signal.aborted) process.exit(130);
        say('stopping: the running point checkpoints and stops (again to quit at once); re-run the same command to resume');
        stop.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      let done = 0, total = 0, failed = 0;
      const onEvent = (e: StudyEvent) => {
        switch (e.type) {
          case 'planned':
            say(planText(e.plan, e.reused));
            if (e.reused && Math.abs(e.plan.budgetSeconds - common.budgetSeconds) > 1) say(`(--budget ${o.budget} ignored: the kept plan was sized for ${e.plan.budgetSeconds.toFixed(0)} s; use another --out for a new plan)`);
            return;
          case 'plan':
            total = e.plan.points.filter((p) => p.action === 'start' || p.action === 'resume').length;
            say(`${e.plan.points.length} runs, ${total} to train`);
            return;
          case 'finish':
            say(`[${++done}/${total}] ${e.job.config.name}: val loss ${e.valLoss?.toFixed(4) ?? 'n/a'}, ${e.seconds.toFixed(1)} s`);
            return;
          case 'fail':
            failed++;
            say(`[${++done}/${total}] FAILED ${e.job.config.name}: ${e.failure.kind}: ${e.failure.reason.split('\n')[0]}`);
            return;
          case 'report':
            say(`verdict: ${e.verdict.claim}: ${e.verdict.outcome.toUpperCase()}. ${e.verdict.summary}`);
            return;
          default:
            return;
        }
      };
      try {
        const r = await runStudy({ ...common, onEvent, signal: stop.signal });
        if (!r.report) {
          process.exitCode = 130;
          return;
        }
        say(`report: ${r.report.path} (${r.seconds.toFixed(0)} s)`);
        if (failed || r.sweep.plan.points.some((p) => p.action === 'skip-failed')) process.exitCode = 3;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });

  program
    .command('report')
    .description('write <sweep>/report.md: results, compute-matched comparison with plots, and a fitted law with intervals and optimal allocation / sparsity tables')
    .requiredOption('--sweep <dir>', 'sweep folder (moelab sweep --out, or a study folder)')
    .option('--law <name>', `law to fit: ${lawNames().join(', ')} or a JSON law file (default: abnar with several sparsities, else chinchilla, else power)`)
    .option('--bootstrap <n>', 'bootstrap resamples for the intervals', intOption('--bootstrap'), 100)
    .option('--no-extrapolate', 'leave multipliers outside the dense runs\' loss range empty')
    .action(async (o) => {
      const r = await writeSweepReport(o.sweep, { law: o.law, bootstrap: o.bootstrap, extrapolate: o.extrapolate !== false });
      process.stdout.write(`${r.path}: ${r.results.results.length} points, ${r.results.missing.length} without a result; ` +
        `${r.fit ? `fitted ${r.fit.law.name} (R^2 ${r.fit.report.r2.toFixed(3)})` : `no fit: ${r.fitSkipped}`}\n`);
    });
}
