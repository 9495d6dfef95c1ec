// The checkpoint manifest (state.json): its format, its validation, and the names a save may use.
// Pure and read-only: shared by the writer (checkpoint.ts) and the readers (checkpoint_load.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeFsError, errnoCode } from '../io/fserror.js';

export const CHECKPOINT_FORMAT = 'moelab-checkpoint';
export const CHECKPOINT_VERSION = 1;
export const MODEL_FILE = 'model.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const CONFIG_FILE = 'config.json';
export const STATE_FILE = 'state.json';
/** Marks a folder as a moelab run from the moment training claims it (see rundir.ts). */
export const RUN_MARKER = '.moelab-run';
/** The files a save replaces through pending renames (state.json is replaced atomically). */
export const DATA_FILES = [MODEL_FILE, OPTIMIZER_FILE, CONFIG_FILE] as const;
export const CHECKPOINT_FILES = [...DATA_FILES, STATE_FILE] as const;

export interface FileRecord {
  bytes: number;
  sha256?: string;
}

export interface PendingRename {
  /** A temp name of ours: `<to>.tmp-<pid>-<hex>`. */
  from: string;
  /** One of DATA_FILES. */
  to: string;
}

export interface CheckpointManifest {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  id: string;
  savedAt: string;
  files: Record<string, FileRecord>;
  /**
   * The temp files this save wrote, and the names they are renamed to after the commit. Until
   * a rename has happened the data lives under `from`; readers look there first.
   */
  pending?: PendingRename[];
  state: Record<string, unknown>;
}

export class CheckpointError extends Error {
  constructor(message: string, readonly dir?: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

export function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function show(v: unknown): string {
  return v === undefined ? '(absent)' : typeof v === 'string' ? `'${v}'` : JSON.stringify(v);
}

export function fail(dir: string, msg: string, details: string[] = []): never {
  throw new CheckpointError(`checkpoint ${dir}: ${msg}${details.length ? '\n' + details.map((d) => `  ${d}`).join('\n') : ''}`, dir);
}

/** True when `name` is a temp name of ours for `final` (as written by io/atomic.ts tempPathFor). */
export function isTempNameOf(name: string, final: string): boolean {
  return name.startsWith(final) && /^\.tmp-\d+-[0-9a-f]+$/.test(name.slice(final.length));
}

/** True for a temp file a checkpoint save leaves behind when it is cut short. */
export function isCheckpointTemp(name: string): boolean {
  return CHECKPOINT_FILES.some((f) => isTempNameOf(name, f));
}

/** The bytes of state.json (undefined when it does not exist); other failures are explained. */
export function readStateText(dir: string): string | undefined {
  try {
    return readFileSync(join(dir, STATE_FILE), 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    fail(dir, describeFsError(e, 'read', STATE_FILE).message);
  }
}

/**
 * Validate state.json's text. Pending renames must be exactly our temp names for our data files,
 * each file at most once: a crafted entry could otherwise make the writer's roll-forward move any
 * file of the run folder over another.
 */
export function parseManifest(dir: string, text: string): CheckpointManifest {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch (e) {
    fail(dir, `${STATE_FILE} is not valid JSON (${(e as Error).message}); the checkpoint is corrupt`);
  }
  if (!isObj(m) || m.format !== CHECKPOINT_FORMAT) fail(dir, `${STATE_FILE} is not a moelab checkpoint manifest`);
  if (m.version !== CHECKPOINT_VERSION) fail(dir, `checkpoint format version ${show(m.version)} is not supported (this moelab reads version ${CHECKPOINT_VERSION})`);
  if (typeof m.id !== 'string' || !isObj(m.files) || !isObj(m.state)) fail(dir, `${STATE_FILE} is missing id, files or state`);
  for (const f of DATA_FILES) {
    const r = (m.files as Record<string, unknown>)[f];
    if (!isObj(r) || !Number.isSafeInteger(r.bytes) || (r.bytes as number) < 0 || (r.sha256 !== undefined && typeof r.sha256 !== 'string')) {
      fail(dir, `${STATE_FILE} has no valid record for ${f}`);
    }
  }
  if (m.pending !== undefined) {
    if (!Array.isArray(m.pending)) fail(dir, `${STATE_FILE}: "pending" is not a list; the checkpoint is corrupt or was not written by moelab`);
    const seen = new Set<string>();
    for (const p of m.pending as unknown[]) {
      const from = isObj(p) ? p.from : undefined, to = isObj(p) ? p.to : undefined;
      const ok = typeof from === 'string' && typeof to === 'string' && (DATA_FILES as readonly string[]).includes(to) && isTempNameOf(from, to) && !seen.has(to);
      if (!ok) {
        fail(dir, `${STATE_FILE} lists an invalid pending rename ${show(from)} -> ${show(to)} (only moelab's own temp files of ` +
          `${DATA_FILES.join(', ')} may be listed, each once): the checkpoint is corrupt or was not written by moelab; nothing was changed`);
      }
      seen.add(to);
    }
  }
  return m as unknown as CheckpointManifest;
}

/** Read and validate state.json; a missing one is explained by what else is in the folder. */
export function readManifest(dir: string, present: (f: string) => boolean): { manifest: CheckpointManifest; text: string } {
  const text = readStateText(dir);
  if (text === undefined) {
    if (present(RUN_MARKER)) fail(dir, `no checkpoint yet: this moelab run has not saved one (${STATE_FILE} is missing); if it is training, wait for its first save`);
    const found = DATA_FILES.filter(present);
    fail(dir, `incomplete checkpoint: ${STATE_FILE} is missing (${found.length ? `found only ${found.join(', ')}; the save was interrupted` : 'this is not a checkpoint directory'})`);
  }
  return { manifest: parseManifest(dir, text), text };
}
