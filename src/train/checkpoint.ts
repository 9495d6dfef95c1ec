// Checkpoints: a directory holding
//   model.safetensors      parameters and buffers (reference state_dict names, so PyTorch's
//                          safetensors loader reads them too)
//   optimizer.safetensors  optimizer tensors (moments, ...), names chosen by the optimizer
//   config.json            the run config
//   state.json             written LAST: step, RNG and sampler states, ... plus a manifest of the
//                          other three files (byte size, SHA-256) and a checkpoint id that is also
//                          stored in both safetensors headers.
// Saving is a two-phase commit: the new files are written and fsynced under temp names, then
// state.json is atomically replaced by a manifest listing the pending renames (the commit point),
// then the temps are renamed into place. A crash before the commit leaves the old checkpoint
// intact; a crash after it is finished by the next load or save, which completes the listed
// renames. So a kill -9 at any instant leaves a complete, resumable checkpoint. On load, sizes,
// ids and hashes expose a
// truncated, corrupt or mixed set; a checkpoint of another architecture, or with missing, extra or
// mis-shaped tensors, is rejected with the differing fields / tensors named.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { createHash, randomUUID } from 'node:crypto';
import { basename, join } from 'node:path';
import { fsyncDir, removeQuietly, renameIntoPlace, writeFileAtomic, writeTemp } from '../io/atomic.js';
import { readSafetensors, readSafetensorsHeader, safetensorsWriter, type TensorData, type TensorLike } from '../io/safetensors.js';
import { configSchema, TRAINING_ONLY_MODEL_FIELDS } from '../config/schema.js';

export const CHECKPOINT_FORMAT = 'moelab-checkpoint';
export const CHECKPOINT_VERSION = 1;
export const MODEL_FILE = 'model.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const CONFIG_FILE = 'config.json';
export const STATE_FILE = 'state.json';

export type TensorMap = Map<string, TensorLike> | Record<string, TensorLike>;

export interface CheckpointInput {
  model: TensorMap;
  optimizer: TensorMap;
  /** The run config (JSON-serialisable). */
  config: object;
  /** Step, RNG states, sampler state, ... (JSON-serialisable). */
  state: object;
}

export interface FileRecord {
  bytes: number;
  sha256?: string;
}

export interface CheckpointManifest {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  id: string;
  savedAt: string;
  files: Record<string, FileRecord>;
  /** Renames still to do when the save was cut short after its commit point (temp -> final name). */
  pending?: { from: string; to: string }[];
  state: Record<string, unknown>;
}

export interface SaveOptions {
  /** Record SHA-256 digests (computed while writing; default true). */
  hash?: boolean;
}

