// Run folders: which folders a trainer may write into, and opening one as its single writer.
// A trainer writes only into a folder that is new, empty, or already a moelab run, so a typo in
// --out (or a hostile run name) can never overwrite someone's files. A folder becomes a moelab run
// when training first claims it: a small marker file records that, so a run that crashed before
// its first checkpoint is still recognised as ours.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { makeDir, writeFileAtomic } from '../io/atomic.js';
import { describeFsError, errnoCode } from '../io/fserror.js';
import { acquireRunLock, isLockFileName, type RunLock } from '../io/lock.js';
import { CHECKPOINT_FORMAT, RUN_MARKER, STATE_FILE, isObj } from './checkpoint_manifest.js';

export { RUN_MARKER };
import { recoverCheckpoint, type Recovery } from './checkpoint.js';

const MARKER_FORMAT = 'moelab-run';
/** writeFileAtomic's temp name for the marker (io/atomic.ts tempPathFor). */
const MARKER_TEMP_RE = new RegExp(`^${RUN_MARKER.replace(/\./g, '\\.')}\\.tmp-\\d+-[0-9a-f]+$`);

export class RunDirError extends Error {
  constructor(message: string, readonly dir: string) {
    super(message);
    this.name = 'RunDirError';
  }
}

/**
 * A run name must be one safe path component (it becomes `runs/<name>`): not empty, no slashes,
 * not `.` or `..`, no control characters, no leading '-' (it would read as a flag), at most 200
 * characters. Returns the name.
 */
export function checkRunName(name: string): string {
  const bad = (why: string): never => {
    throw new RunDirError(`invalid run name ${JSON.stringify(name)}: ${why}; use letters, digits, '.', '_' and '-'`, name);
  };
  if (typeof name !== 'string' || name.trim() === '') bad('it is empty');
  if (/[/\\]/.test(name)) bad('it contains a path separator');
  if (name === '.' || name === '..') bad('it names a parent or current folder');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) bad('it contains control characters');
  if (name.startsWith('-')) bad("it starts with '-'");
  if (name.length > 200) bad('it is longer than 200 characters');
  return name;
}

export interface RunDirOptions {
  /** Continue the checkpoint in the folder (it must have one) rather than start a new run (it must not). */
  resume: boolean;
}

export interface PreparedRunDir {
  dir: string;
  /** What the folder was before: created now, empty, or already a moelab run. */
  was: 'new' | 'empty' | 'run';
  /** state.json is present (a committed checkpoint, possibly damaged: loading says). */
  hasCheckpoint: boolean;
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

function list(names: string[]): string {
  return names.slice(0, 5).join(', ') + (names.length > 5 ? `, ... (${names.length} entries)` : '');
}

function mark(dir: string): void {
  try {
    writeFileAtomic(join(dir, RUN_MARKER), JSON.stringify({ format: MARKER_FORMAT, version: 1, created: new Date().toISOString() }) + '\n');
  } catch (e) {
    throw describeFsError(e, 'write into run folder', dir, 'nothing was trained');
  }
}

/**
 * Check that `dir` may hold this run, creating it (and marking it as a moelab run) when it is new
 * or empty. Refuses: an empty path; a file; a non-empty folder that is not a moelab run (its
 * state.json missing or not ours), which is never written to; with resume, a folder without a
 * checkpoint; without resume, a folder that already holds one. Takes no lock: see openRunWriter.
 */
export function prepareRunDir(dir: string, opts: RunDirOptions): PreparedRunDir {
  if (typeof dir !== 'string' || dir.trim() === '') {
    throw new RunDirError("the run folder is empty (--out ''): give a folder for the run, e.g. --out runs/my-run", String(dir));
  }
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new RunDirError(`${dir} is a file, not a folder: choose another --out`, dir);
    names = readdirSync(dir);
  } catch (e) {
    if (e instanceof RunDirError) throw e;
    if (errnoCode(e) !== 'ENOENT') throw describeFsError(e, 'open run folder', dir, 'nothing was written');
    if (opts.resume) throw new RunDirError(`nothing to resume: ${dir} does not exist`, dir);
    try {
      makeDir(dir);
    } catch (e2) {
      throw describeFsError(e2, 'create run folder', dir, 'nothing was written');
    }
    mark(dir);
    return { dir, was: 'new', hasCheckpoint: false };
  }
  if (names.length === 0) {
    if (opts.resume) throw new RunDirError(`nothing to resume: ${dir} is empty`, dir);
    mark(dir);
    return { dir, was: 'empty', hasCheckpoint: false };
  }
  const marker = readJson(join(dir, RUN_MARKER));
  const markedOurs = isObj(marker) && marker.format === MARKER_FORMAT;
  const hasCheckpoint = names.includes(STATE_FILE);
  const state = hasCheckpoint ? readJson(join(dir, STATE_FILE)) : undefined;
  const stateOurs = isObj(state) && state.format === CHECKPOINT_FORMAT;
  if (hasCheckpoint && !stateOurs && !markedOurs) {
    throw new RunDirError(`${dir} is not a moelab run: its ${STATE_FILE} is not a moelab checkpoint (unreadable or written by another program). ` +
      'moelab will not write into it; choose another --out', dir);
  }
  // a lock file, or the temp file of a marker another trainer is writing this instant, means the
  // folder is being claimed by moelab right now: the lock decides who trains it
  const claiming = names.every((n) => isLockFileName(n) || MARKER_TEMP_RE.test(n));
  if (!markedOurs && !stateOurs && !claiming) {
    throw new RunDirError(`${dir} is not empty and not a moelab run (it holds ${list(names.sort())}). ` +
      'moelab will not write into it; choose another --out, or empty the folder', dir);
  }
  if (opts.resume && !hasCheckpoint) throw new RunDirError(`nothing to resume: ${dir} has no checkpoint yet (${STATE_FILE} is missing); start it without --resume`, dir);
  if (!opts.resume && hasCheckpoint) {
    const step = isObj(state) && isObj(state.state) && typeof state.state.step === 'number' ? ` (step ${state.state.step})` : '';
    throw new RunDirError(`${dir} already holds a checkpoint${step}: pass --resume to continue it, or choose another --out`, dir);
  }
  if (!markedOurs) mark(dir);
  return { dir, was: 'run', hasCheckpoint };
}

export interface RunWriter extends PreparedRunDir {
  lock: RunLock;
  /** What recoverCheckpoint did: a cut-short save completed, orphan temps removed. */
  recovered: Recovery;
  /** Release the lock (idempotent). */
  release(): void;
}

/**
 * Open `dir` as its single writer, for the life of a training process: validate (prepareRunDir),
 * take the lock (acquireRunLock: throws RunLockedError naming the holder), validate again under
 * the lock (a racing trainer may have saved in between), then finish or sweep what a crashed
 * save left (recoverCheckpoint). Pass `lock` to saveCheckpoint; call release() when done.
 */
export function openRunWriter(dir: string, opts: RunDirOptions & { command?: string }): RunWriter {
  const { was } = prepareRunDir(dir, opts);
  const lock = acquireRunLock(dir, { command: opts.command });
  try {
    const { hasCheckpoint } = prepareRunDir(dir, opts);
    const recovered = recoverCheckpoint(dir);
    return { dir, was, hasCheckpoint, lock, recovered, release: () => lock.release() };
  } catch (e) {
    lock.release();
    throw e;
  }
}
