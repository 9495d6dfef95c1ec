/**
 * `moelab inspect` as a library call on a run folder: opens the run's last committed checkpoint
 * read-only (safe while it trains), picks the batches (the run's fixed validation batches, as its
 * eval lines use, or consecutive windows of given files) and inspects the routing (inspect_routing.ts).
 * Writes nothing.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { openRun, loadRunConfig, runExists } from '../train/run.js';
import { loadTrainingData } from '../train/setup.js';
import { fixedValBatches, evalBatches, type Batch } from '../data/loader.js';
import { loadCorpus } from '../data/corpus.js';
import { dataIdentity, describeDataChange } from '../data/identity.js';
import { layerKinds } from '../spec/model.js';
import { readRunDataIdentity } from './run_files.js';
import { inspectRouting, type InspectRoutingOptions, type RoutingInspection } from './inspect_routing.js';

export interface InspectRunOptions extends InspectRoutingOptions {
  /** Text files or folders to run instead of the run's validation batches (read as one corpus). */
  data?: string[];
  /** Batches to run: default the run's train.evalBatches validation batches, or every window of `data`. */
  batches?: number;
  /** Things worth telling the user (the run's data changed, corpus notices). */
  onNotice?: (message: string) => void;
}

export type InspectSource =
  | { kind: 'validation'; batch: number; seq: number }
  | { kind: 'files'; files: string[]; batch: number; seq: number };

export interface RunInspection extends RoutingInspection {
  /** The run folder (absolute). */
  run: string;
  name: string;
  source: InspectSource;
  createdAt: string;
}

export function inspectRun(dir: string, o: InspectRunOptions = {}): RunInspection {
  if (o.batches !== undefined && !(Number.isInteger(o.batches) && o.batches >= 1)) {
    throw new Error(`inspect: batches must be a positive integer, got ${o.batches}`);
  }
  const run = resolve(dir);
  if (!existsSync(run)) throw new Error(`no run at ${dir}: the folder does not exist (give the run folder, e.g. runs/my-run)`);
  if (!runExists(run)) throw new Error(`${dir} holds no checkpoint (no committed state.json): train it first, or wait for its first checkpoint`);
  const kinds = layerKinds(loadRunConfig(run).model);
  if (!kinds.some((k) => k !== 'dense')) {
    throw new Error(`${dir} is a dense model (${kinds.length} dense feed-forward layers): nothing routes, so there is nothing to inspect; inspect shows MoE and PEER layers`);
  }
  const { model, config, tokenizer } = openRun(run);
  const notice = o.onNotice ?? (() => {});
  const batch = config.train.batch, seq = config.model.seq;
  let batches: Batch[];
  let source: InspectSource;
  if (o.data && o.data.length) {
    const corpus = loadCorpus(o.data, tokenizer);
    for (const n of corpus.notices) notice(n);
    batches = [];
    for (const b of evalBatches(corpus.tokens, seq, batch)) {
      if (o.batches !== undefined && batches.length >= o.batches) break;
      batches.push(b);
    }
    if (!batches.length) throw new Error(`${o.data.join(', ')}: too short to inspect (needs at least 2 tokens)`);
    source = { kind: 'files', files: corpus.files, batch, seq };
  } else {
    const data = loadTrainingData(config);
    for (const n of data.corpus.notices) notice(n);
    const recorded = readRunDataIdentity(run);
    const change = recorded ? describeDataChange(recorded, dataIdentity(data.corpus)) : null;
    if (change) notice(`${change}: the validation batches are not the ones the run was evaluated on`);
    batches = fixedValBatches(data.val, batch, seq, o.batches ?? config.train.evalBatches);
    source = { kind: 'validation', batch, seq };
  }
  const r = inspectRouting(model, tokenizer, batches, { top: o.top });
  return { run, name: config.name, source, createdAt: new Date().toISOString(), ...r };
}