export class CheckpointError extends Error {
  constructor(message: string, readonly dir?: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

const TMP_RE = /\.tmp-\d+-[0-9a-f]+$/;
const CK_FILES = [MODEL_FILE, OPTIMIZER_FILE, CONFIG_FILE, STATE_FILE];

/** Write a checkpoint into `dir` (created if needed; an existing checkpoint there is replaced). */
export function saveCheckpoint(dir: string, input: CheckpointInput, opts: SaveOptions = {}): CheckpointManifest {
  const hash = opts.hash !== false;
  mkdirSync(dir, { recursive: true });
  // finish a committed save that was cut short, then sweep leftovers of an uncommitted one
  if (existsSync(join(dir, STATE_FILE))) {
    try {
      readManifest(dir);
    } catch {
      /* not a valid checkpoint: nothing to finish */
    }
  }
  for (const f of readdirSync(dir)) {
    if (TMP_RE.test(f) && CK_FILES.some((c) => f.startsWith(c + '.tmp-'))) {
      try {
        unlinkSync(join(dir, f));
      } catch {
        /* ignore */
      }
    }
  }
  // Two-phase commit, so that a kill at any instant leaves a complete checkpoint:
  //  1. write the new files beside the old ones under temp names and fsync them (a crash here
  //     leaves the old checkpoint untouched; the temps are swept on the next save);
  //  2. atomically replace state.json with a manifest that lists the pending renames: this is the
  //     commit point;
  //  3. rename the temps into place. A crash during 3 is finished by the next load, which
  //     completes the renames the committed manifest lists (rollForward).
  const id = randomUUID();
  const files: Record<string, FileRecord> = {};
  const meta = { format: 'pt', checkpoint_id: id };
  const temps: [string, string][] = [];
  try {
    const model = writeTemp(join(dir, MODEL_FILE), safetensorsWriter(join(dir, MODEL_FILE), input.model, { ...meta, kind: 'model' }, { hash }));
    temps.push([model.tmp, MODEL_FILE]);
    files[MODEL_FILE] = model.result!;
    const opt = writeTemp(join(dir, OPTIMIZER_FILE), safetensorsWriter(join(dir, OPTIMIZER_FILE), input.optimizer, { ...meta, kind: 'optimizer' }, { hash }));
    temps.push([opt.tmp, OPTIMIZER_FILE]);
    files[OPTIMIZER_FILE] = opt.result!;
    const configText = Buffer.from(JSON.stringify(input.config, null, 2) + '\n', 'utf8');
    temps.push([writeTemp(join(dir, CONFIG_FILE), configText).tmp, CONFIG_FILE]);
    files[CONFIG_FILE] = { bytes: configText.byteLength, ...(hash ? { sha256: sha256(configText) } : {}) };
  } catch (e) {
    for (const [tmp] of temps) removeQuietly(tmp);
    throw e;
  }
  fsyncDir(dir);
  const statePath = join(dir, STATE_FILE);
  const manifest: CheckpointManifest = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    id,
    savedAt: new Date().toISOString(),
    files,
    pending: temps.map(([tmp, name]) => ({ from: basename(tmp), to: name })),
    state: JSON.parse(JSON.stringify(input.state)) as Record<string, unknown>,
  };
  writeFileAtomic(statePath, JSON.stringify(manifest, null, 2) + '\n');
  rollForward(dir, manifest);
  return manifest;
}

// ---------------------------------------------------------------------------------------------
// loading

export type ShapeMap = Map<string, readonly number[]> | Record<string, readonly number[]>;

export interface LoadCheckpointOptions {
  /** The run's config: its model section must match the checkpoint's (architecture fields). */
  expectConfig?: { model: object };
  /** Expected model tensors (e.g. spec/count.ts modelTensorShapes(config.model)). */
  expectModelShapes?: ShapeMap;
  /** Expected optimizer tensors. */
  expectOptimizerShapes?: ShapeMap;
  /** Read optimizer.safetensors (default true; false for evaluation / sampling). */
  loadOptimizer?: boolean;
  /** Verify SHA-256 digests when recorded (default true). */
  verifyHash?: boolean;
}

export interface LoadedCheckpoint {
  dir: string;
  model: Map<string, TensorData>;
  /** null when loadOptimizer is false. */
  optimizer: Map<string, TensorData> | null;
  /** config.json as saved (validate it with config/load.ts validateConfig). */
  config: Record<string, unknown>;
  /** The state object given to saveCheckpoint. */
  state: Record<string, unknown>;
  manifest: CheckpointManifest;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  return v === undefined ? '(absent)' : typeof v === 'string' ? `'${v}'` : JSON.stringify(v);
}

/**
 * Architecture differences between two model configs, as `model.path: checkpoint X, expected Y`
 * lines. Training-only knobs (dropout, capacity factors, jitter, loss coefficients, moment dtype)
 * are ignored; when the ffn types differ, only the type is reported.
 */
export function diffModelConfigs(checkpoint: unknown, expected: unknown, ignore: readonly string[] = TRAINING_ONLY_MODEL_FIELDS): string[] {
  const out: string[] = [];
  const walk = (a: unknown, b: unknown, path: string): void => {
    if (ignore.includes(path.replace(/^model\./, ''))) return;
    if (isObj(a) && isObj(b)) {
      if ('type' in a && 'type' in b && a.type !== b.type) {
        out.push(`${path}.type: checkpoint ${show(a.type)}, expected ${show(b.type)}`);
        return;
      }
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) walk(a[k], b[k], `${path}.${k}`);
      return;
    }
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push(`${path}: checkpoint ${show(a)}, expected ${show(b)}`);
  };
  walk(checkpoint, expected, 'model');
  return out;
}

