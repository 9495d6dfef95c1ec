// Best validation loss against training compute so far (steps x tokens/step x FLOPs/token), one
// point per run, coloured by feed-forward kind: the runs of a sweep side by side, log-log.
export class ComputeChart {
  constructor(container) {
    this.container = container;
    this.view = null;
    this.key = '';
  }

  async show(runs) {
    const rows = runs
      .filter((r) => r.bestValLoss !== null && r.tokensPerStep && r.flopsPerToken && r.step > 0)
      .map((r) => ({ run: r.id, kind: r.kind, flops: r.step * r.tokensPerStep * r.flopsPerToken, loss: r.bestValLoss, params: r.paramsActive }));
    const key = JSON.stringify(rows);
    if (key === this.key) return; // the run list arrives every few seconds; redraw only on change
    this.key = key;
    this.view?.finalize();
    this.view = null;
    this.container.dataset.points = String(rows.length);
    if (rows.length < 2) {
      this.container.replaceChildren();
      this.container.hidden = true;
      return;
    }
    this.container.hidden = false;
    const spec = {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      width: 'container', height: 220, autosize: { type: 'fit-x', contains: 'padding' },
      title: { text: 'best validation loss vs training compute so far', fontSize: 12 },
      data: { values: rows },
      mark: { type: 'point', filled: true, size: 60 },
      encoding: {
        x: { field: 'flops', type: 'quantitative', scale: { type: 'log' }, title: 'training FLOPs', axis: { format: '~s' } },
        y: { field: 'loss', type: 'quantitative', scale: { type: 'log', zero: false }, title: 'best validation loss' },
        color: { field: 'kind', type: 'nominal', title: 'kind' },
        tooltip: [{ field: 'run' }, { field: 'kind' }, { field: 'flops', format: '.3s' }, { field: 'loss', format: '.4f' }, { field: 'params', title: 'active params', format: '.3s' }],
      },
    };
    this.view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'svg', container: this.container, hover: true });
    await this.view.runAsync();
  }
}
