// The focused run's evaluation results (GET /api/evals): a domain table (nats/token, perplexity,
// bits/byte, tokens) and task metrics (value = mean over trials, stderr over items), one row per
// file and domain / task and metric; files the server could not read as eval results are listed.
// Below them the history of every `moelab eval` of the run (its eval lines in metrics.jsonl), by step.
import { el } from './format.js';

const f = (v, d) => (v === null || v === undefined ? '' : v.toFixed(d));

function table(kind, head, rows) {
  const t = el('table');
  t.dataset.table = kind;
  const tr = el('tr');
  head.forEach(([label, text]) => tr.append(el('th', label, text ? 'text' : '')));
  t.append(tr);
  for (const cells of rows) {
    const r = el('tr');
    cells.forEach((c, i) => r.append(el('td', c, head[i][1] ? 'text' : '')));
    t.append(r);
  }
  const box = el('div', null, 'scroll');
  box.append(t);
  return box;
}

export function renderEvals(container, run, data) {
  const parts = [];
  if (data.domains.length) {
    parts.push(el('h3', 'Domains'));
    parts.push(table('domains', [['domain', true], ['nats/token'], ['perplexity'], ['bits/byte'], ['tokens'], ['file', true]],
      data.domains.map((d) => [d.domain + (d.stride ? ` (stride ${d.stride})` : ''), f(d.loss, 4), f(d.perplexity, 3), f(d.bpb, 4), d.tokens ?? '', d.file])));
  }
  if (data.tasks.length) {
    parts.push(el('h3', 'Tasks'));
    parts.push(table('tasks', [['task', true], ['shots'], ['metric', true], ['value'], ['stderr'], ['trials'], ['chance'], ['file', true]],
      data.tasks.map((t) => [t.task, t.shots ?? '', t.metric, f(t.value, 4), f(t.stderr, 4), t.trials ?? '', f(t.chance, 4), t.file])));
  }
  if (data.history?.length) {
    parts.push(el('h3', 'History (metrics.jsonl)'));
    parts.push(table('history', [['step'], ['domain / task', true], ['shots'], ['metric', true], ['value'], ['stderr'], ['time', true]],
      data.history.map((h) => [h.step, h.name, h.shots ?? '', h.metric, f(h.value, 4), f(h.stderr, 4), h.time ?? ''])));
  }
  for (const o of data.other) {
    const d = el('div', `${o.file}: ${o.reason}`, 'muted');
    d.dataset.other = o.file;
    parts.push(d);
  }
  if (!parts.length) parts.push(el('span', `${run}: no evaluation results (moelab eval --run ${run} --suite domains writes them to eval/).`, 'muted'));
  container.replaceChildren(...parts);
  container.dataset.run = run;
  container.dataset.domains = String(data.domains.length);
  container.dataset.tasks = String(data.tasks.length);
  container.dataset.history = String(data.history?.length ?? 0);
}