function toShapeMap(m: ShapeMap): Map<string, readonly number[]> {
  return m instanceof Map ? m : new Map(Object.entries(m));
}

/** Missing, unexpected and mis-shaped tensors, or an empty list. */
export function compareTensorShapes(got: Map<string, { shape: readonly number[] }>, expected: ShapeMap): string[] {
  const exp = toShapeMap(expected);
  const missing = [...exp.keys()].filter((n) => !got.has(n));
  const extra = [...got.keys()].filter((n) => !exp.has(n));
  const wrong: string[] = [];
  for (const [n, shape] of exp) {
    const g = got.get(n);
    if (g && (g.shape.length !== shape.length || g.shape.some((s, i) => s !== shape[i]))) wrong.push(`${n} has shape [${g.shape}], expected [${shape}]`);
  }
  const list = (xs: string[]): string => xs.slice(0, 8).join(', ') + (xs.length > 8 ? `, ... (${xs.length} in all)` : '');
  const problems: string[] = [];
  if (missing.length) problems.push(`missing ${missing.length} tensor(s): ${list(missing)}`);
  if (extra.length) problems.push(`unexpected ${extra.length} tensor(s): ${list(extra)}`);
  if (wrong.length) problems.push(`mis-shaped: ${list(wrong)}`);
  return problems;
}

function fail(dir: string, msg: string, details: string[] = []): never {
  throw new CheckpointError(`checkpoint ${dir}: ${msg}${details.length ? '\n' + details.map((d) => `  ${d}`).join('\n') : ''}`, dir);
}

/** Completes a committed save: moves any temp file the manifest lists into place. Idempotent. */
function rollForward(dir: string, m: CheckpointManifest): void {
  let moved = false;
  for (const { from, to } of m.pending ?? []) {
    if (from.includes('/') || to.includes('/') || !CK_FILES.includes(to)) fail(dir, `${STATE_FILE} lists an invalid pending rename ${show(from)} -> ${show(to)}`);
    if (existsSync(join(dir, from))) {
      renameIntoPlace(join(dir, from), join(dir, to), false);
      moved = true;
    }
  }
  if (moved) fsyncDir(dir);
}

function readManifest(dir: string): CheckpointManifest {
  const p = join(dir, STATE_FILE);
  let text: string;
  try {
    text = readFileSync(p, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      const present = CK_FILES.filter((f) => existsSync(join(dir, f)));
      fail(dir, `incomplete checkpoint: ${STATE_FILE} is missing (${present.length ? `found only ${present.join(', ')}; the save was interrupted` : 'this is not a checkpoint directory'})`);
    }
    fail(dir, `cannot read ${STATE_FILE}: ${(e as Error).message}`);
  }
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch (e) {
    fail(dir, `${STATE_FILE} is not valid JSON (${(e as Error).message}); the checkpoint is corrupt`);
  }
  if (!isObj(m) || m.format !== CHECKPOINT_FORMAT) fail(dir, `${STATE_FILE} is not a moelab checkpoint manifest`);
  if (m.version !== CHECKPOINT_VERSION) fail(dir, `checkpoint format version ${show(m.version)} is not supported (this moelab reads version ${CHECKPOINT_VERSION})`);
  if (typeof m.id !== 'string' || !isObj(m.files) || !isObj(m.state)) fail(dir, `${STATE_FILE} is missing id, files or state`);
  for (const f of [MODEL_FILE, OPTIMIZER_FILE, CONFIG_FILE]) {
    const r = (m.files as Record<string, unknown>)[f];
    if (!isObj(r) || !Number.isSafeInteger(r.bytes)) fail(dir, `${STATE_FILE} has no valid record for ${f}`);
  }
  const manifest = m as unknown as CheckpointManifest;
  rollForward(dir, manifest);
  return manifest;
}

const MIXED = 'the checkpoint is truncated, corrupt, or mixes files from different saves';

