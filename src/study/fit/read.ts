/**
 * Points from outside: a CSV file (`moelab fit --points`) or a sweep's results.json (`--sweep`).
 *
 * CSV: a header line naming the columns, then one run per line. Required: params, tokens, loss.
 * Optional: sparsity (default 0), active_params, flops, family. Other columns are ignored, blank
 * lines and lines starting with '#' are skipped; fields are plain numbers (1e9 and 1000000000 both
 * work), no quoting.
 *
 * Sweep results (`<DIR>/results.json`, written by `moelab sweep`): a JSON array of objects, one per
 * point, read by pointFromSweepEntry: params_total (or params), params_active, tokens, sparsity,
 * flops, val_loss (or loss), family. Entries without a finite loss (failed or unfinished points)
 * are skipped and counted.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkPoint, type Point } from './points.js';

const REQUIRED = ['params', 'tokens', 'loss'] as const;
const NUMERIC_OPTIONAL = { sparsity: 'sparsity', active_params: 'activeParams', flops: 'flops' } as const;

export function parsePointsCsv(text: string, source = 'points.csv'): Point[] {
  // A spreadsheet's UTF-8 byte-order mark would otherwise glue itself to the first column name.
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const headerAt = lines.findIndex((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  if (headerAt < 0) throw new Error(`${source}: empty file; expected a header line with columns ${REQUIRED.join(', ')}`);
  const header = lines[headerAt].split(',').map((h) => h.trim().toLowerCase());
  const col = (name: string) => header.indexOf(name);
  for (const name of REQUIRED) {
    if (col(name) < 0) throw new Error(`${source} line ${headerAt + 1}: missing column '${name}' (header has: ${header.join(', ')}); required: ${REQUIRED.join(', ')}`);
  }
  const dup = header.find((h, i) => h !== '' && header.indexOf(h) !== i);
  if (dup) throw new Error(`${source} line ${headerAt + 1}: column '${dup}' appears twice`);
  const points: Point[] = [];
  for (let i = headerAt + 1; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const where = `${source} line ${i + 1}`;
    const cells = line.split(',').map((c) => c.trim());
    if (cells.length !== header.length) throw new Error(`${where}: ${cells.length} fields, but the header has ${header.length}`);
    const num = (name: string): number | undefined => {
      const j = col(name);
      if (j < 0 || cells[j] === '') return undefined;
      const v = Number(cells[j]);
      if (!Number.isFinite(v)) throw new Error(`${where}, column '${name}': '${cells[j]}' is not a number`);
      return v;
    };
    const p: Point = { params: NaN, tokens: NaN, loss: NaN, sparsity: num('sparsity') ?? 0 };
    for (const name of REQUIRED) {
      const v = num(name);
      if (v === undefined) throw new Error(`${where}, column '${name}': empty; every run needs ${REQUIRED.join(', ')}`);
      p[name] = v;
    }
    for (const [csvName, field] of Object.entries(NUMERIC_OPTIONAL)) {
      const v = num(csvName);
      if (v !== undefined && field !== 'sparsity') p[field] = v;
    }
    if (col('family') >= 0 && cells[col('family')] !== '') p.family = cells[col('family')];
    checkPoint(p, where);
    points.push(p);
  }
  if (points.length === 0) throw new Error(`${source}: a header but no data lines`);
  return points;
}

/** One results.json entry as a point, or null when it has no final loss. The lead may adapt the field names here. */
export function pointFromSweepEntry(e: Record<string, unknown>): Point | null {
  const num = (...names: string[]): number | undefined => {
    for (const n of names) if (typeof e[n] === 'number') return e[n] as number;
    return undefined;
  };
  const loss = num('val_loss', 'loss', 'valLoss');
  if (loss === undefined || !Number.isFinite(loss)) return null;
  const params = num('params_total', 'params', 'paramsTotal');
  const tokens = num('tokens');
  if (params === undefined || tokens === undefined) return null;
  const p: Point = { params, tokens, loss, sparsity: num('sparsity') ?? 0 };
  const active = num('params_active', 'active_params', 'paramsActive'), flops = num('flops', 'trainingFlops');
  if (active !== undefined) p.activeParams = active;
  if (flops !== undefined) p.flops = flops;
  if (typeof e.family === 'string') p.family = e.family;
  return p;
}

export function pointsFromSweepResults(json: unknown, source = 'results.json'): { points: Point[]; skipped: number } {
  // `moelab sweep` writes { dir, collectedAt, results: [...], missing }; a bare array is accepted too
  if (json && typeof json === 'object' && !Array.isArray(json) && Array.isArray((json as { results?: unknown }).results)) json = (json as { results: unknown[] }).results;
  if (!Array.isArray(json)) throw new Error(`${source}: expected a JSON array of sweep points (or moelab sweep's {"results": [...]})`);
  const points: Point[] = [];
  let skipped = 0;
  json.forEach((e, i) => {
    if (typeof e !== 'object' || e === null) throw new Error(`${source}: entry ${i} is not an object`);
    const p = pointFromSweepEntry(e as Record<string, unknown>);
    if (!p) { skipped++; return; }
    checkPoint(p, `${source} entry ${i}`);
    points.push(p);
  });
  return { points, skipped };
}

/** Points from a CSV file. */
export function readPointsFile(path: string): Point[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read points file ${path}: ${(e as Error).message}`);
  }
  return parsePointsCsv(text, path);
}

/** Points from `<dir>/results.json` of a sweep. */
export function readSweepDir(dir: string): { points: Point[]; skipped: number } {
  const file = join(dir, 'results.json');
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read sweep results ${file}: ${(e as Error).message} (run \`moelab sweep\` first, or pass --points FILE.csv)`);
  }
  return pointsFromSweepResults(json, file);
}
