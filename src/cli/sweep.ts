// moelab sweep: train every point of a sweep spec (skipping finished ones, resuming interrupted
// ones), one line per point start and finish; `moelab sweep status` shows where each point stands.
import type { Command } from 'commander';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  readSweepSpec, runSweep, planSweep, countModel, formatCount, requireManifest, pointStatus, runDirOf, writeResults, LocalExecutor, ProcessExecutor, RESULTS_CSV,
  type SweepExecutor, type SweepProgress, type PlannedPoint, type ManifestPoint,
} from '../index.js';
import { positiveInt } from './common.js';
import { addQueueOptions, queueExecutor, showQueueStatus, type QueueFlags } from './sweep_queue.js';

const WORKER = fileURLToPath(new URL('./sweep_worker.js', import.meta.url));

function axesText(axes: Record<string, unknown>): string {
  const parts = Object.entries(axes).map(([k, v]) => `${k}=${typeof v === 'number' ? (Math.abs(v) >= 1e5 ? v.toExponential(2) : String(Number(v.toPrecision(4)))) : JSON.stringify(v)}`);
  return parts.length ? `{${parts.join(', ')}}` : '';
}

const sci = (x: number): string => x.toExponential(2);

function planLine(points: PlannedPoint[]): string {
  const n = (a: PlannedPoint['action']) => points.filter((p) => p.action === a).length;
  const failed = n('skip-failed');
  return `${points.length} points: ${n('skip-done')} done, ${n('resume')} to resume, ${n('start')} to start, ` +
    `${failed} failed${failed ? ' (kept; --retry-failed trains them again)' : ''}, ${n('skip-running')} locked by another process`;
}

