// The runs table: sortable columns, a text filter (every word must match), a checkbox per run
// choosing what the loss chart overlays, and a click on a name to focus the routing panel.
import { count, loss, el } from './format.js';

const COLUMNS = [
  { key: 'plot', label: '', text: true, sortable: false },
  { key: 'name', label: 'run', text: true },
  { key: 'kind', label: 'kind', text: true },
  { key: 'paramsTotal', label: 'params', fmt: (r) => count(r.paramsTotal) },
  { key: 'paramsActive', label: 'active', fmt: (r) => count(r.paramsActive) },
  { key: 'flopsPerToken', label: 'FLOPs/token', fmt: (r) => count(r.flopsPerToken) },
  { key: 'step', label: 'steps' },
  { key: 'tokensPerSecond', label: 'tokens/s', fmt: (r) => count(r.tokensPerSecond) },
  { key: 'bestValLoss', label: 'best val loss', fmt: (r) => loss(r.bestValLoss) },
  { key: 'status', label: 'status', text: true },
];

export class RunsTable {
  constructor(table, filterInput, countLabel, callbacks) {
    this.table = table;
    this.filterInput = filterInput;
    this.countLabel = countLabel;
    this.cb = callbacks; // { onToggle(id, on), onFocus(id) }
    this.runs = [];
    this.selected = new Set();
    this.focused = null;
    this.sortKey = 'name';
    this.asc = true;
    filterInput.addEventListener('input', () => this.render());
    this.renderHead();
  }

  renderHead() {
    const tr = el('tr');
    for (const c of COLUMNS) {
      const th = el('th', c.label, c.text ? 'text' : '');
      th.dataset.key = c.key;
      if (c.sortable !== false) {
        th.addEventListener('click', () => {
          if (this.sortKey === c.key) this.asc = !this.asc;
          else { this.sortKey = c.key; this.asc = !!c.text; }
          this.renderHead();
          this.render();
        });
        if (this.sortKey === c.key) th.classList.add('sorted', ...(this.asc ? ['asc'] : []));
      }
      tr.append(th);
    }
    this.table.tHead.replaceChildren(tr);
  }

  setRuns(runs) {
    this.runs = runs;
    this.render();
  }

  visible() {
    const terms = this.filterInput.value.toLowerCase().split(/\s+/).filter(Boolean);
    const rows = this.runs.filter((r) => {
      const hay = `${r.name} ${r.id} ${r.kind} ${r.status}`.toLowerCase();
      return terms.every((t) => hay.includes(t));
    });
    const k = this.sortKey, dir = this.asc ? 1 : -1;
    rows.sort((a, b) => {
      const x = a[k], y = b[k];
      if (x === y) return a.id < b.id ? -1 : 1;
      if (x === null || x === undefined) return 1; // blanks last either way
      if (y === null || y === undefined) return -1;
      return (typeof x === 'number' ? x - y : String(x).localeCompare(String(y))) * dir;
    });
    return rows;
  }

  render() {
    const rows = this.visible();
    this.countLabel.textContent = `${rows.length} of ${this.runs.length}`;
    const body = this.table.tBodies[0];
    body.replaceChildren(...rows.map((r) => this.row(r)));
  }

  row(r) {
    const tr = el('tr');
    tr.dataset.run = r.id;
    if (r.id === this.focused) tr.classList.add('focused');
    for (const c of COLUMNS) {
      const td = el('td', null, c.text ? 'text' : '');
      td.dataset.col = c.key;
      if (c.key === 'plot') {
        const box = el('input');
        box.type = 'checkbox';
        box.checked = this.selected.has(r.id);
        box.title = 'plot this run';
        box.addEventListener('change', () => this.cb.onToggle(r.id, box.checked));
        td.append(box);
      } else if (c.key === 'name') {
        const a = el('span', r.name, 'runname');
        a.title = 'show routing statistics';
        a.addEventListener('click', () => this.cb.onFocus(r.id));
        td.append(a);
        if (r.id !== r.name) td.append(el('span', r.id, 'runid'));
      } else if (c.key === 'step') {
        td.textContent = r.steps ? `${r.step} / ${r.steps}` : String(r.step);
        if (r.steps) {
          const bar = el('span', null, 'progress'), fill = el('span');
          fill.style.width = `${Math.min(100, (100 * r.step) / r.steps)}%`;
          bar.append(fill);
          td.append(bar);
        }
      } else if (c.key === 'status') {
        const s = el('span', r.status, `status ${r.status}`);
        s.title = r.statusReason + (r.malformedLines ? ` (${r.malformedLines} malformed metrics lines skipped)` : '');
        td.append(s);
      } else {
        td.textContent = c.fmt ? c.fmt(r) : r[c.key] ?? '';
      }
      tr.append(td);
    }
    return tr;
  }
}
