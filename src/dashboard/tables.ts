// Evaluation results (<run>/eval/*.json) and sweep results (<sweep>/results.json), read as plain
// JSON and handed to the page, which shows any array of records as a table. The writers of those
// files are free to evolve: a file that cannot be read or parsed is listed with its error.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface ResultFile { owner: string; file: string; data?: unknown; error?: string }

const MAX_BYTES = 4 << 20;
const MAX_FILES = 50;

export function readResultFile(owner: string, path: string, file: string): ResultFile {
  try {
    const size = statSync(path).size;
    if (size > MAX_BYTES) return { owner, file, error: `${size} bytes: larger than the ${MAX_BYTES >> 20} MiB the dashboard reads` };
    return { owner, file, data: JSON.parse(readFileSync(path, 'utf8')) };
  } catch (e) {
    return { owner, file, error: e instanceof SyntaxError ? `not valid JSON: ${e.message}` : `cannot read: ${(e as Error).message}` };
  }
}

/** The JSON files of `<runDir>/eval/` (at most MAX_FILES, sorted by name). */
export function runEvalFiles(id: string, runDir: string): ResultFile[] {
  let names: string[];
  try {
    names = readdirSync(join(runDir, 'eval'), { withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.json')).map((e) => e.name);
  } catch {
    return [];
  }
  return names.sort().slice(0, MAX_FILES).map((n) => readResultFile(id, join(runDir, 'eval', n), `eval/${n}`));
}
