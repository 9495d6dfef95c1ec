// The submitting side of the queue: put sweep points in it (each at most once: the job id is the
// point's run folder, which ends in its config hash), and read where each stands. The queue is a
// work list, not the record: run folders say what is done (study/status.ts), so a queue lost with
// a Redis restart is rebuilt from the sweep manifest (`--requeue`).
import { Queue, type Job, type JobState } from 'bullmq';
import { Redis } from 'ioredis';
import type { SweepJob } from '../study/executor.js';
import { QUEUE_NAME, checkRedis, redisOptions } from './connection.js';
import { jobIdFor, relativeRunDir, type QueueJobData } from './job_data.js';
import type { JobProgress, JobResult } from './worker.js';

export interface SweepQueueOptions {
  url: string;
  /** The folder the workers were started with (--runs); run folders must lie inside it. */
  runsRoot: string;
  /** Tries per point before it is marked failed (default 3). */
  attempts?: number;
  /** Wait between tries (default 2000 ms). */
  backoffMs?: number;
}

export interface EnqueueOptions {
  /** Replace a point's completed or failed job (its run folder says it is not done): --requeue / --retry-failed. */
  replaceFinished?: boolean;
}

export interface EnqueueReport {
  added: string[];
  /** Already waiting, delayed or being trained. */
  kept: string[];
  /** Had a completed or failed job that was replaced. */
  replaced: string[];
  /** Has a completed or failed job that was left alone (no replaceFinished). */
  finished: string[];
}

export type QueuedState = JobState | 'unknown' | 'missing';

export interface QueuedJob {
  id: string;
  state: QueuedState;
  progress: JobProgress | null;
  attemptsMade: number;
  failedReason: string | null;
  result: JobResult | null;
  /** When the job was added and first taken by a worker (ms since the epoch). */
  addedAt: number | null;
  startedAt: number | null;
}

const LIVE: readonly string[] = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'];

export class SweepQueue {
  private constructor(readonly queue: Queue<QueueJobData, JobResult>, private readonly conn: Redis, private readonly opts: SweepQueueOptions) {}

  /** Connect (a clear error when Redis does not answer). */
  static async open(opts: SweepQueueOptions): Promise<SweepQueue> {
    await checkRedis(opts.url);
    const conn = new Redis(redisOptions(opts.url));
    conn.on('error', () => {}); // reconnects on its own; calls that fail report it
    const q = new Queue<QueueJobData, JobResult>(QUEUE_NAME, { connection: conn });
    q.on('error', () => {});
    return new SweepQueue(q, conn, opts);
  }

  idOf(job: SweepJob): string {
    return jobIdFor(relativeRunDir(this.opts.runsRoot, job.dir));
  }

  async enqueue(jobs: readonly SweepJob[], o: EnqueueOptions = {}): Promise<EnqueueReport> {
    const report: EnqueueReport = { added: [], kept: [], replaced: [], finished: [] };
    for (const job of jobs) {
      const rel = relativeRunDir(this.opts.runsRoot, job.dir);
      const id = jobIdFor(rel);
      const old = await this.queue.getJob(id);
      if (old) {
        const state = await old.getState();
        if (LIVE.includes(state)) {
          report.kept.push(id);
          continue;
        }
        if (state !== 'unknown') {
          if (!o.replaceFinished) {
            report.finished.push(id);
            continue;
          }
          await old.remove();
          report.replaced.push(id);
        }
      }
      const data: QueueJobData = { hash: job.hash, config: job.config, dir: rel };
      await this.queue.add(job.hash, data, {
        jobId: id, attempts: this.opts.attempts ?? 3, backoff: { type: 'fixed', delay: this.opts.backoffMs ?? 2000 },
        removeOnComplete: false, removeOnFail: false,
      });
      if (!report.replaced.includes(id)) report.added.push(id);
    }
    return report;
  }

  async inspect(id: string): Promise<QueuedJob> {
    // the state first, then the job: a job read after it completed carries its return value
    const state = await this.queue.getJobState(id);
    const job: Job<QueueJobData, JobResult> | undefined = state === 'unknown' ? undefined : await this.queue.getJob(id);
    if (!job) return { id, state: 'missing', progress: null, attemptsMade: 0, failedReason: null, result: null, addedAt: null, startedAt: null };
    const p = job.progress as unknown;
    return {
      id, state, attemptsMade: job.attemptsMade, failedReason: job.failedReason ?? null,
      progress: typeof p === 'object' && p !== null ? (p as JobProgress) : null, result: job.returnvalue ?? null,
      addedAt: job.timestamp ?? null, startedAt: job.processedOn ?? null,
    };
  }

  /** Jobs per state over the whole queue (all sweeps). */
  counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed');
  }

  async close(): Promise<void> {
    await this.queue.close();
    this.conn.disconnect(); // BullMQ leaves a connection it was given open
  }
}
