// Training and validation loss of the plotted runs against steps, tokens or FLOPs (tokens =
// step * batch * seq * accum; FLOPs = tokens * FLOPs/token), one vega-lite view. Live points are
// inserted into the view's data (no redraw from scratch); pan/zoom asks the server for a finer
// downsample of the visible range.
const TITLES = { step: 'steps', tokens: 'tokens', flops: 'training FLOPs' };

export class LossChart {
  constructor(container, onZoom) {
    this.container = container;
    this.onZoom = onZoom; // (range: [lo, hi] | null) => void
    this.opts = { x: 'step', logX: false, logY: false, train: true, val: true };
    this.series = new Map(); // id -> { tokensPerStep, flopsPerToken }
    this.rows = [];
    this.view = null;
    this.zoomTimer = null;
  }

  xFactor(id) {
    const s = this.series.get(id);
    if (!s) return null;
    if (this.opts.x === 'step') return 1;
    if (this.opts.x === 'tokens') return s.tokensPerStep;
    return s.tokensPerStep && s.flopsPerToken ? s.tokensPerStep * s.flopsPerToken : null;
  }

  toRows(id, split, pairs) {
    const f = this.xFactor(id);
    if (!f) return [];
    const show = split === 'train' ? this.opts.train : this.opts.val;
    if (!show) return [];
    return pairs.map(([step, loss]) => ({ run: id, split, step, x: step * f, loss }));
  }

  /** Replaces everything with the server's series (GET /api/series). */
  async setSeries(runs) {
    this.series = new Map(runs.map((r) => [r.id, r]));
    this.rows = runs.flatMap((r) => [...this.toRows(r.id, 'train', r.train), ...this.toRows(r.id, 'val', r.val)]);
    this.last = new Map(runs.map((r) => [r.id, { train: lastStep(r.train), val: lastStep(r.val) }]));
    if (!this.view) return this.rebuild();
    await this.view.change('points', vega.changeset().remove(() => true).insert(this.rows)).runAsync();
    this.mark();
  }

  /** Appends live points of one run (steps already shown are ignored). */
  async append(id, train, val) {
    const last = this.last?.get(id);
    if (!last || !this.view) return;
    const t = train.filter(([s]) => s > last.train), v = val.filter(([s]) => s > last.val);
    if (!t.length && !v.length) return;
    last.train = Math.max(last.train, lastStep(t));
    last.val = Math.max(last.val, lastStep(v));
    const rows = [...this.toRows(id, 'train', t), ...this.toRows(id, 'val', v)];
    this.rows.push(...rows);
    await this.view.change('points', vega.changeset().insert(rows)).runAsync();
    this.mark();
  }

  count(id, split) {
    if (!this.view) return 0;
    return this.view.data('points').filter((r) => r.run === id && (!split || r.split === split)).length;
  }

  /** Options changed (axis, log scales, splits): rebuild the view from the data held. */
  async setOptions(opts) {
    Object.assign(this.opts, opts);
    const runs = [...this.series.values()];
    this.series = new Map();
    this.view?.finalize();
    this.view = null;
    await this.setSeries(runs);
  }

  spec() {
    const o = this.opts;
    const scale = (log) => (log ? { type: 'log' } : { zero: false });
    const enc = {
      x: { field: 'x', type: 'quantitative', title: TITLES[o.x], scale: scale(o.logX), axis: { format: o.x === 'step' ? 'd' : '~s' } },
      y: { field: 'loss', type: 'quantitative', title: 'loss (nats/token)', scale: scale(o.logY) },
      color: { field: 'run', type: 'nominal', legend: { orient: 'bottom', columns: 4, labelLimit: 260, title: null } },
    };
    return {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      width: 'container', height: 320, autosize: { type: 'fit-x', contains: 'padding' },
      data: { name: 'points' },
      layer: [
        {
          params: [{ name: 'grid', select: 'interval', bind: 'scales' }],
          mark: { type: 'line', clip: true, strokeWidth: 1.5 },
          encoding: { ...enc, detail: { field: 'split' }, order: { field: 'step', type: 'quantitative' },
            strokeDash: { field: 'split', type: 'nominal', title: null, scale: { domain: ['train', 'val'], range: [[1, 0], [5, 3]] }, legend: { orient: 'bottom' } },
            opacity: { condition: { test: "datum.split === 'val'", value: 1 }, value: 0.75 } },
        },
        {
          transform: [{ filter: "datum.split === 'val'" }],
          mark: { type: 'point', clip: true, filled: true, size: 22 },
          encoding: { ...enc, tooltip: [{ field: 'run' }, { field: 'step' }, { field: 'loss', format: '.4f' }] },
        },
      ],
    };
  }

  async rebuild() {
    const compiled = vegaLite.compile(this.spec()).spec;
    this.view = new vega.View(vega.parse(compiled), { renderer: 'svg', container: this.container, hover: true });
    this.view.addSignalListener('grid', (_n, v) => {
      clearTimeout(this.zoomTimer);
      this.zoomTimer = setTimeout(() => this.onZoom(v && v.x ? v.x : null), 400);
    });
    await this.view.change('points', vega.changeset().insert(this.rows)).runAsync();
    this.mark();
  }

  mark() {
    this.container.dataset.points = String(this.view.data('points').length);
  }
}

function lastStep(pairs) {
  return pairs.length ? pairs[pairs.length - 1][0] : -Infinity;
}
