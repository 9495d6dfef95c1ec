/**
 * What evaluation reads from and writes to a run directory. A run is read-only to evaluation with
 * one exception: result files under `<run>/eval/`, each written atomically (temp file, fsync,
 * rename), so a reader sees the old file or the new one and a training process is never disturbed
 * (it never reads or writes `eval/`).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import type { DataIdentity } from '../data/identity.js';

export const RESULTS_DIR = 'eval';

/** The data identity a run recorded in state.json (null when absent or unreadable: nothing to compare). */
export function readRunDataIdentity(runDir: string): DataIdentity | null {
  try {
    const m = JSON.parse(readFileSync(join(runDir, 'state.json'), 'utf8')) as { state?: { data?: DataIdentity } };
    const d = m.state?.data;
    return d && typeof d.hash === 'string' && Array.isArray(d.files) ? d : null;
  } catch {
    return null;
  }
}

/** A file name from free text: letters, digits, '.', '_' and '-' kept, anything else '_'. */
export function safeFileName(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_').slice(0, 120) || '_';
}

/** Writes `value` as JSON to `<run>/eval/<name>.json` atomically; returns the path. */
export function writeRunResult(runDir: string, name: string, value: unknown): string {
  const dir = join(runDir, RESULTS_DIR);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${safeFileName(name)}.json`);
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
  return path;
}

/** Writes `value` as JSON to `path` atomically (creating its folder). */
export function writeResultFile(path: string, value: unknown): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
  return path;
}
