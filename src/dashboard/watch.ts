// Live updates: watches the run folders that open pages follow. fs.watch on the folder (it also
// sees metrics.jsonl being replaced by a resume) wakes us at once; a one-second tick covers file
// systems where fs.watch is silent. Either way only the appended bytes are read (tail.ts), and the
// run's followers get what was appended (RunData.onDelta), whichever read found it.
import { watch, type FSWatcher } from 'node:fs';
import type { RunData, RunDelta } from './run_data.js';
import type { RunStore } from './store.js';

export type DeltaListener = (id: string, delta: RunDelta, run: RunData) => void;

interface Watched { run: RunData; watcher: FSWatcher | null; listeners: Set<DeltaListener>; pending: NodeJS.Timeout | null; off: () => void }

export class RunWatcher {
  private readonly watched = new Map<string, Watched>();
  private tick: NodeJS.Timeout | null = null;

  constructor(private readonly store: RunStore, private readonly tickMs = 1000) {}

  /** Calls `listener` with each change of run `id` until the returned function is called. Throws BadRunPath for unknown ids. */
  follow(id: string, listener: DeltaListener): () => void {
    let w = this.watched.get(id);
    if (!w) {
      const run = this.store.get(id);
      const ww: Watched = { run, watcher: null, listeners: new Set(), pending: null, off: () => {} };
      ww.off = run.onDelta((d) => {
        for (const l of [...ww.listeners]) l(id, d, run);
        if (d.missing) this.drop(id);
      });
      try {
        ww.watcher = watch(run.dir, { persistent: false }, () => this.schedule(ww));
        ww.watcher.on('error', () => this.schedule(ww)); // e.g. the folder was deleted: the read reports it
      } catch {
        /* no watch available: the tick still sees changes */
      }
      this.watched.set(id, (w = ww));
    }
    w.listeners.add(listener);
    this.tick ??= setInterval(() => { for (const x of [...this.watched.values()]) x.run.refresh(); }, this.tickMs);
    return () => {
      const cur = this.watched.get(id);
      if (!cur) return;
      cur.listeners.delete(listener);
      if (cur.listeners.size === 0) this.drop(id);
    };
  }

  /** Coalesces a burst of watch events into one read. */
  private schedule(w: Watched): void {
    if (w.pending) return;
    w.pending = setTimeout(() => {
      w.pending = null;
      w.run.refresh();
    }, 20);
  }

  private drop(id: string): void {
    const w = this.watched.get(id);
    if (!w) return;
    w.off();
    w.watcher?.close();
    if (w.pending) clearTimeout(w.pending);
    this.watched.delete(id);
    if (this.watched.size === 0 && this.tick) {
      clearInterval(this.tick);
      this.tick = null;
    }
  }

  close(): void {
    for (const id of [...this.watched.keys()]) this.drop(id);
  }
}
