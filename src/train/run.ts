/**
 * A run directory's checkpoint, in terms of a live model and optimizer: parameters and buffers
 * under the PyTorch reference's state_dict names (so torch can load model.safetensors), optimizer
 * moments under `<optimizer>/<param>.exp_avg`, and the trainer's state.
 */
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { parseOverrides } from '../config/load.js';
import { configForSave, configFromSaved } from '../config/saved.js';
import { configHash } from '../config/hash.js';
import type { RunLock } from '../io/lock.js';
import { saveCheckpoint, loadCheckpoint, isCheckpoint, readCheckpointConfig, CONFIG_FILE } from './checkpoint.js';
import type { TensorData, TensorLike } from '../io/safetensors.js';
import { modelTensorShapes } from '../spec/count.js';
import { buildModel } from '../nn/build.js';
import type { GPT } from '../nn/gpt.js';
import type { Optimizer, NamedArray } from '../optim/optimizer.js';
import { getTokenizer, type Tokenizer } from '../data/tokenizer.js';

export const runExists = (dir: string): boolean => isCheckpoint(dir);

/**
 * torch stores BatchNorm's batch counter as int64; PEER tables kept in bf16 (model.ffn.bf16Tables)
 * are saved as BF16 (torch loads them as torch.bfloat16; half the file); everything else is float32.
 */
const INT64_BUFFERS = /num_batches_tracked$/;

function modelTensors(model: GPT): Map<string, TensorLike> {
  const out = new Map<string, TensorLike>();
  for (const [name, p] of model.namedParameters()) {
    out.set(name, p.dtype === 'bf16' ? { dtype: 'BF16', shape: p.shape, data: p.bf16 } : { dtype: 'F32', shape: p.shape, data: p.contiguous().f32 });
  }
  for (const [name, b] of model.namedBuffers()) {
    if (INT64_BUFFERS.test(name)) out.set(name, { dtype: 'I64', shape: b.shape, data: BigInt64Array.from(Array.from(b.data as ArrayLike<number>), (v) => BigInt(Math.round(v))) });
    else out.set(name, { dtype: 'F32', shape: b.shape, data: b.contiguous().f32 });
  }
  return out;
}

function optimizerTensors(opt: Optimizer): Map<string, TensorLike> {
  const out = new Map<string, TensorLike>();
  for (const [k, v] of opt.stateDict()) out.set(k, { dtype: v.dtype, shape: v.shape, data: v.data });
  return out;
}

/** Writes the run's checkpoint; pass the run's lock (the writer's), so a broken lock stops the save. */
export function saveRun(dir: string, model: GPT, opt: Optimizer, cfg: Config, state: Record<string, unknown>, lock?: RunLock): void {
  saveCheckpoint(dir, { model: modelTensors(model), optimizer: optimizerTensors(opt), config: configForSave(cfg), state }, { lock });
}

/** Copies checkpoint tensors into the model's parameters and buffers (shapes already verified). */
export function loadWeights(model: GPT, tensors: Map<string, TensorData>): void {
  for (const [name, t] of [...model.namedParameters(), ...model.namedBuffers()]) {
    const src = tensors.get(name);
    if (!src) throw new Error(`checkpoint lacks tensor '${name}'`);
    const dst = t.data;
    if (src.data instanceof BigInt64Array) {
      for (let i = 0; i < dst.length; i++) dst[i] = Number(src.data[i]);
    } else if ((src.data instanceof Float32Array && dst instanceof Float32Array) || (src.data instanceof Uint16Array && dst instanceof Uint16Array && src.dtype === 'BF16')) {
      dst.set(src.data);
    } else {
      throw new Error(`checkpoint tensor '${name}' has dtype ${src.dtype}, expected ${dst instanceof Uint16Array ? 'BF16 (model.ffn.bf16Tables)' : 'F32'}`);
    }
  }
}

/** Restores model, optimizer and trainer state from dir; refuses a checkpoint of another architecture. */
export function loadRun(dir: string, model: GPT, opt: Optimizer, cfg: Config): { state: Record<string, unknown> } {
  const ck = loadCheckpoint(dir, { expectConfig: cfg, expectModelShapes: modelTensorShapes(cfg.model) });
  loadWeights(model, ck.model);
  opt.loadStateDict(ck.optimizer! as Map<string, NamedArray>);
  return { state: ck.state };
}

/**
 * The config saved in a run, with optional overrides (steps, threads, data, --set): derived
 * defaults follow the overrides, everything else stays as saved (config/saved.ts).
 */
export function loadRunConfig(dir: string, o: { steps?: number; threads?: number; data?: string[]; set?: string[] } = {}): Config {
  // the committed checkpoint's config (read-only: right after a save's commit it is still a temp file)
  const raw: unknown = readCheckpointConfig(dir).config;
  const over: Record<string, unknown> = parseOverrides(o.set ?? []);
  if (o.steps !== undefined) over['train.steps'] = o.steps;
  if (o.threads !== undefined) over['train.threads'] = o.threads;
  if (o.data && o.data.length) over['data.paths'] = o.data;
  return configFromSaved(raw, over, { source: join(dir, CONFIG_FILE) });
}

/**
 * A trained model ready for evaluation or sampling, from the run's last committed checkpoint
 * (optimizer state not read), and that checkpoint's step. Read-only: safe while another process
 * trains the run.
 */
export function openRun(dir: string): { model: GPT; config: Config; tokenizer: Tokenizer; step: number } {
  const config = loadRunConfig(dir);
  const ck = loadCheckpoint(dir, { expectConfig: config, expectModelShapes: modelTensorShapes(config.model), loadOptimizer: false });
  const model = buildModel(config.model, config.train.seed, { init: false }); // loadWeights sets every tensor
  loadWeights(model, ck.model);
  model.eval();
  // the step of the checkpoint these weights are (what an evaluation of them is labelled with)
  const step = (ck.state as { step?: unknown }).step;
  return { model, config, tokenizer: getTokenizer(config.model.vocab), step: typeof step === 'number' ? step : 0 };
}

/**
 * Where a run of `cfg` lives under `root`: `<root>/<name>`, or with `byHash`
 * `<root>/<name>-<configHash>`, a stable name for the resolved config (the same config always
 * maps to the same folder, so re-running it resumes or refuses instead of colliding).
 */
export function runDirFor(cfg: Config, root = 'runs', opts: { byHash?: boolean } = {}): string {
  return join(root, opts.byHash ? `${cfg.name}-${configHash(cfg)}` : cfg.name);
}
