// Finds run folders (metrics.jsonl, which a run has from its first step, or config.json plus
// state.json, which it has from its first checkpoint) and sweep folders
// (sweep.json, the manifest, or results.json) anywhere below the runs folder. Symbolic links are not followed (a link cannot
// lead the scan outside the folder), hidden folders and node_modules are skipped, and the walk is
// bounded so a huge tree cannot stall the server.
import { existsSync, readdirSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { runIdOf } from './paths.js';

export interface ScanResult {
  /** Run ids ('/'-separated paths relative to the runs folder), sorted. */
  runs: string[];
  /** Folders holding a sweep.json or results.json (the runs folder itself is ''), sorted. */
  sweeps: string[];
}

const MAX_DEPTH = 8;
const MAX_DIRS = 20_000;

export function isRunFolder(dir: string): boolean {
  return existsSync(join(dir, 'metrics.jsonl')) || (existsSync(join(dir, 'config.json')) && existsSync(join(dir, 'state.json')));
}

export function scanRuns(root: string): ScanResult {
  const runs: string[] = [], sweeps: string[] = [];
  let visited = 0;
  const walk = (dir: string, depth: number): void => {
    if (++visited > MAX_DIRS) return;
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // vanished or unreadable: not a run
    }
    const names = new Set(entries.map((e) => e.name));
    if (names.has('results.json') || names.has('sweep.json')) sweeps.push(runIdOf(root, dir));
    if (depth > 0 && (names.has('metrics.jsonl') || (names.has('config.json') && names.has('state.json')))) {
      runs.push(runIdOf(root, dir));
      return; // a run holds no runs
    }
    if (depth >= MAX_DEPTH) return;
    for (const e of entries) {
      if (e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules') walk(join(dir, e.name), depth + 1);
    }
  };
  walk(root, 0);
  return { runs: runs.sort(), sweeps: sweeps.sort() };
}
