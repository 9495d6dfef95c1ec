// Sweep folders (GET /api/sweep): the server builds each plot's vega-lite spec with the study's own
// spec functions (src/study/plot/specs.ts) from results.json, compare.json and fit.json, so these
// are the report's plots; the page only renders them.
import { el } from './format.js';

const TITLES = { loss_vs_compute: 'loss vs compute', compute_multiplier: 'compute multiplier', fit_vs_points: 'fitted law vs points', isoflop: 'isoFLOP curves', optimal_sparsity: 'optimal sparsity' };

export class SweepPanel {
  constructor(container) {
    this.container = container;
    this.views = [];
    this.key = '';
  }

  /** Draws every sweep; `load(id)` fetches one sweep's plots. Redraws only when something changed. */
  async show(ids, load) {
    const sweeps = await Promise.all(ids.map(async (id) => { try { return await load(id); } catch (e) { return { id, plots: [], notes: [e.message] }; } }));
    const key = JSON.stringify(sweeps);
    if (key === this.key) return;
    this.key = key;
    for (const v of this.views) v.finalize();
    this.views = [];
    if (!sweeps.length) {
      this.container.replaceChildren(el('span', 'No sweep folders (sweep.json or results.json) below the runs folder.', 'muted'));
      return;
    }
    this.container.replaceChildren();
    for (const s of sweeps) {
      const box = el('div', null, 'sweep');
      box.dataset.sweep = s.id;
      const where = s.id || '(the runs folder)';
      box.append(el('h3', `sweep ${where}` + (s.results !== undefined ? `: ${s.results} results, ${s.missing} points without one` : '') + (s.collectedAt ? `, collected ${s.collectedAt}` : '')));
      for (const n of s.notes) box.append(el('div', n, 'muted'));
      const grid = el('div', null, 'grid sweep-plots');
      box.append(grid);
      this.container.append(box);
      for (const p of s.plots) {
        const div = el('div', null, 'chart');
        div.dataset.plot = p.name;
        div.title = `${TITLES[p.name] ?? p.name}, from ${p.file}`;
        grid.append(div);
        const view = new vega.View(vega.parse(vegaLite.compile(p.spec).spec), { renderer: 'svg', container: div, hover: true });
        this.views.push(view);
        await view.runAsync();
      }
      box.dataset.plots = String(s.plots.length);
    }
  }
}
