// The runs below the runs folder, each a RunData kept in memory and refreshed incrementally. Every
// lookup by id goes through paths.ts, so an id from a request cannot reach outside the folder.
import { readResultFile, type ResultFile } from './tables.js';
import { runEvalTables, evalHistory, type EvalTables, type HistoryRow } from './eval_results.js';
import { sweepView, type SweepView } from './sweep_plots.js';
import { BadRunPath, realRoot, resolveRunPath } from './paths.js';
import { RunData, type RunSummary } from './run_data.js';
import { isRunFolder, scanRuns } from './scan.js';
import { join } from 'node:path';

export class RunStore {
  readonly root: string;
  private readonly runs = new Map<string, RunData>();
  private sweeps: string[] = [];
  private scannedAt = 0;

  constructor(root: string, private readonly rescanMs = 1000) {
    this.root = realRoot(root);
  }

  /** Rescans the folder (at most once per rescanMs) and refreshes every run. */
  list(): { runs: RunSummary[]; sweeps: string[] } {
    const now = Date.now();
    if (now - this.scannedAt >= this.rescanMs) {
      this.scannedAt = now;
      const found = scanRuns(this.root);
      const ids = new Set(found.runs);
      for (const id of this.runs.keys()) if (!ids.has(id)) this.runs.delete(id);
      for (const id of found.runs) if (!this.runs.has(id)) this.runs.set(id, new RunData(id, join(this.root, ...id.split('/'))));
      this.sweeps = found.sweeps;
    }
    const out: RunSummary[] = [];
    for (const run of this.runs.values()) {
      run.refresh();
      if (!run.missing) out.push(run.summary(now));
    }
    return { runs: out, sweeps: this.sweeps };
  }

  /** Run `id`, checked to be a run folder inside the runs folder; throws BadRunPath (400/404) otherwise. */
  get(id: string): RunData {
    const dir = resolveRunPath(this.root, id);
    let run = this.runs.get(id);
    if (!run || run.dir !== dir) {
      if (!isRunFolder(dir)) throw new BadRunPath(`no run '${id}'`, 404);
      run = new RunData(id, dir);
      this.runs.set(id, run);
    }
    run.refresh();
    if (run.missing) throw new BadRunPath(`no run '${id}'`, 404);
    return run;
  }

  /** results.json of every sweep that has one, as a table. */
  results(): { sweeps: ResultFile[] } {
    const { sweeps } = this.list();
    return { sweeps: sweeps.map((s) => readResultFile(s, join(this.sweepDir(s), 'results.json'), 'results.json')) };
  }

  /** The evaluation tables of run `id` (<run>/eval/*.json) and its history (metrics.jsonl eval lines). */
  evals(id: string): EvalTables & { history: HistoryRow[] } {
    const run = this.get(id);
    return { ...runEvalTables(id, run.dir), history: evalHistory(run.evalResults) };
  }

  /** The plots of sweep `id` ('' is the runs folder itself); only folders the scan found as sweeps are served. */
  sweep(id: string): SweepView {
    if (!this.list().sweeps.includes(id)) throw new BadRunPath(`no sweep '${id}'`, 404);
    return sweepView(id, this.sweepDir(id));
  }

  private sweepDir(id: string): string {
    return id === '' ? this.root : resolveRunPath(this.root, id);
  }
}
