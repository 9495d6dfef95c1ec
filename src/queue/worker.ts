// The queue worker: takes sweep points from the BullMQ queue and trains each with runJob, the code
// path of a local sweep. Per job:
//   refused (queue/job_data.ts)    -> failed at once, not retried (UnrecoverableError)
//   already done on disk           -> completed without training (the run folder is the truth)
//   trained to the end             -> completed, its result as the job's return value
//   failed (NaN, bad data, ...)    -> retried up to the job's attempts; at the last one the
//                                     failure is recorded in the run's failed.json, as locally
//   stopped by close()             -> checkpointed, then given back (moved to wait) so any worker
//                                     resumes it from that checkpoint
// A worker that dies without close() (kill -9, power loss) stops renewing its job's lock; once the
// lock expires BullMQ's stalled-job check puts the job back and another worker resumes it from the
// last checkpoint (at most the steps since it are trained again). Progress (step, loss, tokens/s,
// which worker) is published as the job's progress. No terminal, signals or exit codes here: the
// CLI (cli/worker.ts) maps SIGTERM to close().
import { Worker, DelayedError, UnrecoverableError, WaitingError, type Job } from 'bullmq';
import { readRunLock, LOCK_FILE, type LockStatus } from '../io/lock.js';
import { readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { hostname } from 'node:os';
import { runJob, type JobOutcome } from '../study/executor.js';
import { clearFailure, readCommittedState, recordFailure } from '../study/status.js';
import { runExists } from '../train/run.js';
import type { TrainEvent } from '../train/events.js';
import { DEFAULT_TIMINGS, QUEUE_NAME, redisOptions, type QueueTimings } from './connection.js';
import { JobRefused, validateJob, type QueueJobData } from './job_data.js';

export interface JobProgress {
  step: number;
  end: number;
  loss: number | null;
  tokensPerSecond: number | null;
  /** host:pid of the worker training it. */
  worker: string;
  resumed: boolean;
}

/** What a completed job returns. */
export interface JobResult {
  step: number;
  valLoss: number | null;
  lastLoss: number | null;
  /** True when the run folder was already done and nothing was trained. */
  alreadyDone: boolean;
  worker: string;
  seconds: number;
}

export type WorkerEvent =
  | { type: 'start'; id: string; dir: string; resumed: boolean; attempt: number }
  | { type: 'finish'; id: string; dir: string; result: JobResult }
  | { type: 'given-back'; id: string; dir: string; step: number }
  | { type: 'fail'; id: string; dir: string; reason: string; final: boolean }
  | { type: 'refused'; id: string; reason: string }
  | { type: 'lock-wait'; id: string; dir: string; holder: string }
  | { type: 'lock-broken'; id: string; dir: string; holder: string }
  | { type: 'error'; message: string };

export interface QueueWorkerOptions extends QueueTimings {
  url: string;
  /** The folder every worker and the submitter share; job run folders are relative to it. */
  runsRoot: string;
  /** Folders data files may come from besides runsRoot. */
  dataRoots?: string[];
  /** Compute threads per job (train.threads; not part of a run's identity). */
  threads?: number;
  /** Jobs at once in this process (default 1). */
  concurrency?: number;
  /** Minimum time between progress updates of one job (default 1000 ms). */
  progressEveryMs?: number;
  /** When a job's run folder is locked by another trainer, look again after this long (default 5000 ms). */
  lockRetryMs?: number;
  onEvent?: (e: WorkerEvent) => void;
}

export interface QueueWorker {
  readonly name: string;
  /** Stop taking jobs; running ones checkpoint and are given back; resolves when all are. */
  close(): Promise<void>;
}

/**
 * A run lock left on the shared folder by a worker on another host that died (kill -9, power
 * loss): the lock cannot be checked from here (io/lock.ts), but the queue can. If the holder is the
 * worker that last reported progress on this very job, and BullMQ has now handed the job to us,
 * that worker's claim on the job expired: it is dead or cut off. Its lock is removed (a cut-off
 * worker that is still alive finds its lock gone before its next save and stops without writing).
 */
function takeOverDeadWorkersLock(dir: string, lock: LockStatus, progress: unknown): boolean {
  const h = lock.holder;
  const last = typeof progress === 'object' && progress !== null ? (progress as Partial<JobProgress>).worker : undefined;
  if (lock.state !== 'unknown' || !h || h.host === hostname() || last !== `${h.host}:${h.pid}`) return false;
  const path = join(dir, LOCK_FILE);
  try {
    if (JSON.parse(readFileSync(path, 'utf8')).token !== h.token) return false;
    unlinkSync(path);
  } catch {
    return false;
  }
  return true;
}

export function startQueueWorker(opts: QueueWorkerOptions): QueueWorker {
  const name = `${hostname()}:${process.pid}`;
  const say = opts.onEvent ?? (() => {});
  const stop = new AbortController();
  const every = opts.progressEveryMs ?? 1000;

  const processor = async (job: Job<QueueJobData, JobResult>, token?: string, signal?: AbortSignal): Promise<JobResult> => {
    const id = String(job.id);
    let sweepJob;
    try {
      sweepJob = validateJob(job.data, opts.runsRoot, opts.dataRoots);
    } catch (e) {
      if (!(e instanceof JobRefused)) throw e;
      say({ type: 'refused', id, reason: e.message });
      throw new UnrecoverableError(`refused by worker ${name}: ${e.message}`);
    }
    const { dir, config } = sweepJob;
    const t0 = performance.now();
    const seconds = () => (performance.now() - t0) / 1000;
    const committed = readCommittedState(dir);
    if (committed && committed.step >= config.train.steps) {
      const result: JobResult = { step: committed.step, valLoss: committed.valLoss, lastLoss: committed.lastLoss, alreadyDone: true, worker: name, seconds: seconds() };
      say({ type: 'finish', id, dir, result });
      return result;
    }
    let lock = readRunLock(dir);
    if (lock && takeOverDeadWorkersLock(dir, lock, job.progress)) {
      say({ type: 'lock-broken', id, dir, holder: `${lock.holder!.host}:${lock.holder!.pid}` });
      lock = null;
    }
    if (lock && lock.state !== 'stale' && token) {
      // another trainer has the folder (a worker that lost its job when Redis restarted, or a
      // local sweep): not a failure, so no attempt is spent; look again later
      const by = lock.holder ? `pid ${lock.holder.pid} on ${lock.holder.host}` : 'another process';
      say({ type: 'lock-wait', id, dir, holder: by });
      await job.moveToDelayed(Date.now() + (opts.lockRetryMs ?? 5000), token);
      throw new DelayedError();
    }
    const resumed = runExists(dir);
    const final = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    say({ type: 'start', id, dir, resumed, attempt: job.attemptsMade + 1 });
    clearFailure(dir);
    let last = 0;
    const progress = (e: TrainEvent): void => {
      if (e.type !== 'step' && e.type !== 'start') return;
      const now = performance.now();
      if (e.type === 'step' && e.step < e.end && now - last < every) return;
      last = now;
      const p: JobProgress = e.type === 'start'
        ? { step: e.step, end: e.end, loss: null, tokensPerSecond: null, worker: name, resumed }
        : { step: e.step, end: e.end, loss: e.loss, tokensPerSecond: e.tokensPerSecond, worker: name, resumed };
      // not awaited: training goes on while Redis is slow or restarting
      job.updateProgress(p as unknown as object).catch(() => {});
    };
    const aborted = signal ? AbortSignal.any([stop.signal, signal]) : stop.signal;
    const outcome: JobOutcome = await runJob({ ...sweepJob, config: { ...config, train: { ...config.train, threads: opts.threads ?? config.train.threads } } }, aborted, [progress]);
    if (outcome.ok && outcome.stoppedBy === 'done') {
      const result: JobResult = { step: outcome.step, valLoss: outcome.valLoss, lastLoss: outcome.lastLoss, alreadyDone: false, worker: name, seconds: seconds() };
      say({ type: 'finish', id, dir, result });
      return result;
    }
    if (outcome.ok) {
      // stopped by close() (or BullMQ cancelled it): checkpointed; hand it to the next worker
      if (token) await job.moveToWait(token);
      say({ type: 'given-back', id, dir, step: outcome.step });
      throw new WaitingError();
    }
    const f = outcome.failure;
    // the run folder is the truth: never mark failed a run another trainer finished meanwhile
    const now = readCommittedState(dir);
    if (final && !(now && now.step >= config.train.steps)) recordFailure(dir, f);
    say({ type: 'fail', id, dir, reason: `${f.kind}: ${f.reason}`, final });
    throw new Error(`${f.kind}: ${f.reason}`);
  };

  const conn = new Redis(redisOptions(opts.url));
  conn.on('error', () => {}); // ioredis reconnects on its own (Redis restarting); the worker reports errors
  const worker = new Worker<QueueJobData, JobResult>(QUEUE_NAME, processor, {
    connection: conn,
    concurrency: opts.concurrency ?? 1,
    lockDuration: opts.lockDurationMs ?? DEFAULT_TIMINGS.lockDurationMs,
    stalledInterval: opts.stalledIntervalMs ?? DEFAULT_TIMINGS.stalledIntervalMs,
    maxStalledCount: opts.maxStalledCount ?? DEFAULT_TIMINGS.maxStalledCount,
    name,
  });
  worker.on('error', (e) => say({ type: 'error', message: e.message }));
  let closing: Promise<void> | null = null;
  return {
    name,
    close(): Promise<void> {
      if (!closing) {
        stop.abort();
        closing = worker.close().finally(() => conn.disconnect());
      }
      return closing;
    },
  };
}
