/**
 * Where `moelab inspect` may write. Readers never write into a run folder while a trainer holds its
 * lock (one writer per run, DESIGN.md): the default `<run>/inspect` is used only when nobody holds
 * the lock (or its holder died); otherwise the caller must name another folder, and a folder inside
 * the locked run is refused too.
 */
import { join, relative, resolve, isAbsolute } from 'node:path';
import { readRunLock, type LockStatus } from '../io/lock.js';

export const INSPECT_DIR = 'inspect';

export class InspectOutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InspectOutError';
  }
}

function holderText(l: LockStatus): string {
  const h = l.holder;
  if (!h) return 'its lock file is being written or unreadable';
  const who = `pid ${h.pid} on ${h.host}, since ${h.startedAt}${h.command ? `: ${h.command}` : ''}`;
  return l.state === 'training' ? `a trainer holds its lock (${who})` : `its lock is held from another host or cannot be checked (${who})`;
}

/** The folder to write the inspection of `runDir` into: `out`, or `<run>/inspect` when the run is not locked. */
export function inspectOutDir(runDir: string, out?: string): string {
  const lock = readRunLock(runDir);
  const held = lock !== null && lock.state !== 'stale';
  if (out === undefined) {
    if (held) {
      throw new InspectOutError(`${runDir} is being written: ${holderText(lock)}. A reader does not write into a run folder ` +
        'while its trainer holds the lock: pass --out DIR (outside the run) for the heatmap and routing.json, or --no-save');
    }
    return join(runDir, INSPECT_DIR);
  }
  if (held) {
    const rel = relative(resolve(runDir), resolve(out));
    if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) {
      throw new InspectOutError(`--out ${out} is inside ${runDir}, whose trainer holds the lock (${holderText(lock)}): choose a folder outside the run`);
    }
  }
  return out;
}
