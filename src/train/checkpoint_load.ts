// Reading a checkpoint, strictly read-only: a reader (eval, generate, a dashboard) may open a run
// while its trainer saves, and must neither disturb the save nor see a mix of two saves.
//
// What a reader can meet, instant by instant, during a save (see checkpoint.ts):
//   1. new temps being written, state.json old   -> the old files are under their final names;
//   2. state.json new (the commit), no rename yet -> the new files are the temps it lists;
//   3. some renames done                          -> each new file is under its temp or final name;
//   4. all renames done (or a later save began)   -> final names (or state.json changed again).
// So for each file the reader opens the temp the manifest lists, else the final name, and checks
// what it opened against the manifest (size, checkpoint id, hash). Once open, a file cannot change
// under us: saves only ever write fresh temp files and rename them. If the check fails and
// state.json has changed meanwhile, a newer save overtook the reader: it starts again with the new
// manifest. If state.json has not changed, the folder really is inconsistent and that is reported.
import { closeSync, fstatSync, openSync, readSync, statSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { SafetensorsReader, readTensorsFrom, type TensorData } from '../io/safetensors.js';
import { describeFsError, errnoCode, FsError } from '../io/fserror.js';
import { configSchema } from '../config/schema.js';
import {
  CheckpointError, CONFIG_FILE, MODEL_FILE, OPTIMIZER_FILE, STATE_FILE, fail, isObj, parseManifest, readManifest, readStateText,
  type CheckpointManifest,
} from './checkpoint_manifest.js';
import { compareTensorShapes, diffModelConfigs, type ShapeMap } from './checkpoint_compare.js';

export interface LoadCheckpointOptions {
  /** The run's config: its model section must match the checkpoint's (architecture fields). */
  expectConfig?: { model: object };
  /** Expected model tensors (e.g. scaling/count.ts modelTensorShapes(config.model)). */
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
  /** How many times a save overtook this load and it started again (0 when no save ran). */
  retries: number;
}

const MIXED = 'the checkpoint is truncated, corrupt, or mixes files from different saves';
const MAX_ATTEMPTS = 25;

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/** The committed content of `file`: the manifest's pending temp if it is still there, else the final name. */
function openCommitted(dir: string, m: CheckpointManifest, file: string): number {
  const names = [m.pending?.find((p) => p.to === file)?.from, file].filter((n): n is string => !!n);
  for (const name of names) {
    try {
      return openSync(join(dir, name), 'r');
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') fail(dir, describeFsError(e, 'open', join(dir, name)).message);
    }
  }
  fail(dir, `${file} is missing (${STATE_FILE} lists it): ${MIXED}`);
}

function checkSize(dir: string, file: string, fd: number, bytes: number): void {
  const st = fstatSync(fd);
  if (!st.isFile()) fail(dir, `${file} is not a regular file (a folder is in its place?): remove it; ${MIXED}`);
  if (st.size !== bytes) fail(dir, `${file} has ${st.size} bytes but ${STATE_FILE} records ${bytes}: ${MIXED}`);
}

function readWhole(dir: string, file: string, fd: number, bytes: number): Buffer {
  const buf = Buffer.alloc(bytes);
  for (let off = 0; off < bytes;) {
    let n: number;
    try {
      n = readSync(fd, buf, off, bytes - off, off);
    } catch (e) {
      fail(dir, describeFsError(e, 'read', join(dir, file)).message);
    }
    if (n <= 0) fail(dir, `${file} ended after ${off} of ${bytes} bytes: ${MIXED}`);
    off += n;
  }
  return buf;
}

function readTensors(dir: string, file: string, fd: number, m: CheckpointManifest, expected: ShapeMap | undefined, verify: boolean): Map<string, TensorData> {
  const rec = m.files[file];
  let r: SafetensorsReader | undefined;
  try {
    r = new SafetensorsReader(join(dir, file), fd); // owns fd from here (closes it even if it throws)
    const id = r.metadata.checkpoint_id;
    if (id !== undefined && id !== m.id) fail(dir, `${file} belongs to another save (checkpoint id ${id}, ${STATE_FILE} has ${m.id}): ${MIXED}`);
    if (expected) {
      const problems = compareTensorShapes(r.header.tensors, expected);
      if (problems.length) fail(dir, `${file} does not match the model being loaded:`, problems);
    }
    const got = readTensorsFrom(r, { hash: verify && !!rec.sha256 });
    if (got.sha256 && got.sha256 !== rec.sha256) fail(dir, `${file} content does not match its SHA-256 in ${STATE_FILE}: ${MIXED}`);
    return got.tensors;
  } catch (e) {
    if (!(e instanceof CheckpointError)) fail(dir, `${file} is unreadable: ${describeFsError(e, 'read', join(dir, file)).message}`);
    throw e;
  } finally {
    r?.close();
  }
}

interface Wanted {
  model: boolean;
  optimizer: boolean;
}

/** One attempt against one manifest; throws CheckpointError when the files do not agree with it. */
function loadAgainst(dir: string, m: CheckpointManifest, want: Wanted, opts: LoadCheckpointOptions): Omit<LoadedCheckpoint, 'retries'> {
  const verify = opts.verifyHash !== false;
  const files = [CONFIG_FILE, ...(want.model ? [MODEL_FILE] : []), ...(want.optimizer ? [OPTIMIZER_FILE] : [])];
  const fds = new Map<string, number>();
  try {
    // open everything first (the window in which a save can overtake us is this loop), then check
    for (const f of files) fds.set(f, openCommitted(dir, m, f));
    for (const f of files) checkSize(dir, f, fds.get(f)!, m.files[f].bytes);

    const crec = m.files[CONFIG_FILE];
    const configBytes = readWhole(dir, CONFIG_FILE, fds.get(CONFIG_FILE)!, crec.bytes);
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
      const diffs = diffModelConfigs(parsed.success ? parsed.data.model : config.model, opts.expectConfig.model);
      if (diffs.length) fail(dir, 'was saved from a different architecture:', diffs);
    }
    const take = (f: string): number => {
      const fd = fds.get(f)!;
      fds.delete(f);
      return fd;
    };
    const model = want.model ? readTensors(dir, MODEL_FILE, take(MODEL_FILE), m, opts.expectModelShapes, verify) : new Map<string, TensorData>();
    const optimizer = want.optimizer ? readTensors(dir, OPTIMIZER_FILE, take(OPTIMIZER_FILE), m, opts.expectOptimizerShapes, verify) : null;
    return { dir, model, optimizer, config, state: m.state, manifest: m };
  } finally {
    for (const fd of fds.values()) closeSync(fd);
  }
}

