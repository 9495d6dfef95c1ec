// How a checkpoint differs from what the caller expects: architecture fields of the model config,
// and the set of tensors with their shapes. Pure functions over plain data.
import { TRAINING_ONLY_MODEL_FIELDS } from '../config/schema.js';
import { isObj, show } from './checkpoint_manifest.js';

export type ShapeMap = Map<string, readonly number[]> | Record<string, readonly number[]>;

/**
 * Architecture differences between two model configs, as `model.path: checkpoint X, expected Y`
 * lines. Training-only knobs (dropout, capacity factors, jitter, loss coefficients, moment dtype)
 * are ignored; when the ffn types differ, only the type is reported.
 */
export function diffModelConfigs(checkpoint: unknown, expected: unknown, ignore: readonly string[] = TRAINING_ONLY_MODEL_FIELDS): string[] {
  const out: string[] = [];
  const walk = (a: unknown, b: unknown, path: string): void => {
    if (ignore.includes(path.replace(/^model\./, ''))) return;
    if (isObj(a) && isObj(b)) {
      if ('type' in a && 'type' in b && a.type !== b.type) {
        out.push(`${path}.type: checkpoint ${show(a.type)}, expected ${show(b.type)}`);
        return;
      }
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) walk(a[k], b[k], `${path}.${k}`);
      return;
    }
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push(`${path}: checkpoint ${show(a)}, expected ${show(b)}`);
  };
  walk(checkpoint, expected, 'model');
  return out;
}

function toShapeMap(m: ShapeMap): Map<string, readonly number[]> {
  return m instanceof Map ? m : new Map(Object.entries(m));
}

/** Missing, unexpected and mis-shaped tensors, or an empty list. */
export function compareTensorShapes(got: Map<string, { shape: readonly number[] }>, expected: ShapeMap): string[] {
  const exp = toShapeMap(expected);
  const missing = [...exp.keys()].filter((n) => !got.has(n));
  const extra = [...got.keys()].filter((n) => !exp.has(n));
  const wrong: string[] = [];
  for (const [n, shape] of exp) {
    const g = got.get(n);
    if (g && (g.shape.length !== shape.length || g.shape.some((s, i) => s !== shape[i]))) wrong.push(`${n} has shape [${g.shape}], expected [${shape}]`);
  }
  const list = (xs: string[]): string => xs.slice(0, 8).join(', ') + (xs.length > 8 ? `, ... (${xs.length} in all)` : '');
  const problems: string[] = [];
  if (missing.length) problems.push(`missing ${missing.length} tensor(s): ${list(missing)}`);
  if (extra.length) problems.push(`unexpected ${extra.length} tensor(s): ${list(extra)}`);
  if (wrong.length) problems.push(`mis-shaped: ${list(wrong)}`);
  return problems;
}
