/**
 * Zero- and few-shot multiple-choice evaluation of a task: for each of T trials, every test item is
 * primed with K shots drawn for (seed, trial, item) (fewshot.ts), its choices are scored by
 * log-likelihood (choice.ts) and the metrics of mc_metrics.ts are taken over items, then over trials.
 */
import type { GPT } from '../nn/gpt.js';
import type { Tokenizer } from '../data/tokenizer.js';
import type { Task } from './task_format.js';
import { scoreChoices, type ChoiceRequest } from './choice.js';
import { drawShots, buildContext, DEFAULT_PROMPT } from './fewshot.js';
import { itemMetrics, predict, summarize, chars, utf8Bytes, METRICS, type MetricName, type MetricSummary, type ItemPredictions } from './mc_metrics.js';

export interface TaskEvalOptions {
  /** Shots per prompt (default 0). */
  shots?: number;
  /** Resampled shot sets (default 25 with shots > 0, 1 without). */
  trials?: number;
  /** Seed of the shot draws (default 1234). */
  seed?: number;
  targetDelimiter?: string;
  fewshotDelimiter?: string;
  /** Evaluate only the first n test items. */
  limit?: number;
  /** Bound on rows x length of one forward (choice.ts). */
  batchTokens?: number;
  /** Share contexts through a KV cache where choices fit the window (choice.ts; default true). */
  kvCache?: boolean;
  /** Called with every scored item (for --log-samples). */
  onSample?: (s: SampleRecord) => void;
  /** Told about adjustments (e.g. trials reduced for zero-shot). */
  onNotice?: (message: string) => void;
}

export interface SampleRecord {
  task: string;
  trial: number;
  /** Position in the test list, and its line in the task file. */
  item: number;
  line: number;
  /** The context string exactly as scored. */
  context: string;
  choices: { continuation: string; logLik: number; tokens: number; chars: number; bytes: number }[];
  gold: number;
  prediction: ItemPredictions;
  truncated: boolean;
}

export interface TaskResult {
  task: string;
  source: string;
  shots: number;
  trials: number;
  seed: number;
  targetDelimiter: string;
  fewshotDelimiter: string;
  /** Test items scored per trial, and the size of the shot pool. */
  items: number;
  poolItems: number;
  /** Expected acc of a uniform guess: mean over items of 1 / choices. */
  chance: number;
  metrics: Record<MetricName, MetricSummary>;
  /** Per-trial means, in trial order. */
  perTrial: Record<MetricName, number>[];
  /** Item evaluations (over all trials) whose input was cut from the left to fit the window. */
  truncated: number;
  seconds: number;
  /** Item evaluations (items x trials) per second. */
  itemsPerSecond: number;
}

function checkInt(v: number, what: string, lo: number): void {
  if (!(Number.isSafeInteger(v) && v >= lo)) throw new RangeError(`${what} must be an integer >= ${lo}, got ${v}`);
}

export function evaluateTask(model: GPT, tok: Tokenizer, task: Task, o: TaskEvalOptions = {}): TaskResult {
  const shots = o.shots ?? 0, seed = o.seed ?? 1234;
  checkInt(shots, 'shots', 0);
  checkInt(seed, 'seed', 0);
  let trials = o.trials ?? (shots > 0 ? 25 : 1);
  checkInt(trials, 'trials', 1);
  if (shots === 0 && trials > 1) {
    o.onNotice?.(`${task.name}: zero-shot prompts are the same in every trial: running 1 trial instead of ${trials}`);
    trials = 1;
  }
  const p = { targetDelimiter: o.targetDelimiter ?? DEFAULT_PROMPT.targetDelimiter, fewshotDelimiter: o.fewshotDelimiter ?? DEFAULT_PROMPT.fewshotDelimiter };
  let test = task.items.filter((it) => it.split === 'test');
  if (o.limit !== undefined) {
    checkInt(o.limit, 'limit', 1);
    test = test.slice(0, o.limit);
  }
  const train = task.items.filter((it) => it.split === 'train');
  const pool = train.length ? train : test;
  const t0 = performance.now();
  const values: Record<MetricName, number[][]> = { acc: [], acc_norm: [], acc_bytes: [], gold_ll: [] };
  let truncated = 0;
  for (let trial = 0; trial < trials; trial++) {
    const requests: ChoiceRequest[] = test.map((it, i) => ({
      context: buildContext(it, drawShots(pool, it, shots, seed, trial, i), p),
      continuations: it.choices.map((c) => p.targetDelimiter + c),
    }));
    const scores = scoreChoices(model, tok, requests, { batchTokens: o.batchTokens, kvCache: o.kvCache });
    for (const m of METRICS) values[m].push([]);
    test.forEach((it, i) => {
      const lls = scores[i].map((s) => s.logLik);
      const vals = itemMetrics(lls, it.choices, it.gold);
      for (const m of METRICS) values[m][trial].push(vals[m]);
      const cut = scores[i].some((s) => s.truncated);
      if (cut) truncated++;
      o.onSample?.({
        task: task.name, trial, item: i, line: it.line, context: scores[i][0].context,
        choices: scores[i].map((s, k) => ({ continuation: s.continuation, logLik: s.logLik, tokens: s.tokens, chars: chars(it.choices[k]), bytes: utf8Bytes(it.choices[k]) })),
        gold: it.gold, prediction: predict(lls, it.choices), truncated: cut,
      });
    });
  }
  const seconds = (performance.now() - t0) / 1000;
  const metrics = Object.fromEntries(METRICS.map((m) => [m, summarize(values[m])])) as Record<MetricName, MetricSummary>;
  const perTrial = values.acc.map((_, t) => Object.fromEntries(METRICS.map((m) => [m, values[m][t].reduce((a, b) => a + b, 0) / test.length])) as Record<MetricName, number>);
  return {
    task: task.name, source: task.source, shots, trials, seed, ...p, items: test.length, poolItems: shots > 0 ? pool.length : 0,
    chance: test.reduce((a, it) => a + 1 / it.choices.length, 0) / test.length,
    metrics, perTrial, truncated, seconds, itemsPerSecond: (test.length * trials) / seconds,
  };
}
