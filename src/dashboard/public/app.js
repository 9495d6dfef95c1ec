// The page: fetches the run list, the plotted runs' series, the focused run's routing data and
// evaluation results, and the sweeps' plots, and keeps them live through one server-sent event stream for the plotted runs.
import { RunsTable } from './runs_table.js';
import { LossChart } from './loss_chart.js';
import { RoutingPanel } from './routing.js';
import { renderResults } from './results.js';
import { ComputeChart } from './compute_chart.js';
import { renderEvals } from './evals.js';
import { SweepPanel } from './sweeps.js';
import { el } from './format.js';

const $ = (id) => document.getElementById(id);
const DEFAULT_PLOTTED = 8;

async function getJson(url) {
  const r = await fetch(url);
  const body = await r.json();
  if (!r.ok) throw new Error(body.error ?? `${r.status} ${r.statusText}`);
  return body;
}

const runParams = (ids) => ids.map((id) => `run=${encodeURIComponent(id)}`).join('&');

class App {
  constructor() {
    this.runs = new Map();
    this.zoom = null;
    this.stream = null;
    this.table = new RunsTable($('runs'), $('filter'), $('run-count'), {
      onToggle: (id, on) => { on ? this.table.selected.add(id) : this.table.selected.delete(id); this.plotted(); },
      onFocus: (id) => this.focus(id),
    });
    this.chart = new LossChart($('loss-chart'), (range) => { this.zoom = range; this.loadSeries(); });
    this.compute = new ComputeChart($('compute-chart'));
    this.sweeps = new SweepPanel($('sweeps'));
    this.sweepIds = [];
    this.routing = new RoutingPanel($('heatmap'), $('routing-charts'), $('routing-empty'), $('routing-title'));
    for (const id of ['x-axis', 'log-x', 'log-y', 'show-train', 'show-val']) $(id).addEventListener('change', () => this.options());
  }

  async start() {
    const { root, runs, sweeps } = await getJson('/api/runs');
    $('root').textContent = root;
    this.sweepIds = sweeps;
    this.setRuns(runs);
    // plot the most recently updated runs to begin with
    const recent = [...runs].sort((a, b) => (b.updatedAt ?? 0) - (a.updatedAt ?? 0)).slice(0, DEFAULT_PLOTTED);
    for (const r of recent) this.table.selected.add(r.id);
    this.table.render();
    const firstRouted = recent.find((r) => r.kind !== 'dense');
    await this.plotted();
    if (firstRouted) await this.focus(firstRouted.id);
    else this.routing.clear($('routing-empty').textContent);
    this.loadResults();
  }

  setRuns(runs) {
    this.runs = new Map(runs.map((r) => [r.id, r]));
    for (const id of [...this.table.selected]) if (!this.runs.has(id)) this.table.selected.delete(id);
    this.table.setRuns(runs);
    this.compute.show(runs).catch((e) => this.notice(`compute chart: ${e.message}`));
  }

  async options() {
    this.zoom = null;
    await this.chart.setOptions({ x: $('x-axis').value, logX: $('log-x').checked, logY: $('log-y').checked, train: $('show-train').checked, val: $('show-val').checked });
    await this.loadSeries();
  }

  /** The plotted set changed: new stream first (no point falls between fetch and stream), then the series. */
  async plotted() {
    this.openStream();
    await this.loadSeries();
  }

  async loadSeries() {
    const ids = [...this.table.selected];
    const x = this.chart.opts.x;
    const range = this.zoom ? `&from=${this.zoom[0]}&to=${this.zoom[1]}` : '';
    const seq = (this.seriesSeq = (this.seriesSeq ?? 0) + 1);
    const body = ids.length ? await getJson(`/api/series?${runParams(ids)}&x=${x}${range}`) : { runs: [] };
    if (seq !== this.seriesSeq) return; // a newer request is under way
    await this.chart.setSeries(body.runs);
    const total = body.runs.reduce((a, r) => a + r.total[0] + r.total[1], 0);
    const shown = body.runs.reduce((a, r) => a + r.train.length + r.val.length, 0);
    $('loss-note').textContent = ids.length ? (shown < total ? `${shown} of ${total} points drawn (downsampled on the server; zoom in for detail)` : '') : 'Tick runs in the table to plot them.';
  }

  openStream() {
    this.stream?.close();
    const ids = [...this.table.selected];
    const es = (this.stream = new EventSource(`/api/stream?${runParams(ids)}`));
    es.onopen = () => { $('live').textContent = 'live'; $('live').classList.add('on'); };
    es.onerror = () => { $('live').textContent = 'reconnecting'; $('live').classList.remove('on'); };
    const on = (name, f) => es.addEventListener(name, (e) => f(JSON.parse(e.data)));
    on('runs', (d) => {
      this.setRuns(d.runs);
      this.sweepIds = d.sweeps;
      // eval and sweep result files appear when runs finish: look again, at most every 5 s
      if (!this.resultsTimer) this.resultsTimer = setTimeout(() => { this.resultsTimer = null; this.loadResults(); }, 5000);
    });
    on('points', (d) => {
      this.chart.append(d.run, d.train, d.val);
      if (d.summary) { this.runs.set(d.run, d.summary); this.table.setRuns([...this.runs.values()]); }
      if (d.evals && d.run === this.table.focused) this.refreshRouting();
    });
    on('reset', () => this.loadSeries());
    on('removed', (d) => { this.table.selected.delete(d.run); this.notice(`run ${d.run} was removed`); this.plotted(); });
    on('malformed', (d) => this.notice(`run ${d.run}: ${d.count} malformed metrics line(s) skipped, e.g. ${d.lines[0]}`));
  }

  async focus(id) {
    this.table.focused = id;
    this.table.render();
    await Promise.all([this.refreshRouting(true), this.loadEvals()]);
  }

  async loadEvals() {
    const id = this.table.focused;
    if (!id) return;
    $('detail-title').textContent = id;
    try {
      const data = await getJson(`/api/evals?run=${encodeURIComponent(id)}`);
      if (id === this.table.focused) renderEvals($('evals'), id, data);
    } catch (e) {
      $('evals').replaceChildren(el('span', `${id}: ${e.message}`, 'muted'));
    }
  }

  refreshRouting(now = false) {
    clearTimeout(this.routingTimer);
    const run = () => {
      const id = this.table.focused;
      if (!id) return;
      return getJson(`/api/routing?run=${encodeURIComponent(id)}`)
        .then((data) => this.routing.show(this.runs.get(id) ?? { id, name: id, kind: data.kind }, data))
        .catch((e) => this.routing.clear(String(e.message)));
    };
    if (now) return run();
    this.routingTimer = setTimeout(run, 500);
  }

  /** Sweep plots and tables, and the focused run's evaluation results: files that appear as runs finish. */
  async loadResults() {
    try {
      await this.sweeps.show(this.sweepIds, (id) => getJson(`/api/sweep?sweep=${encodeURIComponent(id)}`));
      renderResults($('results'), await getJson('/api/results'));
      if (this.table.focused) await this.loadEvals();
    } catch (e) {
      this.notice(`results: ${e.message}`);
    }
  }

  notice(text) {
    const box = $('notices');
    box.append(el('div', text));
    while (box.children.length > 3) box.firstChild.remove();
  }
}

const app = new App();
window.moelabDashboard = app; // for tests and the curious
app.start().catch((e) => app.notice(`dashboard: ${e.message}`));
