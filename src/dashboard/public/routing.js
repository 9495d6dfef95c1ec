// Routing statistics of the focused run, from its eval lines: per-layer expert load over eval
// steps as a heatmap (MoE), and one small chart per scalar statistic (drop rate, router entropy,
// balancing loss, dead experts, load unevenness; PEER: coverage, the fraction of experts used, and
// the evenness of their use). Whatever the
// server reports is drawn; unknown statistics get their key as title.
const TITLES = {
  dropRate: 'drop rate (fraction of slots over capacity)',
  routerEntropy: 'router entropy (nats)',
  balanceLoss: 'balancing loss (1 = balanced)',
  zLoss: 'router z-loss',
  deadExperts: 'dead experts (no slot routed)',
  loadCV: 'load unevenness (coefficient of variation)',
  peerUsedFraction: 'experts used (fraction of N)',
  peerUniqueExperts: 'distinct experts used',
  peerUsageEvenness: 'expert usage evenness (entropy / max; 1 = even)',
  peerUsageKL: 'expert usage KL from uniform (nats; 0 = even)',
  peerRetrievals: 'expert retrievals counted',
};
const ORDER = Object.keys(TITLES);

export class RoutingPanel {
  constructor(heatmap, grid, empty, title) {
    Object.assign(this, { heatmap, grid, empty, title });
    this.views = [];
  }

  clear(message) {
    for (const v of this.views) v.finalize();
    this.views = [];
    this.heatmap.replaceChildren();
    this.grid.replaceChildren();
    this.heatmap.dataset.cells = '0';
    this.empty.textContent = message;
    this.empty.hidden = false;
    this.title.textContent = '';
  }

  async show(run, data) {
    const keys = Object.keys(data.scalars).sort((a, b) => rank(a) - rank(b));
    if (!data.load.length && !keys.length) {
      return this.clear(`${run.name}: no routing statistics yet (${run.kind} run; they come with eval lines of MoE and PEER runs).`);
    }
    for (const v of this.views) v.finalize();
    this.views = [];
    this.empty.hidden = true;
    this.title.textContent = `${run.id} (${data.kind}), ${data.evals} of ${data.totalEvals} evals`;
    this.heatmap.replaceChildren();
    this.grid.replaceChildren();
    if (data.load.length) await this.drawHeatmap(data.load);
    for (const k of keys) {
      const div = document.createElement('div');
      div.className = 'chart';
      div.dataset.stat = k;
      this.grid.append(div);
      await this.draw(div, {
        width: 'container', height: 140, autosize: { type: 'fit-x', contains: 'padding' },
        title: { text: TITLES[k] ?? k, fontSize: 12 },
        data: { values: data.scalars[k] },
        mark: { type: 'line', point: data.scalars[k].length < 60 },
        encoding: {
          x: { field: 'step', type: 'quantitative', title: 'step' },
          y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false }, axis: { format: '~g' } },
          color: { field: 'layer', type: 'nominal', title: null },
          tooltip: [{ field: 'layer' }, { field: 'step' }, { field: 'value', format: '.4g' }],
        },
      }, 'svg');
    }
  }

  async drawHeatmap(cells) {
    const layers = new Set(cells.map((c) => c.layer)).size;
    const experts = new Set(cells.map((c) => c.expert)).size;
    const width = Math.max(240, this.heatmap.clientWidth - 180);
    await this.draw(this.heatmap, {
      data: { values: cells },
      facet: { row: { field: 'layer', type: 'nominal', title: null, header: { labelAngle: 0, labelAlign: 'left' } } },
      spec: {
        width, height: Math.min(220, Math.max(60, experts * 10)),
        mark: 'rect',
        encoding: {
          x: { field: 'step', type: 'ordinal', title: 'eval step', axis: { labelOverlap: true, labelAngle: 0 } },
          y: { field: 'expert', type: 'ordinal', title: 'expert', axis: { labelOverlap: true } },
          color: { field: 'value', type: 'quantitative', title: 'load', scale: { scheme: 'viridis', domainMin: 0 } },
          tooltip: [{ field: 'layer' }, { field: 'step' }, { field: 'expert' }, { field: 'value', title: 'load', format: '.3f' }],
        },
      },
      title: { text: `expert load over training (fraction of routed slots; even = 1/${experts})`, fontSize: 12 },
    }, 'canvas');
    this.heatmap.dataset.cells = String(cells.length);
    this.heatmap.dataset.layers = String(layers);
  }

  async draw(container, spec, renderer) {
    const compiled = vegaLite.compile({ $schema: 'https://vega.github.io/schema/vega-lite/v6.json', ...spec }).spec;
    const view = new vega.View(vega.parse(compiled), { renderer, container, hover: true });
    this.views.push(view);
    await view.runAsync();
  }
}

function rank(k) {
  const i = ORDER.indexOf(k);
  return i < 0 ? ORDER.length : i;
}
