// Crash-safe file replacement: write `path.tmp-<pid>-<rand>`, fsync it, rename it over `path`, then
// fsync the directory so the rename itself is durable. A reader sees either the old file or the
// complete new one, never a partial write. Synchronous (checkpoint writes sit inside a sync loop).
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';

/** Writes the whole content through `fd` (use `writeAll`); may return a value (e.g. a digest). */
export type FileWriter<T> = (fd: number) => T;

const CHUNK = 1 << 26; // 64 MiB per write call: below the 2 GiB limit of one write

/** Write all of `data` at the fd's current position (loops over partial writes). */
export function writeAll(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.byteLength) {
    const n = writeSync(fd, data, off, Math.min(CHUNK, data.byteLength - off));
    if (n <= 0) throw new Error(`write returned ${n}`);
    off += n;
  }
}

/** fsync a directory (no-op where directories cannot be opened or synced, e.g. Windows). */
export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM' && code !== 'EBADF') throw e;
  } finally {
    closeSync(fd);
  }
}

export function tempPathFor(path: string): string {
  return `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/**
 * Write `content` (a string, bytes, or a writer given the fd) to a fresh temp file beside `path`
 * and fsync it, without touching `path`. Returns the temp path (for renameIntoPlace) and the
 * writer's result. On failure the temp file is removed.
 */
export function writeTemp<T = void>(path: string, content: string | Uint8Array | FileWriter<T>, opts: { mode?: number } = {}): { tmp: string; result: T | undefined } {
  const tmp = tempPathFor(path);
  const fd = openSync(tmp, 'wx', opts.mode ?? 0o644);
  let result: T | undefined;
  let ok = false;
  try {
    if (typeof content === 'function') result = content(fd);
    else writeAll(fd, typeof content === 'string' ? Buffer.from(content, 'utf8') : content);
    fsyncSync(fd);
    ok = true;
  } finally {
    closeSync(fd);
    if (!ok) removeQuietly(tmp);
  }
  return { tmp, result };
}

/** Rename a temp file written by writeTemp over `path` (atomic on POSIX); fsync the directory. */
export function renameIntoPlace(tmp: string, path: string, syncDir = true): void {
  try {
    renameSync(tmp, path);
  } catch (e) {
    removeQuietly(tmp);
    throw e;
  }
  if (syncDir) fsyncDir(dirname(path));
}

export function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* already gone */
  }
}

/**
 * Atomically replace `path` with `content`: a string (UTF-8), bytes, or a writer function that
 * receives an fd opened for writing. Returns the writer's return value.
 */
export function writeFileAtomic<T = void>(path: string, content: string | Uint8Array | FileWriter<T>, opts: { mode?: number } = {}): T | undefined {
  const { tmp, result } = writeTemp(path, content, opts);
  renameIntoPlace(tmp, path);
  return result;
}

/**
 * mkdir -p that reports the real cause: Node's recursive mkdir says ENOENT for some failures
 * (e.g. on a read-only file system), so on failure the last step is retried alone to get its errno.
 */
export function makeDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    try {
      mkdirSync(dir);
    } catch (e2) {
      const code = (e2 as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'EEXIST') throw e2;
    }
    throw e;
  }
}