export function registerSweep(program: Command): void {
  const cmd = program
    .command('sweep')
    .description('train the points of a sweep spec (each an ordinary run under DIR/runs/<config hash>); re-running skips finished points. ' +
      '`moelab sweep status --out DIR` shows done / running / failed / pending per point')
    .argument('[action]', "'status': show where each point of --out stands instead of training")
    .option('-s, --spec <file>', 'sweep spec (JSON: base, set, axes, generator, seeds, budgets)')
    .option('-o, --out <dir>', 'sweep folder (default: sweeps/<spec file name>)')
    .option('--json', 'status: one JSON object per point')
    .option('-j, --jobs <n>', 'train N points at once in child processes, the cores split between them', positiveInt('--jobs'))
    .option('--retry-failed', 'train failed points again (resuming their last checkpoint when they have one)')
    .option('--dry-run', 'list the points (what would happen to each, steps, FLOPs, parameters) without training or writing anything');
  addQueueOptions(cmd)
    .addHelpText('after', '\nExit status: 0 when every point is done, 3 when some failed (each run folder\'s failed.json says why), 130 when interrupted.\n' +
      'status: running = the run folder holds a .lock file, or its checkpoint is short of train.steps (training, or interrupted: re-run the sweep to resume).')
    .action(async (action: string | undefined, o) => {
      if (action !== undefined && action !== 'status') throw new Error(`unknown sweep action '${action}': the only one is 'status' (moelab sweep status --out DIR)`);
      if (action === 'status') {
        if (!o.out) throw new Error('sweep status needs --out <sweep folder>');
        if (o.queue) await showQueueStatus(o);
        else showStatus(o);
        return;
      }
      if (!o.spec) throw new Error('--spec <file> is required (or `moelab sweep status --out DIR`)');
      const spec = readSweepSpec(o.spec);
      const dir: string = o.out ?? join('sweeps', basename(o.spec).replace(/\.json$/i, ''));
      if (o.dryRun) {
        showPlan(planSweep(spec, dir, { retryFailed: Boolean(o.retryFailed) }).points, dir);
        return;
      }
      const say = (l: string) => void process.stderr.write(l + '\n');
      const queued = o.queue ? await queueExecutor(o as QueueFlags, say) : null;
      const executor: SweepExecutor = queued ? queued.executor : o.jobs && o.jobs > 1 ? new ProcessExecutor({ jobs: o.jobs, worker: [process.execPath, WORKER] }) : new LocalExecutor();
      const stop = new AbortController();
      const onSignal = () => {
        if (stop.signal.aborted) process.exit(130);
        process.stderr.write('stopping: the running points checkpoint and stop (again to quit at once)\n');
        stop.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const byHash = new Map<string, ManifestPoint>();
      const order = new Map<string, number>();
      let total = 0;
      const tag = (hash: string) => `[${order.get(hash)}/${total}]`;
      const label = (hash: string) => { const p = byHash.get(hash)!; return `${p.family} ${axesText(p.axes)}`.trim(); };
      const onEvent = (e: SweepProgress) => {
        switch (e.type) {
          case 'plan': {
            const todo = e.plan.points.filter((p) => p.action === 'resume' || p.action === 'start');
            total = todo.length;
            todo.forEach((p, i) => order.set(p.point.hash, i + 1));
            for (const p of e.plan.points) byHash.set(p.point.hash, p.point);
            say(`sweep ${dir}: ${planLine(e.plan.points)}; ${queued ? 'by queue workers' : o.jobs > 1 ? `${o.jobs} processes x ${(executor as ProcessExecutor).threadsPerJob} threads` : 'in this process'}`);
            return;
          }
          case 'start': {
            const p = byHash.get(e.job.hash)!;
            say(`${tag(e.job.hash)} ${e.resumed ? 'resume' : 'start '} ${label(e.job.hash)}: ${p.steps} steps, ${sci(p.trainingFlops)} FLOPs -> ${p.dir}`);
            return;
          }
          case 'finish':
            say(`${tag(e.job.hash)} done   ${label(e.job.hash)}: val loss ${e.valLoss?.toFixed(4) ?? 'n/a'} (train ${e.lastLoss.toFixed(4)}), ${e.seconds.toFixed(1)} s`);
            return;
          case 'stopped':
            say(`${tag(e.job.hash)} stopped ${label(e.job.hash)} at step ${e.step ?? '?'} (re-run to resume)`);
            return;
          case 'fail':
            say(`${tag(e.job.hash)} FAILED ${label(e.job.hash)}: ${e.failure.kind}: ${e.failure.reason.split('\n')[0]}`);
            return;
        }
      };
      try {
        const s = await runSweep({ spec, dir, executor, onEvent, signal: stop.signal, retryFailed: Boolean(o.retryFailed), includeLocked: Boolean(queued && o.requeue) });
        if (queued && o.detach) {
          say(`sweep ${dir}: queued; watch with \`moelab sweep status --queue URL --out ${dir}\``);
          return;
        }
        const r = writeResults(dir);
        say(`sweep ${dir}: ${s.finished} finished, ${s.failed} failed, ${s.stopped} stopped, ${s.skipped} skipped; ` +
          `${r.results.length} results in ${join(dir, RESULTS_CSV)}`);
        const failedNow = s.plan.points.filter((p) => p.action === 'skip-failed').length + s.failed;
        if (stop.signal.aborted) process.exitCode = 130;
        else if (failedNow > 0) process.exitCode = 3;
      } finally {
        await queued?.close();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}

function printTable(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd() + '\n';
  process.stdout.write(line(head));
  for (const r of rows) process.stdout.write(line(r));
}

function showPlan(points: PlannedPoint[], dir: string): void {
  process.stdout.write(`sweep ${dir}: ${planLine(points)}\n`);
  printTable(['action', 'family', 'steps', 'FLOPs', 'params', 'active', 'hash', 'axes'], points.map(({ point: p, action }) => {
    const c = countModel(p.config.model);
    return [action, p.family, String(p.steps), sci(p.trainingFlops), formatCount(c.paramsTotal), formatCount(c.paramsActive), p.hash, axesText(p.axes)];
  }));
}

function showStatus(o: { out: string; json?: boolean }): void {
  const m = requireManifest(o.out);
  const rows = m.points.map((p) => ({ p, s: pointStatus(runDirOf(o.out, p.hash), p.steps) }));
  if (o.json) {
    for (const { p, s } of rows) {
      process.stdout.write(JSON.stringify({ hash: p.hash, name: p.name, family: p.family, axes: p.axes, inSpec: p.inSpec, ...s }) + '\n');
    }
    return;
  }
  const count = (st: string) => rows.filter((r) => r.s.state === st).length;
  process.stdout.write(`${o.out}: ${rows.length} points: ${count('done')} done, ${count('running')} running, ${count('failed')} failed, ${count('pending')} pending\n`);
  const table = rows.map(({ p, s }) => [
    s.state, `${s.step ?? 0}/${s.steps}`, s.valLoss !== null && s.state === 'done' ? s.valLoss.toFixed(4) : '', p.family, p.hash,
    axesText(p.axes) + (p.inSpec ? '' : ' (not in the current spec)'), s.reason ?? '',
  ]);
  printTable(['state', 'step', 'val loss', 'family', 'hash', 'axes', 'reason'], table);
}
