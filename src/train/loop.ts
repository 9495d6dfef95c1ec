/**
 * The training loop as a library call: set up (data, memory check, model, optimizers, resume), then
 * `trainStep` until the last step, with periodic validation and checkpoints, reporting typed events
 * to listeners. It yields to the event loop between steps, stops cleanly when its AbortSignal fires
 * (checkpointing first), and never touches the terminal, signals or the process exit code: those
 * belong to the caller (the CLI maps Ctrl-C to the signal).
 *
 * A run directory holds config.json, model.safetensors, optimizer.safetensors, state.json (the
 * commit point of each checkpoint) and metrics.jsonl. Only a state whose parameters are finite is
 * ever checkpointed, so divergence always leaves the previous good checkpoint in place.
 */
import { resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { checkMatmulPrecision, setComputeThreads, withArithmetic } from '../tensor/index.js';
import { BatchSampler, fixedValBatches, type SamplerState } from '../data/loader.js';
import { countModel } from '../spec/count.js';
import type { GPT } from '../nn/gpt.js';
import type { Tokenizer } from '../data/tokenizer.js';
import { dataIdentity, describeDataChange, type DataIdentity } from '../data/identity.js';
import { saveRun, loadRun } from './run.js';
import { openRunWriter, type RunWriter } from './rundir.js';
import { trainStep, modelIsFinite, TrainingDiverged } from './step.js';
import { loadTrainingData, checkTrainingMemory, buildTraining, validationLoss, ffnStats, type TrainingData } from './setup.js';
import { EventBus, type TrainListener } from './events.js';
import { metricsFileListener } from './metrics_log.js';
import { currentProvenance, type RunProvenance } from './provenance.js';

export interface TrainOptions {
  config: Config;
  /** Run directory (created if new; must be empty, new, or a moelab run). */
  dir: string;
  /** Continue the checkpoint in `dir` (its step, optimizer moments, data order and random keys). */
  resume?: boolean;
  /** Stop after this many completed steps even if train.steps is larger (checkpointing there). */
  stopAt?: number;
  /** Abort to stop between steps; the loop checkpoints and resolves with stoppedBy 'stopped'. */
  signal?: AbortSignal;
  /** Called for every event, in order, after the metrics.jsonl writer. */
  listeners?: TrainListener[];
  /** What started the run, recorded in the run's lock file (e.g. the command line). */
  command?: string;
}

export interface TrainResult {
  dir: string;
  step: number;
  lastLoss: number;
  valLoss: number | null;
  /** Mean training throughput of this process (tokens/s). */
  tokensPerSecond: number;
  stoppedBy: 'done' | 'stopped' | 'stopAt';
  provenance: RunProvenance;
  /** The trained model (as checkpointed) and its tokenizer, e.g. to sample from or evaluate. */
  model: GPT;
  tokenizer: Tokenizer;
}

/** What state.json records besides the checkpoint manifest. */
export interface RunState {
  step: number;
  sampler: SamplerState | null;
  tokensSeen: number;
  lastLoss: number;
  valLoss: number | null;
  /** The files and contents the run trains on: a resumed run must see the same data. */
  data: DataIdentity;
  /** The process that created the run, then the one that saved this checkpoint. */
  provenance: { created: RunProvenance; saved: RunProvenance };
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const cfg = opts.config, tc = cfg.train, mc = cfg.model;
  const dir = resolve(opts.dir);
  if (tc.threads) setComputeThreads(tc.threads);
  // Refused here, before any file is touched, on a CPU that cannot run bf16 GEMMs.
  checkMatmulPrecision(tc.precision);
  const provenance = currentProvenance(tc.seed);
  const data = loadTrainingData(cfg);
  const memory = checkTrainingMemory(cfg);
  // The run folder's single writer from here on: a second trainer (or a sweep worker) on the same
  // folder is refused with the holder's name; a half-finished save of a killed writer is completed.
  const writer = openRunWriter(dir, { resume: Boolean(opts.resume), command: opts.command });
  try {
    return await trainLocked(opts, writer, data, memory, provenance);
  } finally {
    writer.release();
  }
}

async function trainLocked(opts: TrainOptions, writer: RunWriter, data: TrainingData, memory: string, provenance: RunProvenance): Promise<TrainResult> {
  const cfg = opts.config, tc = cfg.train, mc = cfg.model;
  const dir = writer.dir;
  const { model, optimizer } = buildTraining(cfg);
  // the run's precision around each synchronous compute call, never across an await (another run in
  // this process may step in between)
  const inRun = <T>(fn: () => T): T => withArithmetic(tc, fn);
  const sampler = new BatchSampler(data.train, tc.batch, mc.seq, tc.seed);
  const valBatches = fixedValBatches(data.val, tc.batch, mc.seq, tc.evalBatches);
  let state: RunState = {
    step: 0, sampler: null, tokensSeen: 0, lastLoss: NaN, valLoss: null, data: dataIdentity(data.corpus),
    provenance: { created: provenance, saved: provenance },
  };
  let lastSaved: number | null = null;
  if (opts.resume) {
    state = loadRun(dir, model, optimizer, cfg).state as unknown as RunState;
    const change = state.data ? describeDataChange(state.data, dataIdentity(data.corpus)) : null;
    if (change) {
      throw new Error(`cannot resume ${dir}: ${change}. Its data order and validation split refer to the original files: ` +
        'restore them, or train a new run (another --out) on the new data.');
    }
    if (state.sampler) sampler.setState(state.sampler);
    lastSaved = state.step;
  }

  const end = Math.min(tc.steps, opts.stopAt ?? Infinity);
  const bus = new EventBus([metricsFileListener(dir, tc.logEvery), ...(opts.listeners ?? [])]);
  await bus.emit({
    type: 'start', dir, name: cfg.name, step: state.step, end, resumed: Boolean(opts.resume),
    data: {
      files: data.corpus.files.length, tokens: data.corpus.tokens.length, trainTokens: data.train.length, valTokens: data.val.length,
      tokenizer: data.tokenizer.name, cached: data.corpus.cached, notices: data.corpus.notices,
    },
    counts: countModel(mc), provenance, memory,
  });

  // Only a state that can be trained on is saved: finite parameters, and a finite loss for them (the
  // last step's loss was measured before its update; an update can leave finite but useless weights,
  // so the saved weights are checked on a validation batch unless an evaluation just did that).
  let evaluatedAt = -1;
  const save = async (reason: 'periodic' | 'end' | 'stopped') => {
    if (!modelIsFinite(model)) {
      throw new TrainingDiverged(`the parameters became non-finite by step ${state.step}`, state.step, 'parameters');
    }
    const loss = evaluatedAt === state.step ? state.valLoss! : inRun(() => validationLoss(model, valBatches.slice(0, 1)));
    if (!Number.isFinite(loss)) {
      throw new TrainingDiverged(`the loss of the parameters after step ${state.step} is ${loss}`, state.step, 'loss');
    }
    state.sampler = sampler.getState();
    state.provenance = { created: state.provenance?.created ?? provenance, saved: provenance };
    saveRun(dir, model, optimizer, cfg, state as unknown as Record<string, unknown>, writer.lock);
    lastSaved = state.step;
    await bus.emit({ type: 'checkpoint', step: state.step, reason, dir });
  };

  const t0 = performance.now();
  let trainedTokens = 0;
  let stoppedBy: TrainResult['stoppedBy'] = 'done';
  try {
    while (state.step < end) {
      if (opts.signal?.aborted) {
        stoppedBy = 'stopped';
        break;
      }
      const r = inRun(() => trainStep({ model, optimizer, train: tc, nextBatch: () => sampler.next() }, state.step));
      state.step = r.step + 1;
      state.tokensSeen += r.tokens;
      state.lastLoss = r.loss;
      trainedTokens += r.tokens;
      const { step: _, ...rest } = r;
      await bus.emit({
        ...rest, type: 'step', step: state.step, end, tokensSeen: state.tokensSeen,
        tokensPerSecond: r.tokens / (r.ms.total / 1000), elapsed: (performance.now() - t0) / 1000,
      });
      if ((tc.evalEvery > 0 && state.step % tc.evalEvery === 0) || state.step === end) {
        state.valLoss = inRun(() => validationLoss(model, valBatches));
        evaluatedAt = state.step;
        await bus.emit({ type: 'eval', step: state.step, valLoss: state.valLoss, ffn: ffnStats(model) });
      }
      if (tc.saveEvery > 0 && state.step % tc.saveEvery === 0 && state.step !== end) await save('periodic');
      await new Promise((r) => setImmediate(r)); // lets signal handlers and other I/O run between steps
    }
    if (stoppedBy === 'done' && state.step < tc.steps) stoppedBy = 'stopAt';
    await save(stoppedBy === 'stopped' ? 'stopped' : 'end');
  } catch (e) {
    if (!(e instanceof TrainingDiverged)) throw e;
    const kept = lastSaved === null ? 'no checkpoint was saved before it' : `the checkpoint of step ${lastSaved} in ${dir} is kept`;
    const message = `${e.message}: training stopped; ${kept}. Try a lower train.lr, train.clip > 0 or a longer train.warmup.`;
    await bus.emit({ type: 'diverged', step: e.step, message, checkpointStep: lastSaved });
    throw new TrainingDiverged(message, e.step, e.quantity);
  }
  await bus.emit({ type: 'done', step: state.step, stoppedBy, lastLoss: state.lastLoss, valLoss: state.valLoss });
  const seconds = (performance.now() - t0) / 1000;
  return {
    dir, step: state.step, lastLoss: state.lastLoss, valLoss: state.valLoss,
    tokensPerSecond: seconds > 0 ? trainedTokens / seconds : 0, stoppedBy, provenance, model, tokenizer: data.tokenizer,
  };
}
