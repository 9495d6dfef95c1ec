// Run ids are paths relative to the runs folder ('sweep1/runs/3fa2'). Every id that arrives in a
// request goes through resolveRunPath before any file is touched: it must be a plain relative path
// ('..', '.', empty segments, backslashes, NUL and absolute paths refused) and its real location
// (symlinks resolved) must lie inside the real runs folder. Anything else is refused, not repaired.
import { realpathSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';

export class BadRunPath extends Error {
  constructor(message: string, readonly status: 400 | 404) {
    super(message);
    this.name = 'BadRunPath';
  }
}

/** Real path of `root`; throws a clear error when it is not an existing folder. */
export function realRoot(root: string): string {
  try {
    return realpathSync(root);
  } catch {
    throw new Error(`runs folder '${root}' does not exist: pass --runs <dir> with an existing folder`);
  }
}

/** Is `p` (already real) `root` itself or inside it? */
export function isInside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** Checks the form of an id without touching the disk (400 when malformed). */
export function checkRunId(id: string): string[] {
  if (typeof id !== 'string' || id.length === 0 || id.length > 1024) throw new BadRunPath('run id missing or too long', 400);
  if (id.includes('\0') || id.includes('\\') || id.startsWith('/') || isAbsolute(id)) throw new BadRunPath(`run id '${id}' is not a relative path`, 400);
  const parts = id.split('/');
  for (const p of parts) {
    if (p === '' || p === '.' || p === '..') throw new BadRunPath(`run id '${id}' must not contain '.', '..' or empty segments`, 400);
  }
  return parts;
}

/** Absolute real path of run `id` under real root `root`; 400 for malformed ids, 404 for missing or escaping ones. */
export function resolveRunPath(root: string, id: string): string {
  const parts = checkRunId(id);
  let real: string;
  try {
    real = realpathSync(join(root, ...parts));
  } catch {
    throw new BadRunPath(`no run '${id}'`, 404);
  }
  // a symlink inside the folder that points outside it is treated as absent
  if (!isInside(root, real)) throw new BadRunPath(`no run '${id}'`, 404);
  return real;
}

/** The id of an absolute path below root ('/'-separated). */
export function runIdOf(root: string, abs: string): string {
  return relative(root, abs).split(sep).join('/');
}
