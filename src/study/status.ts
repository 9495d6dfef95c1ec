// Where a sweep point stands, read from its run folder without writing anything:
//   running  the run's lock file is present, or its last checkpoint is short of train.steps (then
//            it is training or was interrupted: re-running the sweep resumes it)
//   failed   failed.json records why (divergence, a refused config, a crash)
//   done     state.json's step has reached train.steps
//   pending  nothing trained yet
// state.json is the checkpoint's commit point (train/checkpoint.ts), so the step it records is a
// complete checkpoint's even while a save is in flight; it is parsed, not loaded (loading may
// finish a cut-short save, which is a write).
// The run lock (io/lock.ts) says whether a trainer holds the folder now: held by a live process on
// this host, or from another host (which cannot be checked from here), counts as running; a lock
// left by a dead process does not.
import { mkdirSync, readFileSync } from 'node:fs';
import { readRunLock } from '../io/lock.js';
import { join } from 'node:path';
import { removeQuietly, writeFileAtomic } from '../io/atomic.js';
import { STATE_FILE } from '../train/checkpoint.js';

export const FAILED_FILE = 'failed.json';

export type PointState = 'done' | 'running' | 'failed' | 'pending';

export interface FailureRecord {
  /** diverged: NaN/Inf; config / data / checkpoint: refused input; crash: the process died; error: anything else. */
  kind: 'diverged' | 'config' | 'memory' | 'data' | 'checkpoint' | 'crash' | 'error';
  reason: string;
  /** Last completed step when it failed, when known. */
  step: number | null;
  at: string;
}

/** What state.json says about a run (null when there is no readable one). */
export interface CommittedState {
  step: number;
  tokensSeen: number;
  lastLoss: number | null;
  valLoss: number | null;
}

export function readCommittedState(runDir: string): CommittedState | null {
  let m: { state?: Record<string, unknown> };
  try {
    m = JSON.parse(readFileSync(join(runDir, STATE_FILE), 'utf8')) as typeof m;
  } catch {
    return null;
  }
  const s = m.state;
  if (!s || typeof s.step !== 'number') return null;
  const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  return { step: s.step, tokensSeen: num(s.tokensSeen) ?? 0, lastLoss: num(s.lastLoss), valLoss: num(s.valLoss) };
}

export function readFailure(runDir: string): FailureRecord | null {
  try {
    return JSON.parse(readFileSync(join(runDir, FAILED_FILE), 'utf8')) as FailureRecord;
  } catch {
    return null;
  }
}

export function recordFailure(runDir: string, f: Omit<FailureRecord, 'at'>, now = new Date()): FailureRecord {
  mkdirSync(runDir, { recursive: true });
  const rec = { ...f, at: now.toISOString() };
  writeFileAtomic(join(runDir, FAILED_FILE), JSON.stringify(rec, null, 2) + '\n');
  return rec;
}

export const clearFailure = (runDir: string): void => removeQuietly(join(runDir, FAILED_FILE));

export interface PointStatus {
  state: PointState;
  /** Committed step (null without a checkpoint). */
  step: number | null;
  steps: number;
  locked: boolean;
  /** Why it failed, or what "running" is based on. */
  reason: string | null;
  valLoss: number | null;
}

export function pointStatus(runDir: string, steps: number): PointStatus {
  const st = readCommittedState(runDir);
  const step = st?.step ?? null;
  const lock = readRunLock(runDir);
  const locked = lock !== null && lock.state !== 'stale';
  const base = { step, steps, locked, valLoss: st?.valLoss ?? null };
  if (locked) {
    const h = lock.holder;
    return { ...base, state: 'running', reason: h ? `lock held by pid ${h.pid} on ${h.host}` : 'lock held' };
  }
  const failed = readFailure(runDir);
  if (failed) return { ...base, state: 'failed', reason: `${failed.kind}: ${failed.reason}` };
  if (step !== null && step >= steps) return { ...base, state: 'done', reason: null };
  if (step !== null) return { ...base, state: 'running', reason: `checkpoint at step ${step} of ${steps}, no lock: training, or interrupted (re-run the sweep to resume)` };
  return { ...base, state: 'pending', reason: null };
}