function checkSize(dir: string, file: string, rec: FileRecord): void {
  let size: number;
  try {
    size = statSync(join(dir, file)).size;
  } catch {
    fail(dir, `${file} is missing (${STATE_FILE} lists it): ${MIXED}`);
  }
  if (size !== rec.bytes) fail(dir, `${file} has ${size} bytes but ${STATE_FILE} records ${rec.bytes}: ${MIXED}`);
}

function readTensors(dir: string, file: string, manifest: CheckpointManifest, expected: ShapeMap | undefined, verify: boolean): Map<string, TensorData> {
  const path = join(dir, file);
  const rec = manifest.files[file];
  try {
    // validate the layout and names before reading any data
    const header = readSafetensorsHeader(path);
    if (header.metadata.checkpoint_id !== undefined && header.metadata.checkpoint_id !== manifest.id) {
      fail(dir, `${file} belongs to another save (checkpoint id ${header.metadata.checkpoint_id}, ${STATE_FILE} has ${manifest.id}): ${MIXED}`);
    }
    if (expected) {
      const problems = compareTensorShapes(header.tensors, expected);
      if (problems.length) fail(dir, `${file} does not match the model being loaded:`, problems);
    }
    const r = readSafetensors(path, { hash: verify && !!rec.sha256 });
    if (r.sha256 && r.sha256 !== rec.sha256) fail(dir, `${file} content does not match its SHA-256 in ${STATE_FILE}: ${MIXED}`);
    return r.tensors;
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    fail(dir, `${file} is unreadable: ${(e as Error).message}`);
  }
}

/** Load and verify a checkpoint directory. */
export function loadCheckpoint(dir: string, opts: LoadCheckpointOptions = {}): LoadedCheckpoint {
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new CheckpointError(`checkpoint directory not found: ${dir}`, dir);
  }
  if (!st.isDirectory()) throw new CheckpointError(`checkpoint path is not a directory: ${dir}`, dir);
  const manifest = readManifest(dir);
  const verify = opts.verifyHash !== false;
  const loadOpt = opts.loadOptimizer !== false;
  // cheap checks first: sizes of every file, then the config
  checkSize(dir, MODEL_FILE, manifest.files[MODEL_FILE]);
  checkSize(dir, CONFIG_FILE, manifest.files[CONFIG_FILE]);
  if (loadOpt) checkSize(dir, OPTIMIZER_FILE, manifest.files[OPTIMIZER_FILE]);

  const configBytes = readFileSync(join(dir, CONFIG_FILE));
  const crec = manifest.files[CONFIG_FILE];
  if (verify && crec.sha256 && sha256(configBytes) !== crec.sha256) fail(dir, `${CONFIG_FILE} content does not match its SHA-256 in ${STATE_FILE}: ${MIXED}`);
  let config: unknown;
  try {
    config = JSON.parse(configBytes.toString('utf8'));
  } catch (e) {
    fail(dir, `${CONFIG_FILE} is not valid JSON (${(e as Error).message})`);
  }
  if (!isObj(config)) fail(dir, `${CONFIG_FILE} is not a JSON object`);

  if (opts.expectConfig) {
    // compare resolved configs when the saved one is a valid moelab config (defaults filled in)
    const parsed = configSchema.safeParse(config);
    const ckModel = parsed.success ? parsed.data.model : config.model;
    const diffs = diffModelConfigs(ckModel, opts.expectConfig.model);
    if (diffs.length) fail(dir, 'was saved from a different architecture:', diffs);
  }

  const model = readTensors(dir, MODEL_FILE, manifest, opts.expectModelShapes, verify);
  const optimizer = loadOpt ? readTensors(dir, OPTIMIZER_FILE, manifest, opts.expectOptimizerShapes, verify) : null;
  return { dir, model, optimizer, config, state: manifest.state, manifest };
}

/** True when `dir` holds a complete checkpoint (state.json present and well-formed). */
export function isCheckpoint(dir: string): boolean {
  try {
    readManifest(dir);
    return true;
  } catch {
    return false;
  }
}
