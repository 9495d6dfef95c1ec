// Where moelab is installed and which version it is: run provenance and asset lookup need both.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | null = null;

/** The folder holding moelab's package.json (works from src/ under ts and from dist/). */
export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('moelab: cannot find its package root (package.json)');
    dir = up;
  }
  return (root = dir);
}

let version: string | null = null;

export function moelabVersion(): string {
  if (version) return version;
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: string };
  return (version = pkg.version ?? 'unknown');
}

let commit: string | null | undefined;

/** The git commit moelab runs from, with '-dirty' when the work tree has changes; null outside git. */
export function gitCommit(): string | null {
  if (commit !== undefined) return commit;
  try {
    const cwd = packageRoot();
    const git = (args: string[]) => execFileSync('git', args, { cwd, timeout: 3000, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    // an installed copy inside someone else's repository must not report that repository's commit
    if (realpathSync(git(['rev-parse', '--show-toplevel'])) !== realpathSync(cwd)) return (commit = null);
    const head = git(['rev-parse', 'HEAD']);
    const dirty = git(['status', '--porcelain', '--untracked-files=no']);
    commit = dirty ? `${head}-dirty` : head;
  } catch {
    commit = null;
  }
  return commit;
}
