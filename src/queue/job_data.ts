// What travels through the queue: a resolved config and where its run folder is, relative to the
// folder every worker shares (`--runs`). Nothing else: no code, no absolute paths. Anyone who can
// write to Redis can submit a job, so the worker checks each one before touching the disk:
//   - the run folder is a relative path that stays inside --runs (no '..', not absolute, and no
//     symbolic link on the way that leads out of it);
//   - its last component is the config's hash (the sweep's run identity);
//   - the config passes the config schema (resolveConfig), and its data files lie inside --runs or
//     one of the worker's --data folders (so a job cannot make a worker read, say, /etc).
import { existsSync, realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { resolveConfig } from '../config/load.js';
import { configHash } from '../config/hash.js';
import type { Config } from '../config/schema.js';
import type { SweepJob } from '../study/executor.js';

export interface QueueJobData {
  /** The point's configHash. */
  hash: string;
  /** The resolved config (train.threads is set by the worker). */
  config: Config;
  /** The run folder relative to the shared runs folder, '/'-separated. */
  dir: string;
}

export class JobRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JobRefused';
  }
}

const inside = (root: string, p: string): boolean => {
  const r = relative(root, p);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
};

/** The real path of p, or of its nearest existing ancestor with the rest appended (p need not exist yet). */
function realPathSoFar(p: string): string {
  let head = p;
  const tail: string[] = [];
  while (!existsSync(head)) {
    const up = dirname(head);
    if (up === head) break;
    tail.unshift(basename(head));
    head = up;
  }
  return resolve(realpathSync(head), ...tail);
}

/** The job id of a point: its run folder relative to the shared runs folder (ends in the point's hash). */
export function jobIdFor(relDir: string): string {
  if (relDir.includes(':')) throw new Error(`the run folder ${relDir} has a ':' in its path, which a queue job id cannot hold; move the sweep folder`);
  return relDir;
}

/** The run folder of an absolute path, relative to the shared runs folder (for submitting). */
export function relativeRunDir(runsRoot: string, runDir: string): string {
  const root = resolve(runsRoot), abs = resolve(runDir);
  if (!inside(root, abs) || root === abs) {
    throw new Error(`the sweep's run folder ${abs} is not inside the shared runs folder ${root}: put the sweep folder (--out) under the folder the workers were started with (--runs)`);
  }
  return relative(root, abs).split(sep).join('/');
}

/**
 * The job as a SweepJob with an absolute run folder, or JobRefused saying why not.
 * `dataRoots`: folders data files may come from besides runsRoot.
 */
export function validateJob(data: unknown, runsRoot: string, dataRoots: readonly string[] = []): SweepJob {
  if (typeof data !== 'object' || data === null) throw new JobRefused('the job is not an object');
  const d = data as Record<string, unknown>;
  if (typeof d.hash !== 'string' || !/^[0-9a-f]{4,64}$/.test(d.hash)) throw new JobRefused(`the job's hash ${JSON.stringify(d.hash)} is not a config hash`);
  if (typeof d.dir !== 'string' || d.dir === '') throw new JobRefused('the job has no run folder (dir)');
  if (isAbsolute(d.dir) || /^[A-Za-z]:/.test(d.dir) || d.dir.includes('\\') || d.dir.split('/').some((c) => c === '..' || c === '.' || c === '')) {
    throw new JobRefused(`the job's run folder ${JSON.stringify(d.dir)} must be a plain relative path inside the runs folder (no '..', '.', empty or absolute parts)`);
  }
  const root = realpathSync(resolve(runsRoot));
  const dir = resolve(root, d.dir);
  if (!inside(root, realPathSoFar(dir))) throw new JobRefused(`the job's run folder ${d.dir} leads out of the runs folder ${root} through a symbolic link`);
  if (basename(dir) !== d.hash) throw new JobRefused(`the job's run folder ${d.dir} is not named by its hash ${d.hash}`);
  let config: Config;
  try {
    config = resolveConfig(d.config, { source: `queued config of ${d.dir}` });
  } catch (e) {
    throw new JobRefused((e as Error).message);
  }
  if (configHash(config) !== d.hash) throw new JobRefused(`the job's config hashes to ${configHash(config)}, not to its hash ${d.hash}: not a sweep point`);
  const roots = [root, ...dataRoots.map((r) => realPathSoFar(resolve(r)))];
  for (const p of config.data.paths) {
    const real = realPathSoFar(p);
    if (!roots.some((r) => inside(r, real))) {
      throw new JobRefused(`the job's data path ${p} is outside the runs folder and the worker's --data folders (${roots.join(', ')})`);
    }
  }
  return { hash: d.hash, config, dir };
}
