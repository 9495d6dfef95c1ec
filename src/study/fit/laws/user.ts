/**
 * A law from a JSON file (`moelab fit --law my-law.json`): a sum of power-law terms,
 *   L = sum_k coef_k / prod_v v^(exponent_{k,v}),   v in N, D, C, 1-S,
 * which is the shape of every built-in law and so fits the same way (log L = LSE of linear terms).
 *
 *   {
 *     "name": "chinchilla-again",
 *     "formula": "L = E + A/N^alpha + B/D^beta",
 *     "params": {
 *       "E": { "positive": true, "grid": [0.4, 1, 2.7] },   (positive: a coefficient; grid in its own units)
 *       "A": { "positive": true, "grid": [1, 150, 22000] },
 *       "B": { "positive": true, "grid": [1, 150, 22000] },
 *       "alpha": { "grid": [0, 0.5, 1] },                    (not positive: an exponent, any real)
 *       "beta": { "grid": [0, 0.5, 1] }
 *     },
 *     "terms": [ { "coef": "E" }, { "coef": "A", "divide": { "N": "alpha" } }, { "coef": "B", "divide": { "D": "beta" } } ]
 *   }
 */
import { readFileSync } from 'node:fs';
import { defineLaw, type Law } from '../law.js';
import type { Feature } from '../points.js';

const VARIABLES: Record<string, Feature> = { N: 'logN', D: 'logD', C: 'logC', '1-S': 'log1mS' };
const MAX_GRID = 100_000;

export function lawFromJson(json: unknown, source = 'law file'): Law {
  const fail = (why: string): never => { throw new Error(`${source}: ${why}`); };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('expected a JSON object with name, params and terms');
  const o = json as Record<string, unknown>;
  if (typeof o.name !== 'string' || !/^[\w.-]+$/.test(o.name)) fail(`"name" must be a word (letters, digits, . _ -), got ${JSON.stringify(o.name)}`);
  if (typeof o.params !== 'object' || o.params === null || Array.isArray(o.params)) fail('"params" must be an object: name -> { positive?, grid }');
  const params = o.params as Record<string, unknown>;
  const internal: Record<string, number[]> = {};
  const positive = new Set<string>();
  let gridSize = 1;
  for (const [name, spec] of Object.entries(params)) {
    const s = spec as Record<string, unknown>;
    if (typeof s !== 'object' || s === null) fail(`param ${name}: expected { positive?, grid }`);
    const grid = s.grid;
    if (!Array.isArray(grid) || grid.length === 0 || !grid.every((v) => typeof v === 'number' && Number.isFinite(v))) fail(`param ${name}: "grid" must be a non-empty array of numbers (starting values)`);
    const g = grid as number[];
    if (s.positive === true) {
      if (!g.every((v) => v > 0)) fail(`param ${name} is positive, so its grid values must be > 0`);
      positive.add(name);
      internal[name] = g.map(Math.log);
    } else internal[name] = g;
    gridSize *= g.length;
  }
  if (Object.keys(internal).length === 0) fail('no params');
  if (gridSize > MAX_GRID) fail(`the start grid has ${gridSize} points (product of grid lengths); keep it under ${MAX_GRID}`);
  if (!Array.isArray(o.terms) || o.terms.length === 0) fail('"terms" must be a non-empty array of { coef, divide? }');
  const used = new Set<string>();
  const terms = (o.terms as unknown[]).map((t, k) => {
    const term = t as Record<string, unknown>;
    if (typeof term !== 'object' || term === null) fail(`term ${k}: expected { coef, divide? }`);
    const coef = term.coef;
    if (typeof coef !== 'string' || !positive.has(coef)) fail(`term ${k}: "coef" must name a positive param, got ${JSON.stringify(coef)}`);
    used.add(coef as string);
    const parts: Array<[string, Feature, number]> = [[coef as string, 'one', 1]];
    const divide = (term.divide ?? {}) as Record<string, unknown>;
    if (typeof divide !== 'object' || divide === null || Array.isArray(divide)) fail(`term ${k}: "divide" must map variables to exponent params`);
    for (const [v, exponent] of Object.entries(divide)) {
      if (!(v in VARIABLES)) fail(`term ${k}: unknown variable '${v}'; use ${Object.keys(VARIABLES).join(', ')}`);
      if (typeof exponent !== 'string' || !(exponent in internal) || positive.has(exponent)) fail(`term ${k}: the exponent of ${v} must name a non-positive-flagged param, got ${JSON.stringify(exponent)}`);
      used.add(exponent as string);
      parts.push([exponent as string, VARIABLES[v], -1]);
    }
    return parts;
  });
  const unused = Object.keys(internal).filter((n) => !used.has(n));
  if (unused.length) fail(`params not used by any term: ${unused.join(', ')}`);
  return defineLaw({
    name: o.name as string,
    formula: typeof o.formula === 'string' ? o.formula : `user law ${o.name}`,
    citation: `user law from ${source}`,
    internal,
    params: Object.keys(internal).map((n) => [n, n, positive.has(n)] as [string, string, boolean]),
    terms,
  });
}

export function readLawFile(path: string): Law {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read law file ${path}: ${(e as Error).message}`);
  }
  return lawFromJson(json, path);
}
