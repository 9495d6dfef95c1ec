// File-system failures as sentences a user can act on. Node's own messages name the syscall and
// errno ("ENOSPC: no space left on device, write"), which says neither what moelab was doing nor
// whether anything was lost; these say what happened, what to do, and (from the caller) what state
// the data is in.

/** A file-system failure with a readable message; `code` and `cause` keep the original errno. */
export class FsError extends Error {
  constructor(message: string, readonly code: string, readonly path: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FsError';
  }
}

// [what happened, what to do]
const EXPLAIN: Record<string, [string, string]> = {
  ENOSPC: ['the disk is full', 'free some space or choose a location on another disk, then try again'],
  EDQUOT: ['the disk quota is used up', 'free some space or raise the quota, then try again'],
  EFBIG: ['the file is too large for this file system', 'choose a location on another file system'],
  EACCES: ['permission denied', 'check that you may write to (or read) this folder and its parents, or choose another location'],
  EPERM: ['the operation is not permitted', 'check the permissions and attributes of this folder, or choose another location'],
  EROFS: ['the file system is read-only', 'choose a location on a writable file system'],
  ENOTDIR: ['part of the path is a file, not a folder', 'check the path, or move that file away'],
  EISDIR: ['a folder is in the way where a file should be', 'remove or rename that folder'],
  ENOENT: ['it does not exist', 'check the path'],
  EEXIST: ['something already exists there', 'remove it or choose another location'],
  ENOTEMPTY: ['the folder is not empty', 'empty it or choose another location'],
  EMFILE: ['this process has too many open files', 'raise the open-file limit (ulimit -n) and try again'],
  ENFILE: ['the system has too many open files', 'close other programs and try again'],
  EIO: ['the disk reported an input/output error (it may be failing)', 'check the disk and copy the run somewhere safe'],
  ENAMETOOLONG: ['the path is too long', 'use a shorter path'],
  ELOOP: ['the path contains a loop of symbolic links', 'fix the links in the path'],
  EBUSY: ['the file or folder is busy', 'wait for the other program to finish and try again'],
  ETXTBSY: ['the file is busy', 'wait for the other program to finish and try again'],
  EXDEV: ['the move crosses file systems', 'keep the run on one file system'],
  ESTALE: ['the network file handle went stale', 'remount the file system and try again'],
};

/** The errno code of a Node file-system error, or undefined for other errors. */
export function errnoCode(e: unknown): string | undefined {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/**
 * Turn a failed file-system call into "cannot <action> <path>: <what happened> (<CODE>); <what to
 * do>[; <consequence>]", e.g. describeFsError(e, 'write checkpoint to', 'runs/x', 'the previous
 * checkpoint is intact'). Errors without an errno code (bugs, our own checks) come back as they
 * are, so callers can wrap every failure without hiding anything.
 */
export function describeFsError(e: unknown, action: string, path: string, consequence?: string): Error {
  const code = errnoCode(e);
  if (!code) return e instanceof Error ? e : new Error(String(e));
  if (e instanceof FsError) return e;
  const [what, todo] = EXPLAIN[code] ?? [`the system reported ${(e as Error).message}`, 'check the path and try again'];
  const detail = (e as NodeJS.ErrnoException).path && (e as NodeJS.ErrnoException).path !== path ? ` (at ${(e as NodeJS.ErrnoException).path})` : '';
  const msg = `cannot ${action} ${path}: ${what}${detail} (${code}); ${todo}${consequence ? `; ${consequence}` : ''}`;
  return new FsError(msg, code, path, { cause: e });
}
