// One writer per run folder. The lock is a file, `<dir>/moelab.lock`, holding who holds it (pid,
// host, start time, command, a random token). It appears atomically and complete: the content is
// written to a temp file which is then hard-linked to the lock name, and link() fails with EEXIST
// when the name exists, so of any number of processes racing, exactly one wins.
//
// A lock left by a process that died is stale. On the same host that is decided by the pid (not
// alive, or alive but a different process: another boot, or another start time in /proc), and a
// stale lock is taken over. On another host we cannot tell, so we say so and tell the user how to
// break it rather than steal it. Taking over is itself serialised by a short-lived `.break` file,
// so two processes that both find the same stale lock cannot remove each other's fresh locks.
import { closeSync, linkSync, openSync, readFileSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { removeQuietly, writeAll } from './atomic.js';
import { describeFsError, errnoCode } from './fserror.js';

export const LOCK_FILE = 'moelab.lock';
const BREAK_SUFFIX = '.break';
const LOCK_TEMP_RE = /^moelab\.lock\.tmp-\d+-[0-9a-f]+$/;
/** A lock file that cannot be parsed, or a `.break` file, older than this is left by a crash. */
const ABANDONED_MS = 10_000;

export interface LockHolder {
  pid: number;
  host: string;
  startedAt: string;
  command: string;
  token: string;
  /** Linux: the boot the holder ran in and its start time in clock ticks since boot (pid reuse). */
  bootId?: string;
  procStart?: string;
}

export interface RunLock {
  readonly dir: string;
  readonly path: string;
  readonly holder: LockHolder;
  /** True while the lock file on disk is still this one (nobody removed or replaced it). */
  held(): boolean;
  /** Throws when held() is false: saving now could clobber another writer. */
  assertHeld(): void;
  /** Remove the lock file if it is still ours. Idempotent. */
  release(): void;
}

export class RunLockedError extends Error {
  constructor(message: string, readonly dir: string, readonly holder: LockHolder | null) {
    super(message);
    this.name = 'RunLockedError';
  }
}

function readTrim(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

const BOOT_ID = readTrim('/proc/sys/kernel/random/boot_id');

/** Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat), Linux only. */
function procStart(pid: number): string | undefined {
  const stat = readTrim(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  // the command name (field 2) may contain spaces and parentheses: split after the last ')'
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errnoCode(e) === 'EPERM'; // exists, owned by someone else
  }
}

/** Whether the holder (on this host) is certainly gone. */
function holderDead(h: LockHolder): boolean {
  if (h.bootId && BOOT_ID && h.bootId !== BOOT_ID) return true;
  if (!pidAlive(h.pid)) return true;
  const now = h.procStart ? procStart(h.pid) : undefined;
  return now !== undefined && now !== h.procStart; // the pid now belongs to another process
}

function parseHolder(text: string | undefined): LockHolder | null {
  if (!text) return null;
  try {
    const h = JSON.parse(text) as LockHolder;
    return Number.isSafeInteger(h.pid) && h.pid > 0 && typeof h.host === 'string' && typeof h.token === 'string' ? h : null;
  } catch {
    return null;
  }
}

function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
function sleepMs(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/** Create `path` with `text`, failing with EEXIST when it exists; never visible half-written. */
function createExclusive(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fd = openSync(tmp, 'wx', 0o644);
  try {
    writeAll(fd, Buffer.from(text, 'utf8'));
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
  } catch (e) {
    const code = errnoCode(e);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw e;
    // no hard links here (some network / FUSE file systems): O_EXCL create; a reader may then
    // briefly see an empty file, which counts as "being created" (see acquireRunLock)
    const fd2 = openSync(path, 'wx', 0o644);
    try {
      writeAll(fd2, Buffer.from(text, 'utf8'));
    } finally {
      closeSync(fd2);
    }
  } finally {
    removeQuietly(tmp);
  }
}

/** Remove a stale lock whose content is `staleText`, unless someone replaced it meanwhile. */
function breakStale(path: string, staleText: string): void {
  const brk = path + BREAK_SUFFIX;
  try {
    closeSync(openSync(brk, 'wx'));
  } catch (e) {
    if (errnoCode(e) !== 'EEXIST') throw e;
    if (ageMs(brk) > ABANDONED_MS) removeQuietly(brk); // a breaker that crashed
    sleepMs(20);
    return; // someone else is breaking it: look again
  }
  try {
    if (readTrim(path) === staleText.trim()) unlinkSync(path);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
  } finally {
    removeQuietly(brk);
  }
}

function describeHolder(h: LockHolder): string {
  return `pid ${h.pid} on host ${h.host} since ${h.startedAt}${h.command ? ` (${h.command})` : ''}`;
}

export interface LockInfo {
  /** What the holder is doing, shown to whoever finds the run locked (e.g. the command line). */
  command?: string;
}

/**
 * Take the exclusive writer lock of run folder `dir` (which must exist), for the life of a training
 * process. Throws RunLockedError naming the holder when another live process has it; takes over a
 * lock left by a dead process on this host; refuses (with how to break it) a lock held from
 * another host. Call release() when done; if the process dies instead, the lock goes stale.
 */
export function acquireRunLock(dir: string, info: LockInfo = {}): RunLock {
  const path = join(dir, LOCK_FILE);
  const started = procStart(process.pid);
  const holder: LockHolder = {
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    command: info.command ?? process.argv.slice(1).join(' '),
    token: randomBytes(16).toString('hex'),
    ...(BOOT_ID ? { bootId: BOOT_ID } : {}),
    ...(started ? { procStart: started } : {}),
  };
  const text = JSON.stringify(holder, null, 2) + '\n';
  for (let attempt = 0; ; attempt++) {
    try {
      createExclusive(path, text);
      sweepLockTemps(dir);
      return makeLock(dir, path, holder);
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw describeFsError(e, 'lock run folder', dir, 'nothing was changed');
    }
    const seen = readTrim(path);
    const other = parseHolder(seen);
    if (attempt >= 50) throw new RunLockedError(`${dir} is locked (${path}) and the lock could not be taken over; try again`, dir, other);
    if (seen === undefined) continue; // released meanwhile: try again
    if (!other) {
      if (ageMs(path) < ABANDONED_MS) {
        sleepMs(20); // being created right now (no-hard-link fallback)
        continue;
      }
      breakStale(path, seen); // unreadable and old: left by a crash while it was created
      continue;
    }
    if (other.host !== holder.host) {
      throw new RunLockedError(`${dir} is being trained by ${describeHolder(other)}. moelab cannot check from host ${holder.host} ` +
        `whether that process is still running. If it is not, remove ${path} and try again.`, dir, other);
    }
    if (!holderDead(other)) {
      throw new RunLockedError(`${dir} is being trained by ${describeHolder(other)}${other.pid === process.pid ? ' (this process)' : ''}. ` +
        'Wait for it to finish or stop it, or choose another folder.', dir, other);
    }
    breakStale(path, seen);
  }
}

function makeLock(dir: string, path: string, holder: LockHolder): RunLock {
  let released = false;
  const held = (): boolean => !released && parseHolder(readTrim(path))?.token === holder.token;
  return {
    dir, path, holder, held,
    assertHeld(): void {
      if (held()) return;
      const now = parseHolder(readTrim(path));
      throw new RunLockedError(`lost the lock on ${dir}: ${path} ${now ? `now belongs to ${describeHolder(now)}` : 'was removed'}; ` +
        'stopping without writing, so as not to clobber another writer', dir, now);
    },
    release(): void {
      if (released) return;
      if (held()) removeQuietly(path);
      released = true;
    },
  };
}

export interface LockStatus {
  /** null when the lock file cannot be parsed (being created, or damaged). */
  holder: LockHolder | null;
  /** `training`: held by a live process on this host; `stale`: its process is gone; `unknown`: held from another host, or unreadable. */
  state: 'training' | 'stale' | 'unknown';
}

/** Who holds the run's lock, for readers (a dashboard, eval): null when nobody does. Read-only. */
export function readRunLock(dir: string): LockStatus | null {
  const text = readTrim(join(dir, LOCK_FILE));
  if (text === undefined) return null;
  const holder = parseHolder(text);
  if (!holder || holder.host !== hostname()) return { holder, state: 'unknown' };
  return { holder, state: holderDead(holder) ? 'stale' : 'training' };
}

/** Temp files of lock attempts that crashed before cleaning up (older than a few seconds). */
function sweepLockTemps(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const f of names) {
    const p = join(dir, f);
    if ((LOCK_TEMP_RE.test(f) || f === LOCK_FILE + BREAK_SUFFIX) && ageMs(p) > ABANDONED_MS) removeQuietly(p);
  }
}

/** True for the names the lock leaves in a run folder (the lock, its temps, the break file). */
export function isLockFileName(name: string): boolean {
  return name === LOCK_FILE || name === LOCK_FILE + BREAK_SUFFIX || LOCK_TEMP_RE.test(name);
}
