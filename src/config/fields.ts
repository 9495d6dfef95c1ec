// zod building blocks shared by the config sections (config/schema.ts) and the feed-forward kinds
// (spec/ffn/*.ts), kept apart from both so that neither imports the other.
import { z } from 'zod';

export const posInt = z.number().int().positive();
export const nonNegInt = z.number().int().nonnegative();
export const nonNegNum = z.number().nonnegative().finite();
export const posNum = z.number().positive().finite();
/** 'all' or a list of layer indices. */
export const layerList = z.union([z.literal('all'), z.array(nonNegInt).min(1)]);
export type LayerList = z.infer<typeof layerList>;

/** Reports one problem at a path below the section being checked. */
export type IssueSink = (path: (string | number)[], message: string) => void;

/** A layer list must name existing layers, each once. */
export function checkLayerList(issue: IssueSink, list: LayerList | undefined, nLayers: number, path: (string | number)[]): void {
  if (list === undefined || list === 'all') return;
  const seen = new Set<number>();
  list.forEach((i, j) => {
    if (i >= nLayers) issue([...path, j], `layer index ${i} is out of range: the model has ${nLayers} layers (0..${nLayers - 1})`);
    if (seen.has(i)) issue([...path, j], `layer ${i} is listed twice`);
    seen.add(i);
  });
}

/** Whether layer i is in a layer list ('all' holds every layer). */
export function inLayerList(list: LayerList, i: number): boolean {
  return list === 'all' || list.includes(i);
}

/**
 * Copy `obj` with its keys in the schema's declaration order, dropping undefined values, so that a
 * resolved config serialises the same way every time (and re-parsing it is the identity).
 */
export function inSchemaOrder<T extends object>(obj: T, keys: z.AnyZodObject | readonly string[]): T {
  const order = Array.isArray(keys) ? (keys as readonly string[]) : Object.keys((keys as z.AnyZodObject).shape);
  const src = obj as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of order) if (src[k] !== undefined) out[k] = src[k];
  for (const k of Object.keys(src)) if (!(k in out) && src[k] !== undefined) out[k] = src[k];
  return out as T;
}
