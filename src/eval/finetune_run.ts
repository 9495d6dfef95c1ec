/**
 * `moelab finetune`: for each seed, the parent run's weights are fine-tuned on a task's train split
 * (finetune.ts) and written as a new run directory that records its parent; the task's test split
 * is scored zero-shot (task_eval.ts) before (once: the parent is the same for every seed) and after.
 * With several seeds the runs are `<out>/seed-<s>`. An existing run is never overwritten.
 */
import { resolve, join } from 'node:path';
import { openRun, saveRun, runExists } from '../train/run.js';
import type { Task } from './task_format.js';
import { finetune, type FinetuneOptions } from './finetune.js';
import { evaluateTask, type TaskResult } from './task_eval.js';
import { mean, sampleStd, METRICS, type MetricName } from './mc_metrics.js';
import { checkMatmulPrecision } from '../tensor/index.js';

export interface FinetuneRunOptions extends Omit<FinetuneOptions, 'seed'> {
  /** Seeds 0..seeds-1 (default 1). */
  seeds?: number;
  /** Where the fine-tuned run(s) go. */
  out: string;
  /** Bound on rows x length of one scoring forward. */
  batchTokens?: number;
  onNotice?: (m: string) => void;
}

export interface FinetuneReport {
  parent: string;
  task: string;
  before: TaskResult;
  after: { seed: number; dir: string; result: TaskResult; finalLoss: number }[];
  /** Per metric: before, and mean / std over seeds after. */
  summary: Record<MetricName, { before: number; afterMean: number; afterStd: number }>;
}

export function finetuneRun(parentDir: string, task: Task, o: FinetuneRunOptions): FinetuneReport {
  const seeds = o.seeds ?? 1;
  if (!(Number.isSafeInteger(seeds) && seeds >= 1)) throw new RangeError(`seeds must be an integer >= 1, got ${seeds}`);
  const p = o.expertDropout ?? 0;
  if (!(p >= 0 && p < 1)) throw new RangeError(`expert dropout must be a number in [0, 1), got ${p}`); // before any evaluation
  checkMatmulPrecision(o.precision ?? 'fp32');
  const dirs = Array.from({ length: seeds }, (_, s) => (seeds === 1 ? o.out : join(o.out, `seed-${s}`)));
  for (const d of dirs) if (runExists(d)) throw new Error(`${d} already holds a run: choose another --out (fine-tuning never overwrites a run)`);
  const parent = openRun(parentDir);
  const before = evaluateTask(parent.model, parent.tokenizer, task, { batchTokens: o.batchTokens, onNotice: o.onNotice });
  const after: FinetuneReport['after'] = [];
  dirs.forEach((dir, seed) => {
    const { model, tokenizer, config } = seed === 0 ? parent : openRun(parentDir);
    const ft = finetune(model, tokenizer, config, task, { ...o, seed, onNotice: seed === 0 ? o.onNotice : undefined });
    const cfg = { ...config, train: ft.trainConfig };
    saveRun(dir, model, ft.optimizer, cfg, {
      step: ft.steps, finetune: { parent: resolve(parentDir), task: task.name, source: task.source, seed, steps: ft.steps, lr: ft.trainConfig.lr, batch: ft.trainConfig.batch, frozen: o.freeze ?? [], balance: o.balance !== false, expertDropout: o.expertDropout ?? 0, precision: ft.trainConfig.precision, losses: ft.losses, aux: ft.aux },
    });
    const result = evaluateTask(model, tokenizer, task, { batchTokens: o.batchTokens, onNotice: o.onNotice });
    after.push({ seed, dir, result, finalLoss: ft.losses[ft.losses.length - 1] });
  });
  const summary = Object.fromEntries(METRICS.map((m) => {
    const xs = after.map((a) => a.result.metrics[m].mean);
    return [m, { before: before.metrics[m].mean, afterMean: mean(xs), afterStd: sampleStd(xs) }];
  })) as FinetuneReport['summary'];
  return { parent: resolve(parentDir), task: task.name, before, after, summary };
}
