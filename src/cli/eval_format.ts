// Markdown tables of evaluation results (the layout lm-evaluation-harness prints).
import type { DomainResult } from '../index.js';

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
