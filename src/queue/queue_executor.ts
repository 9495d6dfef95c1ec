// Sweep points trained by queue workers on any number of machines (moelab sweep --queue): run()
// puts the jobs in the queue, then polls it and the run folders, reporting start / finish / fail per
// point as the workers get to them. With `detach` it returns once they are queued. Aborting stops
// only the waiting: the workers go on. A point whose job disappears from Redis (restarted without
// persistence) while its run folder is not done is reported through onLost; `--requeue` puts it back.
import type { SweepExecutor, SweepJob, SweepListener } from '../study/executor.js';
import { pointStatus, readFailure } from '../study/status.js';
import type { FailureRecord } from '../study/status.js';
import { SweepQueue, type EnqueueOptions, type EnqueueReport, type QueuedJob } from './sweep_queue.js';

export interface QueueExecutorOptions extends EnqueueOptions {
  queue: SweepQueue;
  /** Return once the jobs are queued. */
  detach?: boolean;
  /** How often to look at the queue (default 1000 ms). */
  pollMs?: number;
  onEnqueued?: (r: EnqueueReport) => void;
  /** Points being trained, with their latest progress, after each poll. */
  onProgress?: (running: { job: SweepJob; queued: QueuedJob }[]) => void;
  /** Points with no job in the queue whose run folder is not finished (empty when none are). */
  onLost?: (jobs: SweepJob[]) => void;
}

const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>((done) => {
  const wake = () => { clearTimeout(t); signal?.removeEventListener('abort', wake); done(); };
  const t = setTimeout(wake, ms);
  signal?.addEventListener('abort', wake, { once: true });
});

function failureKind(reason: string): FailureRecord['kind'] {
  const k = reason.split(':')[0];
  return (['diverged', 'config', 'memory', 'data', 'checkpoint', 'crash', 'error'] as const).find((x) => x === k) ?? 'error';
}

export class QueueExecutor implements SweepExecutor {
  constructor(private readonly opts: QueueExecutorOptions) {}

  async run(jobs: readonly SweepJob[], onEvent: SweepListener, signal?: AbortSignal): Promise<void> {
    const q = this.opts.queue;
    const report = await q.enqueue(jobs, this.opts);
    this.opts.onEnqueued?.(report);
    if (this.opts.detach) return;
    const pending = new Map(jobs.map((j) => [q.idOf(j), j]));
    const seen = new Map<string, number>(); // id -> time it was first seen active
    let lostBefore = 0;
    while (pending.size && !signal?.aborted) {
      const running: { job: SweepJob; queued: QueuedJob }[] = [];
      const lost: SweepJob[] = [];
      for (const [id, job] of pending) {
        const qj = await q.inspect(id);
        if ((qj.state === 'active' || qj.state === 'completed' || qj.state === 'failed') && !seen.has(id)) {
          seen.set(id, performance.now());
          onEvent({ type: 'start', job, resumed: Boolean(qj.progress?.resumed) });
        }
        const seconds = (performance.now() - (seen.get(id) ?? performance.now())) / 1000;
        if (qj.state === 'completed') {
          const r = qj.result;
          onEvent({ type: 'finish', job, step: r?.step ?? job.config.train.steps, valLoss: r?.valLoss ?? null, lastLoss: r?.lastLoss ?? NaN, seconds });
          pending.delete(id);
        } else if (qj.state === 'failed') {
          const onDisk = readFailure(job.dir);
          const reason = qj.failedReason ?? 'failed';
          const failure = onDisk ? { kind: onDisk.kind, reason: onDisk.reason, step: onDisk.step } : { kind: failureKind(reason), reason, step: null };
          onEvent({ type: 'fail', job, failure, seconds });
          pending.delete(id);
        } else if (qj.state === 'missing' || qj.state === 'unknown') {
          const s = pointStatus(job.dir, job.config.train.steps);
          if (s.state === 'done') {
            onEvent({ type: 'finish', job, step: s.step ?? job.config.train.steps, valLoss: s.valLoss, lastLoss: NaN, seconds });
            pending.delete(id);
          } else if (!s.locked) lost.push(job);
        } else if (qj.state === 'active') running.push({ job, queued: qj });
      }
      this.opts.onProgress?.(running);
      if (lost.length || lostBefore) this.opts.onLost?.(lost);
      lostBefore = lost.length;
      if (pending.size) await sleep(this.opts.pollMs ?? 1000, signal);
    }
  }
}
