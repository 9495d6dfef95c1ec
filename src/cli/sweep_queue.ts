// The queue side of `moelab sweep` (--queue URL): the executor that hands points to workers, its
// progress lines, and `sweep status --queue`. See README "Scale out".
import type { Command } from 'commander';
import { resolve } from 'node:path';
// the queue (BullMQ, ioredis) loads only when a sweep uses it: other commands stay lean
import type { QueueExecutor, QueuedJob } from '../queue/index.js';
import type { SweepJob } from '../index.js';
import { positiveInt } from './common.js';

export function addQueueOptions(cmd: Command): Command {
  return cmd
    .option('-q, --queue <url>', 'hand the points to `moelab worker`s through this queue (redis://[:PASSWORD@]HOST:PORT/DB) instead of training here')
    .option('--runs <dir>', 'queue: the folder the workers were started with (--runs); --out must be inside it (default: the current folder)')
    .option('--detach', 'queue: return once the points are queued (watch with `moelab sweep status --queue URL --out DIR`)')
    .option('--requeue', 'queue: rebuild the queue from the sweep folder (after Redis lost it): every unfinished point gets a job again')
    .option('--attempts <n>', 'queue: tries per point before it is marked failed', positiveInt('--attempts'), 3)
    .option('--backoff <ms>', 'queue: wait between tries of a failed point', positiveInt('--backoff'), 2000)
    .option('--poll <ms>', 'queue: how often to look at the queue while waiting', positiveInt('--poll'), 1000);
}

export interface QueueFlags { queue: string; runs?: string; detach?: boolean; requeue?: boolean; retryFailed?: boolean; attempts: number; backoff: number; poll: number }

const progressText = (q: QueuedJob): string => {
  const p = q.progress;
  if (!p) return '';
  return `step ${p.step}/${p.end}${p.loss !== null ? ` loss ${p.loss.toFixed(3)}` : ''}${p.tokensPerSecond ? ` ${Math.round(p.tokensPerSecond)} tok/s` : ''} on ${p.worker}`;
};

/** The queue executor for the sweep command, and how to let go of the connection. */
export async function queueExecutor(o: QueueFlags, say: (l: string) => void): Promise<{ executor: QueueExecutor; close: () => Promise<void> }> {
  const { QueueExecutor, SweepQueue, redactUrl } = await import('../queue/index.js');
  const queue = await SweepQueue.open({ url: o.queue, runsRoot: resolve(o.runs ?? '.'), attempts: o.attempts, backoffMs: o.backoff });
  let lastLost = 0, lastProgress = 0;
  const executor = new QueueExecutor({
    queue, detach: o.detach, pollMs: o.poll, replaceFinished: Boolean(o.requeue || o.retryFailed),
    onEnqueued: (r) => say(`queue ${redactUrl(o.queue)}: ${r.added.length} queued, ${r.kept.length} already queued or running` +
      `${r.replaced.length ? `, ${r.replaced.length} re-queued` : ''}${r.finished.length ? `, ${r.finished.length} with a finished job left as it is (--requeue replaces them)` : ''}`),
    onLost: (lost: SweepJob[]) => {
      if (lost.length && lost.length !== lastLost) say(`${lost.length} unfinished points have no job in the queue (Redis restarted without persistence?): run \`moelab sweep --spec ... --queue ... --requeue\`; waiting`);
      lastLost = lost.length;
    },
    onProgress: (running) => {
      if (!running.length || performance.now() - lastProgress < 30_000) return;
      lastProgress = performance.now();
      say(`training: ${running.map((r) => `${r.job.hash} ${progressText(r.queued)}`).join('; ')}`);
    },
  });
  return { executor, close: () => queue.close() };
}

export async function showQueueStatus(o: { out: string; queue: string; runs?: string; json?: boolean }): Promise<void> {
  const { SweepQueue, sweepQueueStatus, redactUrl } = await import('../queue/index.js');
  const queue = await SweepQueue.open({ url: o.queue, runsRoot: resolve(o.runs ?? '.') });
  try {
    const rows = await sweepQueueStatus(queue, o.out);
    if (o.json) {
      for (const { point: p, status: s, queued: q } of rows) {
        process.stdout.write(JSON.stringify({ hash: p.hash, name: p.name, family: p.family, axes: p.axes, inSpec: p.inSpec, ...s, queue: q.state, progress: q.progress, attemptsMade: q.attemptsMade, failedReason: q.failedReason, queuedAt: q.addedAt, startedAt: q.startedAt }) + '\n');
      }
      return;
    }
    const count = (st: string) => rows.filter((r) => r.status.state === st).length;
    const counts = await queue.counts();
    process.stdout.write(`${o.out}: ${rows.length} points: ${count('done')} done, ${count('running')} running, ${count('failed')} failed, ${count('pending')} pending; ` +
      `queue ${redactUrl(o.queue)}: ${Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(', ')}\n`);
    for (const { point: p, status: s, queued: q } of rows) {
      const extra = q.state === 'active' ? progressText(q) : q.state === 'failed' ? (q.failedReason ?? '').split('\n')[0] : (s.reason ?? '');
      process.stdout.write(`${s.state.padEnd(8)}${`${s.step ?? 0}/${s.steps}`.padEnd(10)}${q.state.padEnd(10)}${p.hash}  ${extra}\n`);
    }
  } finally {
    await queue.close();
  }
}
