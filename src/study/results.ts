// A sweep's results, read from its run folders without writing to them: for every finished point
// its final validation loss (state.json's valLoss, which the loop computes at the last step; else
// the last eval line of metrics.jsonl), its counts (spec/count.ts, from the run's config), the
// tokens it trained on (state.json tokensSeen) and its training compute, flopsPerToken * tokens.
// results.csv uses the column names `moelab fit --points` reads (params, active_params, tokens,
// sparsity, loss, flops), then the sweep's own columns and one column per axis.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { configHash } from '../config/hash.js';
import { countModel } from '../spec/count.js';
import { loadRunConfig } from '../train/run.js';
import { METRICS_FILE } from '../train/metrics_log.js';
import { writeFileAtomic } from '../io/atomic.js';
import { requireManifest, runDirOf } from './manifest.js';
import { pointStatus, readCommittedState, type PointState } from './status.js';

export interface SweepResult {
  hash: string;
  name: string;
  family: string;
  seed: number;
  budget: number | null;
  /** The point's config hash with train.seed set to 0: points that differ only by seed share it. */
  group: string;
  axes: Record<string, unknown>;
  inSpec: boolean;
  steps: number;
  valLoss: number;
  paramsTotal: number;
  paramsActive: number;
  flopsPerToken: number;
  tokens: number;
  trainingFlops: number;
  sparsity: number;
}

export interface SweepResults {
  dir: string;
  collectedAt: string;
  results: SweepResult[];
  /** Points without a result, and why. */
  missing: { hash: string; name: string; state: PointState; reason: string | null }[];
}

export const RESULTS_JSON = 'results.json';
export const RESULTS_CSV = 'results.csv';

/** The last finite val_loss of metrics.jsonl's eval lines, or null. */
export function lastEvalLoss(runDir: string): number | null {
  const path = join(runDir, METRICS_FILE);
  if (!existsSync(path)) return null;
  let loss: number | null = null;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    try {
      const o = JSON.parse(line) as { type?: string; val_loss?: unknown };
      if (o.type === 'eval' && typeof o.val_loss === 'number' && Number.isFinite(o.val_loss)) loss = o.val_loss;
    } catch {
      /* blank or cut-short line */
    }
  }
  return loss;
}

export const seedGroup = (cfg: Config): string => configHash({ ...cfg, train: { ...cfg.train, seed: 0 } });

export function collectResults(sweepDir: string): SweepResults {
  const dir = resolve(sweepDir);
  const manifest = requireManifest(dir);
  const results: SweepResult[] = [];
  const missing: SweepResults['missing'] = [];
  for (const p of manifest.points) {
    const runDir = runDirOf(dir, p.hash);
    const status = pointStatus(runDir, p.steps);
    const state = status.state === 'done' ? readCommittedState(runDir) : null;
    const valLoss = state ? state.valLoss ?? lastEvalLoss(runDir) : null;
    if (!state || valLoss === null) {
      missing.push({ hash: p.hash, name: p.name, state: status.state, reason: status.state === 'done' ? 'no validation loss recorded' : status.reason });
      continue;
    }
    const cfg = existsSync(join(runDir, 'config.json')) ? loadRunConfig(runDir) : p.config;
    const c = countModel(cfg.model);
    results.push({
      hash: p.hash, name: p.name, family: p.family, seed: cfg.train.seed, budget: p.budget, group: seedGroup(cfg), axes: p.axes, inSpec: p.inSpec,
      steps: state.step, valLoss, paramsTotal: c.paramsTotal, paramsActive: c.paramsActive, flopsPerToken: c.flopsPerToken,
      tokens: state.tokensSeen, trainingFlops: c.flopsPerToken * state.tokensSeen, sparsity: c.sparsity,
    });
  }
  return { dir, collectedAt: new Date().toISOString(), results, missing };
}

function csvCell(v: unknown): string {
  const s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** results.csv: fit's columns first, then the sweep's, then one column per axis (`axis:<path>`). */
export function resultsCsv(results: readonly SweepResult[]): string {
  const axisKeys = [...new Set(results.flatMap((r) => Object.keys(r.axes)))];
  const header = ['params', 'active_params', 'tokens', 'sparsity', 'loss', 'flops', 'flops_per_token', 'family', 'seed', 'budget', 'steps', 'hash', 'name', 'in_spec',
    ...axisKeys.map((k) => `axis:${k}`)];
  const rows = results.map((r) => [r.paramsTotal, r.paramsActive, r.tokens, r.sparsity, r.valLoss, r.trainingFlops, r.flopsPerToken, r.family, r.seed, r.budget,
    r.steps, r.hash, r.name, r.inSpec, ...axisKeys.map((k) => r.axes[k])]);
  return [header, ...rows].map((row) => row.map(csvCell).join(',')).join('\n') + '\n';
}

/** Collect and write results.json and results.csv into the sweep folder. */
export function writeResults(sweepDir: string): SweepResults {
  const r = collectResults(sweepDir);
  writeFileAtomic(join(r.dir, RESULTS_JSON), JSON.stringify(r, null, 2) + '\n');
  writeFileAtomic(join(r.dir, RESULTS_CSV), resultsCsv(r.results));
  return r;
}
