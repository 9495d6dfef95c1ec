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
// intact; a crash after it leaves the new one readable through the temp names (readers look there,
// checkpoint_load.ts), and the next writer completes the renames (recoverCheckpoint). So a kill -9
// at any instant leaves a complete checkpoint. Only the writer, holding the run's lock
// (io/lock.ts), ever renames or removes files here; readers never write.
import { readdirSync, renameSync, existsSync, lstatSync } from 'node:fs';
import { createHash, randomUUID } from 'node:crypto';
import { basename, join } from 'node:path';
import { fsyncDir, makeDir, removeQuietly, writeTemp } from '../io/atomic.js';
import { safetensorsWriter, type TensorLike } from '../io/safetensors.js';
import { describeFsError, errnoCode } from '../io/fserror.js';
import type { RunLock } from '../io/lock.js';
import {
  CHECKPOINT_FORMAT, CHECKPOINT_VERSION, CONFIG_FILE, MODEL_FILE, OPTIMIZER_FILE, STATE_FILE,
  isCheckpointTemp, readManifest, type CheckpointManifest, type FileRecord,
} from './checkpoint_manifest.js';

export * from './checkpoint_manifest.js';
export * from './checkpoint_compare.js';
export * from './checkpoint_load.js';

export type TensorMap = Map<string, TensorLike> | Record<string, TensorLike>;

export interface CheckpointInput {
  model: TensorMap;
  optimizer: TensorMap;
  /** The run config (JSON-serialisable). */
  config: object;
  /** Step, RNG states, sampler state, ... (JSON-serialisable). */
  state: object;
}

export interface SaveOptions {
  /** Record SHA-256 digests of the tensor files (computed while writing; default true). */
  hash?: boolean;
  /** The run's lock: the save refuses to write when it is no longer held (someone broke it). */
  lock?: RunLock;
}

export interface Recovery {
  /** Temp files of a committed save that were renamed into place. */
  completed: string[];
  /** Temp files of saves that never committed (or of the lock) that were removed. */
  removed: string[];
}

/**
 * Writer only, with the run's lock held: finish a committed save that was cut short (rename the
 * temps its manifest lists) and remove temp files no committed save refers to. A state.json with
 * invalid pending entries is refused (CheckpointError) and nothing is touched.
 */
export function recoverCheckpoint(dir: string): Recovery {
  const done: Recovery = { completed: [], removed: [] };
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return done;
    throw describeFsError(e, 'read run folder', dir);
  }
  try {
    if (names.includes(STATE_FILE)) {
      const { manifest } = readManifest(dir, () => false);
      for (const { from, to } of manifest.pending ?? []) {
        if (!names.includes(from)) continue;
        renameSync(join(dir, from), join(dir, to)); // (never removes the temp on failure: it is committed data)
        done.completed.push(from);
      }
      if (done.completed.length) fsyncDir(dir);
    }
    for (const f of readdirSync(dir)) {
      if (!isCheckpointTemp(f)) continue;
      removeQuietly(join(dir, f));
      done.removed.push(f);
    }
  } catch (e) {
    throw describeFsError(e, 'finish the last checkpoint in', dir, 'the committed checkpoint is still readable');
  }
  return done;
}

function assertNotFolder(path: string): void {
  let isDir = false;
  try {
    isDir = lstatSync(path).isDirectory();
  } catch {
    /* absent: fine */
  }
  if (isDir) throw Object.assign(new Error(`EISDIR: ${path} is a directory`), { code: 'EISDIR', path });
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Write a checkpoint into `dir` (created if needed; an existing checkpoint there is replaced).
 * Call it only as the run's writer (holding its lock); pass the lock to have it checked.
 */
export function saveCheckpoint(dir: string, input: CheckpointInput, opts: SaveOptions = {}): CheckpointManifest {
  const hash = opts.hash !== false;
  const hadCheckpoint = existsSync(join(dir, STATE_FILE));
  const before = hadCheckpoint ? 'the previous checkpoint is intact' : 'no checkpoint was written';
  try {
    makeDir(dir);
  } catch (e) {
    throw describeFsError(e, 'create checkpoint folder', dir, before);
  }
  opts.lock?.assertHeld();
  recoverCheckpoint(dir);
  // Two-phase commit, so that a kill at any instant leaves a complete checkpoint:
  //  1. write the new files beside the old ones under temp names and fsync them (a crash here
  //     leaves the old checkpoint untouched; the temps are swept by the next writer);
  //  2. atomically replace state.json with a manifest that lists the pending renames: this is the
  //     commit point;
  //  3. rename the temps into place. Until then readers read the temps the manifest lists; a
  //     crash during 3 is finished by the next writer (recoverCheckpoint).
  const id = randomUUID();
  const files: Record<string, FileRecord> = {};
  const meta = { format: 'pt', checkpoint_id: id };
  const temps: [string, string][] = [];
  let manifest: CheckpointManifest;
  try {
    const model = writeTemp(join(dir, MODEL_FILE), safetensorsWriter(join(dir, MODEL_FILE), input.model, { ...meta, kind: 'model' }, { hash }));
    temps.push([model.tmp, MODEL_FILE]);
    files[MODEL_FILE] = model.result!;
    const opt = writeTemp(join(dir, OPTIMIZER_FILE), safetensorsWriter(join(dir, OPTIMIZER_FILE), input.optimizer, { ...meta, kind: 'optimizer' }, { hash }));
    temps.push([opt.tmp, OPTIMIZER_FILE]);
    files[OPTIMIZER_FILE] = opt.result!;
    // config.json carries no id, so its hash is always recorded: it is what tells a reader which save it came from
    const configText = Buffer.from(JSON.stringify(input.config, null, 2) + '\n', 'utf8');
    temps.push([writeTemp(join(dir, CONFIG_FILE), configText).tmp, CONFIG_FILE]);
    files[CONFIG_FILE] = { bytes: configText.byteLength, sha256: sha256(configText) };
    fsyncDir(dir);
    for (const [, name] of temps) assertNotFolder(join(dir, name)); // the renames after the commit would fail
    manifest = {
      format: CHECKPOINT_FORMAT,
      version: CHECKPOINT_VERSION,
      id,
      savedAt: new Date().toISOString(),
      files,
      pending: temps.map(([tmp, name]) => ({ from: basename(tmp), to: name })),
      state: JSON.parse(JSON.stringify(input.state)) as Record<string, unknown>,
    };
    const state = writeTemp(join(dir, STATE_FILE), JSON.stringify(manifest, null, 2) + '\n');
    temps.push([state.tmp, STATE_FILE]);
    opts.lock?.assertHeld();
    renameSync(state.tmp, join(dir, STATE_FILE)); // the commit point
  } catch (e) {
    for (const [tmp] of temps) removeQuietly(tmp);
    throw describeFsError(e, 'write checkpoint to', dir, before);
  }
  // from here on the temps are committed data: a failure must never remove them
  try {
    fsyncDir(dir);
    for (const { from, to } of manifest.pending!) renameSync(join(dir, from), join(dir, to));
    fsyncDir(dir);
  } catch (e) {
    throw describeFsError(e, 'finish checkpoint in', dir, 'the new checkpoint is committed and readable; the next save or resume completes it');
  }
  return manifest;
}
