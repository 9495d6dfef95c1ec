// The token cache: one safetensors file per (tokenizer, text encoding option, exact content of
// the ordered source files), under `<cwd>/.cache/moelab/` by default.
//
// Key. The SHA-256 of every source file's bytes (10.8 MB of text hashes in about 9 ms, less than
// reading it), so an entry is never returned for different content, whatever the files' sizes,
// mtimes or names; the file paths are not part of the key (a moved corpus keeps its cache). The
// entry repeats its full key description and a SHA-256 of its tokens, both checked on read: a
// damaged, truncated or foreign file is a miss and is rebuilt.
//
// Concurrency. Entries are written to a temp file and renamed into place (io/atomic), so two
// processes tokenising the same corpus at once each write a complete file and the last rename
// wins; a reader sees a whole entry or none.
//
// Eviction. A hit sets the entry's mtime to now, so mtime orders entries by last use. After each
// write, the least recently used entries are deleted until the folder's entries total at most
// `maxBytes` (default 1 GiB; the entry just written is always kept). Temp files older than an hour
// (left by a killed process) are deleted too.
import { mkdirSync, readdirSync, statSync, utimesSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { removeQuietly } from '../io/atomic.js';

export const DEFAULT_CACHE_MAX_BYTES = 1 << 30;
/** Bumped whenever the tokens for the same key could change (tokenizer wrapper, text decoding). */
export const TOKEN_CACHE_VERSION = 2;

const ENTRY = /^corpus-.*\.safetensors$/;
const TEMP = /^corpus-.*\.safetensors\.tmp-\d+-[0-9a-f]+$/;
const STALE_TEMP_MS = 3_600_000;

export interface CacheEntry {
  tokens: Uint16Array;
  /** UTF-8 bytes of the tokenised text. */
  bytes: number;
  /** Notices produced when the entry was built (e.g. a file read as Latin-1). */
  notices: string[];
}

export function defaultCacheDir(): string {
  return join(process.cwd(), '.cache', 'moelab');
}

/** The key description (stored in the entry) and the entry's path. */
export function cacheEntryFor(cacheDir: string, tokenizer: string, encoding: string, fileHashes: string[]): { path: string; desc: string } {
  const desc = JSON.stringify({ v: TOKEN_CACHE_VERSION, tokenizer, encoding, sha256: fileHashes });
  const key = createHash('sha256').update(desc).digest('hex');
  return { path: join(resolve(cacheDir), `corpus-${tokenizer}-${key.slice(0, 32)}.safetensors`), desc };
}

const sha256 = (a: Uint16Array): string => createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');

/** The entry at `path` if it is whole and made for `desc`; null otherwise. A hit marks it used. */
export function readCacheEntry(path: string, desc: string): CacheEntry | null {
  let entry: CacheEntry;
  try {
    const r = readSafetensors(path);
    const t = r.tensors.get('tokens');
    const m = r.metadata;
    if (!t || !(t.data instanceof Uint16Array) || m.key !== desc || m.tokensSha256 !== sha256(t.data)) return null;
    const bytes = Number(m.bytes);
    const notices: unknown = JSON.parse(m.notices ?? '[]');
    if (!Number.isSafeInteger(bytes) || !Array.isArray(notices) || !notices.every((n) => typeof n === 'string')) return null;
    entry = { tokens: t.data, bytes, notices };
  } catch {
    return null; // missing or damaged: rebuild
  }
  try {
    const now = new Date();
    utimesSync(path, now, now); // last use, for eviction
  } catch {
    /* evicted by another process meanwhile, or read-only: still a valid hit */
  }
  return entry;
}

/** Write an entry atomically, then evict down to maxBytes. Returns false if it could not be written. */
export function writeCacheEntry(path: string, desc: string, e: CacheEntry & { tokenizer: string; files: number }, maxBytes = DEFAULT_CACHE_MAX_BYTES): boolean {
  const dir = resolve(path, '..');
  try {
    mkdirSync(dir, { recursive: true });
    writeSafetensors(path, new Map([['tokens', { dtype: 'U16' as const, shape: [e.tokens.length], data: e.tokens }]]), {
      key: desc,
      bytes: String(e.bytes),
      tokensSha256: sha256(e.tokens),
      notices: JSON.stringify(e.notices),
      tokenizer: e.tokenizer,
      files: String(e.files),
    });
  } catch {
    return false; // an unwritable cache only costs time next run
  }
  evictCache(dir, maxBytes, path);
  return true;
}

/**
 * Delete least recently used entries of `dir` until they total at most `maxBytes` (never `keep`),
 * and temp files older than an hour. Returns the deleted paths. Races with other processes are
 * harmless: a file deleted twice or read while deleted is a miss.
 */
export function evictCache(dir: string, maxBytes = DEFAULT_CACHE_MAX_BYTES, keep?: string): string[] {
  if (!(maxBytes >= 0)) throw new RangeError(`cache size limit must be a number >= 0, got ${maxBytes}`);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  const entries: { path: string; size: number; used: number }[] = [];
  const now = Date.now();
  for (const n of names) {
    const p = join(dir, n);
    let st;
    try {
      st = statSync(p);
    } catch {
      continue;
    }
    if (TEMP.test(n)) {
      if (now - st.mtimeMs > STALE_TEMP_MS) {
        removeQuietly(p);
        removed.push(p);
      }
    } else if (ENTRY.test(n) && st.isFile()) entries.push({ path: p, size: st.size, used: st.mtimeMs });
  }
  entries.sort((a, b) => b.used - a.used); // most recent first
  let total = entries.reduce((s, e) => s + e.size, 0);
  for (let i = entries.length - 1; i >= 0 && total > maxBytes; i--) {
    const e = entries[i];
    if (keep !== undefined && resolve(e.path) === resolve(keep)) continue;
    removeQuietly(e.path);
    removed.push(e.path);
    total -= e.size;
  }
  return removed;
}
