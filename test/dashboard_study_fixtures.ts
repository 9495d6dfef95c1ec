// A sweep folder and evaluation results for the dashboard tests, in the shapes moelab writes them:
// results.json as `moelab sweep` (SweepResults), compare.json as `moelab compare` (compareResults),
// fit-chinchilla/ as `moelab fit --sweep` (fitReport, analyseFit, writeFitOutputs: fit.json plus the
// plots' .vl.json specs the dashboard must reproduce), and <run>/eval/*.json as `moelab eval`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  analyseFit, compareResults, fitReport, getLaw, pointsFromSweepResults, writeFitOutputs,
  type Comparison, type DomainResult, type SweepResult, type SweepResults, type TaskResult,
} from '../src/index.js';

/** Chinchilla-like loss of N parameters trained with compute C (D = C / 6N tokens). */
const lossOf = (N: number, C: number) => 1.7 + 400 / N ** 0.34 + 410 / (C / (6 * N)) ** 0.28;

function result(family: string, N: number, C: number, seed: number, scale: number): SweepResult {
  const sparse = family !== 'dense';
  return {
    hash: `${family}-${N}-${C}-${seed}`, name: `${family} N=${N}`, family, seed, budget: C, group: `${family}-${N}-${C}`, axes: { 'model.d': N },
    inSpec: true, steps: 100, valLoss: lossOf(N, C) * scale, paramsTotal: sparse ? 4 * N : N, paramsActive: N, flopsPerToken: 6 * N,
    tokens: C / (6 * N), trainingFlops: C, sparsity: sparse ? 0.75 : 0,
  };
}

export interface FakeSweep { dir: string; results: SweepResult[]; comparison: Comparison; fitDir: string }

/** Dense and MoE at three compute budgets x three sizes (isoFLOP curves), one dense config with two seeds. */
export async function writeFakeSweep(dir: string): Promise<FakeSweep> {
  mkdirSync(dir, { recursive: true });
  const results: SweepResult[] = [];
  for (const C of [1e15, 1e16, 1e17]) {
    for (const N of [1e6, 3e6, 1e7]) {
      results.push(result('dense', N, C, 0, 1));
      results.push(result('moe-E8-k2', N, C, 0, 0.95));
    }
  }
  results.push(result('dense', 3e6, 1e16, 1, 1.01)); // a second seed: the plot shows the mean
  const sweep: SweepResults = { dir, collectedAt: '2026-01-01T00:00:00.000Z', results, missing: [{ hash: 'x', name: 'failed point', state: 'failed', reason: 'diverged' }] };
  writeFileSync(join(dir, 'sweep.json'), JSON.stringify({ format: 'moelab-sweep', points: [] }));
  writeFileSync(join(dir, 'results.json'), JSON.stringify(sweep, null, 2));
  const comparison = compareResults(results);
  writeFileSync(join(dir, 'compare.json'), JSON.stringify(comparison, null, 2));
  const { points } = pointsFromSweepResults(sweep);
  const law = getLaw('chinchilla');
  const report = fitReport(law, points, { bootstrap: 0 });
  const fitDir = join(dir, 'fit-chinchilla');
  await writeFitOutputs(fitDir, law, report, analyseFit(report, points), points);
  return { dir, results, comparison, fitDir };
}

const metric = (mean: number, stderr: number) => ({ mean, std: 0, ci95: [mean, mean] as [number, number], stderr });

/** eval/domains.json and eval/task-<name>-<K>shot.json as `moelab eval --suite domains --task ...` writes them, plus an unknown file. */
export function writeEvalResults(runDir: string): { domains: DomainResult[]; task: TaskResult } {
  const dir = join(runDir, 'eval');
  mkdirSync(dir, { recursive: true });
  const common = { run: runDir, createdAt: '2026-01-01T00:00:00.000Z', definition: 'loss = mean -ln p' };
  const domains: DomainResult[] = [
    { domain: 'in-domain', source: 'held-out split', file: 'held-out', loss: 2.5, perplexity: Math.exp(2.5), bpb: 3.6067, tokens: 4096, bytes: 4096 },
    { domain: 'fiction', source: 'built in', file: 'fiction', loss: 3.25, perplexity: Math.exp(3.25), bpb: 4.6888, tokens: 2048, bytes: 2048 },
  ];
  writeFileSync(join(dir, 'domains.json'), JSON.stringify({ kind: 'domains', suite: 'domains', data: [], stride: null, ...common, results: domains }, null, 2));
  const task: TaskResult = {
    task: 'copa-mini', source: 'built in', shots: 2, trials: 5, seed: 1234, targetDelimiter: ' ', fewshotDelimiter: '\n\n', items: 40, poolItems: 10, chance: 0.5,
    metrics: { acc: metric(0.625, 0.0766), acc_norm: metric(0.6, 0.0775), acc_bytes: metric(0.575, 0.0782), gold_ll: metric(-7.25, 0.5) },
    perTrial: [], truncated: 0, seconds: 1.5, itemsPerSecond: 133,
  };
  writeFileSync(join(dir, 'task-copa-mini-2shot.json'), JSON.stringify({ kind: 'task', ...common, ...task }, null, 2));
  writeFileSync(join(dir, 'notes.json'), JSON.stringify({ hello: 'a file from something else' }));
  writeFileSync(join(dir, 'cut.json'), '{"kind": "domains", "resu');
  return { domains, task };
}
