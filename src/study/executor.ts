// How sweep points get trained. An executor receives jobs (a resolved config and a run folder:
// nothing else, so a job can travel to another process or machine) and reports what happens to
// each through events; it never decides what to run (runSweep does) and never writes the sweep's
// files (runSweep records failures from the events). Executors: local in-process (one after
// another), local processes (--jobs N), and, later, a queue.
import { runExists } from '../train/run.js';
import { train } from '../train/loop.js';
import { TrainingDiverged } from '../train/step.js';
import { ConfigError } from '../config/load.js';
import { CorpusError } from '../data/errors.js';
import { CheckpointError } from '../train/checkpoint.js';
import { MemoryRefusedError } from '../spec/memory.js';
import type { Config } from '../config/schema.js';
import type { FailureRecord } from './status.js';
import type { TrainListener } from '../train/events.js';

export interface SweepJob {
  /** The point's configHash (its run folder's name). */
  hash: string;
  /** The resolved config to train; executors may set train.threads (not part of the identity). */
  config: Config;
  /** The run folder (absolute): a new run is started there, or its checkpoint resumed. */
  dir: string;
}

export type JobFailure = Omit<FailureRecord, 'at'>;

export type SweepEvent =
  | { type: 'start'; job: SweepJob; resumed: boolean }
  | { type: 'finish'; job: SweepJob; step: number; valLoss: number | null; lastLoss: number; seconds: number }
  | { type: 'stopped'; job: SweepJob; step: number | null; seconds: number }
  | { type: 'fail'; job: SweepJob; failure: JobFailure; seconds: number };

export type SweepListener = (e: SweepEvent) => void;

export interface SweepExecutor {
  /**
   * Train every job, reporting start and then exactly one of finish / stopped / fail per job it
   * starts. Resolves when all jobs are done or, after `signal` aborts, once the running ones have
   * checkpointed and stopped (jobs not yet started are not started). A failing job never rejects
   * the promise.
   */
  run(jobs: readonly SweepJob[], onEvent: SweepListener, signal?: AbortSignal): Promise<void>;
}

export type JobOutcome =
  | { ok: true; stoppedBy: 'done' | 'stopped' | 'stopAt'; step: number; valLoss: number | null; lastLoss: number }
  | { ok: false; failure: JobFailure };

/** What kind of failure an error thrown by train() is. */
export function classifyFailure(e: unknown): JobFailure {
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof TrainingDiverged) return { kind: 'diverged', reason: message, step: e.step };
  if (e instanceof ConfigError) return { kind: 'config', reason: message, step: null };
  if (e instanceof CorpusError) return { kind: 'data', reason: message, step: null };
  if (e instanceof MemoryRefusedError) return { kind: 'memory', reason: message, step: null };
  if (e instanceof CheckpointError) return { kind: 'checkpoint', reason: message, step: null };
  return { kind: 'error', reason: message, step: null };
}

/**
 * Train one job in this process: a new run, or a resume when the folder holds a checkpoint. Never
 * throws for a failed run: the outcome says why (the queue worker and the process worker call this too;
 * the queue worker listens to publish progress).
 */
export async function runJob(job: SweepJob, signal?: AbortSignal, listeners?: TrainListener[]): Promise<JobOutcome> {
  try {
    const r = await train({ config: job.config, dir: job.dir, resume: runExists(job.dir), signal, listeners });
    return { ok: true, stoppedBy: r.stoppedBy, step: r.step, valLoss: r.valLoss, lastLoss: r.lastLoss };
  } catch (e) {
    return { ok: false, failure: classifyFailure(e) };
  }
}

/** The event that ends a job, from its outcome. */
export function endEvent(job: SweepJob, o: JobOutcome, seconds: number): SweepEvent {
  if (!o.ok) return { type: 'fail', job, failure: o.failure, seconds };
  if (o.stoppedBy === 'done') return { type: 'finish', job, step: o.step, valLoss: o.valLoss, lastLoss: o.lastLoss, seconds };
  return { type: 'stopped', job, step: o.step, seconds };
}
