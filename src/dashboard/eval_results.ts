// A run's evaluation results (<run>/eval/*.json, written by `moelab eval`: src/cli/eval.ts) as two
// tables: domains (nats/token, perplexity, bits/byte, tokens) and task metrics (value = mean over
// trials, stderr over items). Three file shapes are understood:
//   {kind: 'domains', results: DomainResult[], ...}      --suite / --data
//   {kind: 'task', task, shots, metrics: {m: {mean, stderr, ...}}, ...}   --task
//   {domains: {results: [...]} | null, tasks: TaskResult[]}               --out FILE (if put in eval/)
// Anything else (a file from a newer moelab, a hand-written note, broken JSON) is listed under
// `other` with what was wrong, and the rest still shows.
import { runEvalFiles } from './tables.js';
import type { EvalResultLine } from './run_data.js';

export interface DomainRow { file: string; domain: string; loss: number | null; perplexity: number | null; bpb: number | null; tokens: number | null; stride: number | null }
export interface TaskRow { file: string; task: string; shots: number | null; metric: string; value: number; stderr: number | null; trials: number | null; chance: number | null }
export interface EvalTables { domains: DomainRow[]; tasks: TaskRow[]; other: { file: string; reason: string }[] }

const obj = (v: unknown): Record<string, unknown> | null => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function domainRows(file: string, results: unknown, stride: number | null): DomainRow[] {
  if (!Array.isArray(results)) return [];
  return results.flatMap((r) => {
    const o = obj(r);
    if (!o || typeof o.domain !== 'string') return [];
    return [{ file, domain: o.domain, loss: num(o.loss), perplexity: num(o.perplexity), bpb: num(o.bpb), tokens: num(o.tokens), stride: num(o.stride) ?? stride }];
  });
}

function taskRows(file: string, t: unknown): TaskRow[] {
  const o = obj(t), metrics = obj(o?.metrics);
  if (!o || typeof o.task !== 'string' || !metrics) return [];
  const rows: TaskRow[] = [];
  for (const [metric, s] of Object.entries(metrics)) {
    const m = obj(s), value = num(m?.mean);
    if (value === null) continue;
    rows.push({ file, task: o.task, shots: num(o.shots), metric, value, stderr: num(m!.stderr), trials: num(o.trials), chance: metric === 'acc' ? num(o.chance) : null });
  }
  return rows;
}

/** The tables of one parsed file, or the reason it holds none. */
export function evalTablesOf(file: string, data: unknown): { domains: DomainRow[]; tasks: TaskRow[] } | string {
  const o = obj(data);
  if (!o) return 'not a JSON object';
  let domains: DomainRow[] = [], tasks: TaskRow[] = [];
  if (o.kind === 'domains') domains = domainRows(file, o.results, num(o.stride));
  else if (o.kind === 'task') tasks = taskRows(file, o);
  else if ('domains' in o || 'tasks' in o) {
    const d = obj(o.domains);
    domains = domainRows(file, d?.results, num(d?.stride));
    tasks = Array.isArray(o.tasks) ? o.tasks.flatMap((t) => taskRows(file, t)) : [];
  } else return `not a moelab eval result (kind ${JSON.stringify(o.kind ?? null)}; fields: ${Object.keys(o).slice(0, 8).join(', ')})`;
  if (!domains.length && !tasks.length) return 'a moelab eval result without domain or task rows';
  return { domains, tasks };
}

export function runEvalTables(id: string, runDir: string): EvalTables {
  const out: EvalTables = { domains: [], tasks: [], other: [] };
  for (const f of runEvalFiles(id, runDir)) {
    if (f.error) {
      out.other.push({ file: f.file, reason: f.error });
      continue;
    }
    const t = evalTablesOf(f.file, f.data);
    if (typeof t === 'string') out.other.push({ file: f.file, reason: t });
    else {
      out.domains.push(...t.domains);
      out.tasks.push(...t.tasks);
    }
  }
  return out;
}

/** One value of an eval line of metrics.jsonl: what was evaluated at which checkpoint step. */
export interface HistoryRow { step: number; time: string | null; kind: 'domain' | 'task'; name: string; shots: number | null; metric: string; value: number; stderr: number | null }

/**
 * The evaluation history from metrics.jsonl's eval lines, oldest first: bits/byte and nats/token
 * per domain, acc and acc_norm per task. A line without the expected fields adds nothing.
 */
export function evalHistory(lines: EvalResultLine[]): HistoryRow[] {
  const rows: HistoryRow[] = [];
  for (const l of lines) {
    const time = typeof l.time === 'string' ? l.time : null;
    if (l.type === 'eval_domains') {
      for (const [name, d] of Object.entries(obj(l.domains) ?? {})) {
        for (const [metric, key] of [['bits/byte', 'bpb'], ['nats/token', 'loss']]) {
          const value = num(obj(d)?.[key]);
          if (value !== null) rows.push({ step: l.step, time, kind: 'domain', name, shots: null, metric, value, stderr: null });
        }
      }
    } else if (typeof l.task === 'string') {
      for (const metric of ['acc', 'acc_norm']) {
        const m = obj(obj(l.metrics)?.[metric]), value = num(m?.mean);
        if (value !== null) rows.push({ step: l.step, time, kind: 'task', name: l.task, shots: num(l.shots), metric, value, stderr: num(m!.stderr) });
      }
    }
  }
  return rows;
}
