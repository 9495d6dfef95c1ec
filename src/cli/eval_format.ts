// Markdown tables of evaluation results (the layout lm-evaluation-harness prints).
import type { DomainResult, TaskResult } from '../index.js';

function table(head: string[], rows: string[][], right: boolean[]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (right[i] ? c.padStart(w[i]) : c.padEnd(w[i]))).join(' | ')} |\n`;
  const rule = `|${w.map((n, i) => (right[i] ? '-'.repeat(n + 1) + ':' : '-'.repeat(n + 2))).join('|')}|\n`;
  return line(head) + rule + rows.map(line).join('');
}

export function domainTable(rows: DomainResult[]): string {
  return table(
    ['domain', 'nats/token', 'perplexity', 'bits/byte', 'tokens', 'bytes'],
    rows.map((r) => [r.domain, r.loss.toFixed(4), r.perplexity.toFixed(3), r.bpb.toFixed(4), String(r.tokens), String(r.bytes)]),
    [false, true, true, true, true, true],
  );
}

export { table };

/** One row per (task, metric): value = mean over trials; stderr over items; std and 95% interval over trials. */
export function taskTable(results: TaskResult[]): string {
  const rows: string[][] = [];
  for (const r of results) {
    for (const [m, s] of Object.entries(r.metrics)) {
      const d = m === 'gold_ll' ? 3 : 4;
      rows.push([r.task, String(r.shots), m, s.mean.toFixed(d), s.stderr.toFixed(d), String(r.trials), s.std.toFixed(d), `[${s.ci95[0].toFixed(d)}, ${s.ci95[1].toFixed(d)}]`, m === 'acc' ? r.chance.toFixed(4) : '']);
    }
  }
  return table(['task', 'n-shot', 'metric', 'value', 'stderr', 'trials', 'std (trials)', '95% interval (trials)', 'chance'], rows, [false, true, false, true, true, true, true, false, true]);
}
