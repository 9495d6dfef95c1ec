/**
 * The files of a routing inspection: routing.json (the whole RunInspection) and, when the model has
 * MoE layers, expert_load.{vl.json,svg,png}, the per-layer expert-utilisation heatmap (layers x
 * experts), drawn by the study plots' path. Each file is replaced atomically.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { describeFsError } from '../io/fserror.js';
import { expertLoadHeatmapSpec, type ExpertLoadCell } from '../study/plot/specs.js';
import { writePlot } from '../study/fit/outputs.js';
import type { RunInspection } from '../eval/inspect_run.js';
import type { RoutingInspection } from '../eval/inspect_routing.js';

export const ROUTING_JSON = 'routing.json';
export const EXPERT_LOAD = 'expert_load';

/** Heatmap cells: one per (MoE layer, expert), layers labelled `layer <i>`. */
export function expertLoadCells(r: RoutingInspection): ExpertLoadCell[] {
  return r.layers.flatMap((l) => (l.kind === 'moe' ? l.perExpert.map((x) => ({ layer: `layer ${l.layer}`, expert: x.expert, utilisation: x.utilisation })) : []));
}

/** Writes the inspection into `dir` (created if needed); returns the paths written. */
export async function writeInspection(dir: string, r: RunInspection): Promise<string[]> {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw describeFsError(e, 'create the inspection folder', dir, 'nothing was written');
  }
  const files: string[] = [];
  const cells = expertLoadCells(r);
  if (cells.length) {
    await writePlot(dir, EXPERT_LOAD, expertLoadHeatmapSpec(cells, `Expert utilisation: ${r.name} (${r.tokens} tokens)`), files);
  }
  const json = join(dir, ROUTING_JSON);
  writeFileAtomic(json, JSON.stringify(r, null, 1) + '\n');
  files.push(json);
  return files;
}