function checkDir(dir: string): void {
  let st;
  try {
    st = statSync(dir);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new CheckpointError(`checkpoint directory not found: ${dir}`, dir);
    throw new CheckpointError(describeFsError(e, 'open checkpoint directory', dir).message, dir);
  }
  if (!st.isDirectory()) throw new CheckpointError(`checkpoint path is not a directory: ${dir}`, dir);
}

/** Load against the committed manifest, starting again whenever a save overtakes the reader. */
function loadCommitted(dir: string, want: Wanted, opts: LoadCheckpointOptions): LoadedCheckpoint {
  checkDir(dir);
  let { manifest, text } = readManifest(dir, (f) => existsSync(join(dir, f)));
  for (let attempt = 0; ; attempt++) {
    try {
      return { ...loadAgainst(dir, manifest, want, opts), retries: attempt };
    } catch (e) {
      if (!(e instanceof CheckpointError || e instanceof FsError)) throw e;
      const now = readStateText(dir);
      if (now === undefined || now === text) throw e; // nothing moved: the folder itself is inconsistent
      if (attempt + 1 >= MAX_ATTEMPTS) {
        throw new CheckpointError(`${(e as Error).message}\n  (the run was saved ${attempt + 1} times while this load tried to read it; try again)`, dir);
      }
      text = now;
      manifest = parseManifest(dir, now);
      Atomics.wait(sleepCell, 0, 0, Math.min(50, 2 * attempt));
    }
  }
}

/**
 * Load and verify the last committed checkpoint in `dir`. Never writes to the folder, so it is
 * safe while a trainer saves there (see the note at the top of this file).
 */
export function loadCheckpoint(dir: string, opts: LoadCheckpointOptions = {}): LoadedCheckpoint {
  return loadCommitted(dir, { model: true, optimizer: opts.loadOptimizer !== false }, opts);
}

/** The committed checkpoint's config.json and manifest, read-only, without reading tensors. */
export function readCheckpointConfig(dir: string, opts: Pick<LoadCheckpointOptions, 'verifyHash'> = {}): { config: Record<string, unknown>; manifest: CheckpointManifest } {
  const ck = loadCommitted(dir, { model: false, optimizer: false }, opts);
  return { config: ck.config, manifest: ck.manifest };
}

/** True when `dir` holds a committed checkpoint (state.json present and well-formed). Read-only. */
export function isCheckpoint(dir: string): boolean {
  try {
    const text = readStateText(dir);
    return text !== undefined && !!parseManifest(dir, text);
  } catch {
    return false;
  }
}
