// Sweep results (<sweep>/results.json) as tables, under the sweep plots. The files' exact shapes
// belong to their writers, so any JSON is accepted: an array of records is a
// table, an object shows its first array of records (or its own fields as one row).
import { el } from './format.js';

const MAX_ROWS = 500;
const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const isRecords = (v) => Array.isArray(v) && v.length > 0 && v.every(isObj);

/** Nested objects become dotted columns (one level), arrays are summarised. */
function flatten(rec, prefix = '', out = {}, depth = 0) {
  for (const [k, v] of Object.entries(rec)) {
    const key = prefix + k;
    if (isObj(v) && depth < 1) flatten(v, key + '.', out, depth + 1);
    else if (Array.isArray(v)) out[key] = v.length <= 4 && v.every((x) => typeof x !== 'object') ? v.join(', ') : `[${v.length}]`;
    else if (isObj(v)) out[key] = '{...}';
    else out[key] = v;
  }
  return out;
}

export function toTable(data) {
  let recs = null;
  let caption = '';
  if (isRecords(data)) recs = data;
  else if (isObj(data)) {
    const preferred = ['rows', 'results', 'runs', 'tasks', 'domains', 'points'];
    const k = preferred.find((key) => isRecords(data[key])) ?? Object.keys(data).find((key) => isRecords(data[key]));
    if (k) { recs = data[k]; caption = k; }
    else recs = [data];
  } else recs = [{ value: data }];
  const rows = recs.slice(0, MAX_ROWS).map((r) => flatten(r));
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return { caption, cols, rows, more: recs.length - rows.length };
}

function fmt(v) {
  if (typeof v === 'number') {
    if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
    return Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : v.toFixed(4);
  }
  return v === null || v === undefined ? '' : String(v);
}

export function renderResults(container, results) {
  const files = results.sweeps.map((f) => ({ ...f, label: `sweep ${f.owner || '.'}: ${f.file}` }));
  if (!files.length) {
    container.replaceChildren();
    return;
  }
  container.replaceChildren(...files.map((f) => {
    const box = el('div', null, 'results-table');
    box.dataset.file = `${f.owner}/${f.file}`;
    box.append(el('h3', f.label));
    if (f.error) { box.append(el('div', f.error, 'error')); return box; }
    const t = toTable(f.data);
    const table = el('table'), head = el('tr');
    const numeric = new Set(t.cols.filter((c) => t.rows.every((r) => r[c] === undefined || r[c] === null || typeof r[c] === 'number')));
    for (const c of t.cols) head.append(el('th', c, numeric.has(c) ? '' : 'text'));
    table.append(head);
    for (const r of t.rows) {
      const tr = el('tr');
      for (const c of t.cols) tr.append(el('td', fmt(r[c]), typeof r[c] === 'number' ? '' : 'text'));
      table.append(tr);
    }
    const scroll = el('div', null, 'scroll');
    scroll.append(table);
    box.append(scroll);
    if (t.caption) box.append(el('div', `(${t.caption})`, 'muted'));
    if (t.more > 0) box.append(el('div', `${t.more} more rows not shown`, 'muted'));
    return box;
  }));
}
