/**
 * The line `moelab eval` adds to a run's metrics.jsonl, so the dashboard shows evaluations next to
 * training. Two types, one line per result file written under `<run>/eval/`:
 *
 *   {"type":"eval_domains", "step", "time", "file", "suite", "stride",
 *    "domains": {"<name>": {"loss", "perplexity", "bpb", "tokens"}, ...}}
 *   {"type":"eval_task", "step", "time", "file", "task", "shots", "trials", "items", "chance",
 *    "metrics": {"acc": {"mean", "stderr"}, "acc_norm": ..., "acc_bytes": ..., "gold_ll": ...}}
 *
 * `step` is the step of the checkpoint that was evaluated. The trainer is metrics.jsonl's writer,
 * so a line is appended only while holding the run's lock, taken briefly as a writer takes it: if
 * a trainer holds it (or the lock cannot be taken), no line is written and the caller is told why;
 * the result file is there either way. A later resume keeps the line: it drops only lines whose
 * step is past its checkpoint (metrics_log.ts), and an evaluated checkpoint is never past the one
 * a run resumes from. A line cut short by a killed trainer (no final newline) is closed first, so
 * the eval line never fuses with it.
 */
import { appendFileSync, closeSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { acquireRunLock, RunLockedError } from '../io/lock.js';
import { METRICS_FILE } from '../train/metrics_log.js';
import { METRICS } from './mc_metrics.js';
import type { DomainResult } from './suite.js';
import type { TaskResult } from './task_eval.js';

export type EvalLine = Record<string, unknown> & { type: 'eval_domains' | 'eval_task'; step: number };

export function domainsLine(step: number, file: string, suite: string | null, stride: number | null, rows: DomainResult[], time = new Date().toISOString()): EvalLine {
  const domains = Object.fromEntries(rows.map((r) => [r.domain, { loss: r.loss, perplexity: r.perplexity, bpb: r.bpb, tokens: r.tokens }]));
  return { type: 'eval_domains', step, time, file, suite, stride, domains };
}

export function taskLine(step: number, file: string, r: TaskResult, time = new Date().toISOString()): EvalLine {
  const metrics = Object.fromEntries(METRICS.map((m) => [m, { mean: r.metrics[m].mean, stderr: r.metrics[m].stderr }]));
  return { type: 'eval_task', step, time, file, task: r.task, shots: r.shots, trials: r.trials, items: r.items, chance: r.chance, metrics };
}

/** Whether `path` is non-empty and its last byte is not a newline. */
function endsMidLine(path: string): boolean {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    return false;
  }
  if (size === 0) return false;
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, size - 1);
    return b[0] !== 10;
  } finally {
    closeSync(fd);
  }
}

/**
 * Appends `lines` to `<runDir>/metrics.jsonl` under the run's lock. Returns null when written, else
 * why not (a trainer holds the lock, or the folder cannot be locked or written).
 */
export function appendEvalLines(runDir: string, lines: EvalLine[]): string | null {
  if (!lines.length) return null;
  let lock;
  try {
    lock = acquireRunLock(runDir, { command: 'moelab eval (adding its result lines to metrics.jsonl)' });
  } catch (e) {
    if (e instanceof RunLockedError) return `${e.message.replace(/\. Wait for it.*$/s, '')}: its metrics.jsonl was left alone`;
    return `cannot lock ${runDir} (${(e as Error).message}): its metrics.jsonl was left alone`;
  }
  try {
    const path = join(runDir, METRICS_FILE);
    const text = lines.map((l) => JSON.stringify(l) + '\n').join('');
    appendFileSync(path, (endsMidLine(path) ? '\n' : '') + text);
    return null;
  } catch (e) {
    return `cannot append to ${join(runDir, METRICS_FILE)}: ${(e as Error).message}`;
  } finally {
    lock.release();
  }
}
