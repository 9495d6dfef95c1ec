// Where a number came from: every run records the moelab version, git commit, machine, kernels and
// seed of each process that trained it, so any figure can be traced and reproduced.
import { cpus, hostname } from 'node:os';
import { computeInfo } from '../tensor/index.js';
import { gitCommit, moelabVersion } from '../util/package.js';

export interface RunProvenance {
  moelab: string;
  /** Git commit of the moelab checkout ('-dirty' with local changes), null for an installed package. */
  commit: string | null;
  node: string;
  host: string;
  cpu: string;
  backend: string;
  isa: string;
  threads: number;
  seed: number;
  /** When this process started (ISO 8601). */
  startedAt: string;
}

export function currentProvenance(seed: number): RunProvenance {
  const c = computeInfo();
  return {
    moelab: moelabVersion(),
    commit: gitCommit(),
    node: process.version,
    host: hostname(),
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    backend: c.backend,
    isa: c.isa,
    threads: c.threads,
    seed,
    startedAt: new Date().toISOString(),
  };
}
