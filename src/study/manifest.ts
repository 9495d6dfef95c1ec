// A sweep folder:
//   sweep.json         the manifest: the spec, and every point ever expanded from it (hash, axis
//                      values, family, resolved config), those of earlier specs marked inSpec false
//   runs/<hash>/       one ordinary run directory per point, named by its configHash
//   results.json/.csv  what collectResults found (study/results.ts)
// The manifest is replaced atomically (io/atomic.ts), so a reader sees the old or the new one.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { SweepPoint } from './expand.js';
import type { SweepSpec } from './spec.js';

export const SWEEP_FILE = 'sweep.json';
export const RUNS_DIR = 'runs';
export const SWEEP_FORMAT = 'moelab-sweep';
export const SWEEP_VERSION = 1;

export interface ManifestPoint {
  hash: string;
  name: string;
  family: string;
  axes: Record<string, unknown>;
  seed: number;
  budget: number | null;
  steps: number;
  trainingFlops: number;
  /** The run folder relative to the sweep folder (runs/<hash>). */
  dir: string;
  /** False for points of an earlier spec that the current one no longer produces. */
  inSpec: boolean;
  duplicates: Record<string, unknown>[];
  config: Config;
}

export interface SweepManifest {
  format: typeof SWEEP_FORMAT;
  version: number;
  createdAt: string;
  updatedAt: string;
  spec: SweepSpec;
  points: ManifestPoint[];
}

export const runDirOf = (sweepDir: string, hash: string): string => join(sweepDir, RUNS_DIR, hash);

export function manifestPoint(p: SweepPoint): ManifestPoint {
  return {
    hash: p.hash, name: p.name, family: p.family, axes: p.axes, seed: p.seed, budget: p.budget, steps: p.config.train.steps,
    trainingFlops: p.trainingFlops, dir: `${RUNS_DIR}/${p.hash}`, inSpec: true, duplicates: p.duplicates, config: p.config,
  };
}

/** The sweep folder's manifest, or null when there is none. A ConfigError-like message on a bad file. */
export function readManifest(sweepDir: string): SweepManifest | null {
  const path = join(sweepDir, SWEEP_FILE);
  if (!existsSync(path)) return null;
  let m: unknown;
  try {
    m = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path} is not valid JSON (${(e as Error).message}): the sweep manifest is damaged; move it away to start the sweep afresh`);
  }
  const o = m as Partial<SweepManifest>;
  if (o?.format !== SWEEP_FORMAT || !Array.isArray(o.points)) throw new Error(`${path} is not a moelab sweep manifest`);
  if (o.version !== SWEEP_VERSION) throw new Error(`${path} has sweep format version ${String(o.version)}; this moelab reads version ${SWEEP_VERSION}`);
  return o as SweepManifest;
}

/** A sweep folder's manifest or a clear error when the folder holds no sweep. */
export function requireManifest(sweepDir: string): SweepManifest {
  const m = readManifest(sweepDir);
  if (!m) throw new Error(`${sweepDir} holds no sweep (${SWEEP_FILE} missing): run \`moelab sweep --spec FILE --out ${sweepDir}\` first`);
  return m;
}

/**
 * The manifest for the current spec's points: the current points first (in spec order), then the
 * earlier manifest's points the spec no longer produces, marked inSpec false. Their run folders
 * stay where they are.
 */
export function mergeManifest(old: SweepManifest | null, spec: SweepSpec, points: SweepPoint[], now = new Date()): SweepManifest {
  const current = points.map(manifestPoint);
  const hashes = new Set(current.map((p) => p.hash));
  const dropped = (old?.points ?? []).filter((p) => !hashes.has(p.hash)).map((p) => ({ ...p, inSpec: false }));
  return {
    format: SWEEP_FORMAT, version: SWEEP_VERSION, createdAt: old?.createdAt ?? now.toISOString(), updatedAt: now.toISOString(),
    spec, points: [...current, ...dropped],
  };
}

export function writeManifest(sweepDir: string, m: SweepManifest): void {
  mkdirSync(sweepDir, { recursive: true });
  writeFileAtomic(join(sweepDir, SWEEP_FILE), JSON.stringify(m, null, 2) + '\n');
}
