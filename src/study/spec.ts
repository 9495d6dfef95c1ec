// A sweep spec: what a study trains. One base config (a preset name, a config file or an inline
// config object) plus overrides common to every point, then the points are the cartesian product of
//   axes       dotted config path -> list of values (any config field, e.g. "model.d": [64, 128],
//              "model.ffn": [{"type": "dense"}, {"type": "moe", "experts": 8}])
//   generator  one of the two families the papers sweep (study/generators.ts), applied to each
//              combination of the axes: fixed active parameters with growing experts (Artetxe et
//              al. 2021, Fig. 1-style), or fixed total parameters with growing sparsity (Abnar et
//              al. 2025)
//   seeds      train.seed values
//   budgets    training-compute budgets C in FLOPs: train.steps = round(C / (FLOPs/token *
//              tokens/step)) per point, so the points of one budget are isoFLOP
// Validation follows the config's: every problem at once, each naming its field.
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError, formatIssues, readJsonConfig } from '../config/load.js';

const posInt = z.number().int().positive();
const posNum = z.number().positive().finite();
const DOTTED = /^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$/;

const baseSchema = z.union([
  z.string().min(1),
  z.object({ preset: z.string().min(1) }).strict(),
  z.object({ config: z.string().min(1) }).strict(),
  z.object({ inline: z.record(z.unknown()) }).strict(),
]);

const generatorSchema = z.discriminatedUnion('kind', [
  z.object({
    /** Keep topk and expertHidden of the base MoE, vary the number of experts E. */
    kind: z.literal('fixed-active'),
    experts: z.array(posInt).min(1),
  }).strict(),
  z.object({
    /** Keep the routed-expert parameters ~constant, vary S = 1 - k/E (k from the base MoE). */
    kind: z.literal('fixed-total'),
    sparsities: z.array(z.number().min(0).lt(1)).min(1),
    /** Routed-expert parameters of the whole model (default: the base config's). */
    expertParams: posInt.optional(),
  }).strict(),
]);

export const sweepSpecSchema = z
  .object({
    /** Free text, shown in status and reports. */
    description: z.string().optional(),
    /** A preset name, {preset}, {config: file} (relative to the spec's folder) or {inline: config}. */
    base: baseSchema,
    /** Overrides applied to every point (dotted keys or nested objects). */
    set: z.record(z.unknown()).default({}),
    /** Dotted config path -> the values it takes; the points are the cartesian product. */
    axes: z.record(z.string().regex(DOTTED, 'an axis is a dotted config path like "model.d" or "model.ffn.experts"'), z.array(z.unknown()).min(1)).default({}),
    generator: generatorSchema.optional(),
    seeds: z.array(z.number().int().nonnegative()).min(1).optional(),
    /** Training FLOPs per point (FLOPs/token as `moelab count` reports them, times tokens). */
    budgets: z.array(posNum).min(1).optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: z.ZodIssueCode.custom, path, message });
    for (const [key, values] of Object.entries(s.axes)) {
      if (key === 'name' || key.startsWith('derived')) issue(['axes', key], `'${key}' does not change what a run computes: it cannot be an axis`);
      if (s.budgets && key === 'train.steps') issue(['axes', key], 'train.steps follows from budgets: give either budgets or a train.steps axis, not both');
      if (s.seeds && key === 'train.seed') issue(['axes', key], 'give seeds either as `seeds` or as a train.seed axis, not both');
      if (s.generator && (key === 'model.ffn' || key.startsWith('model.ffn.'))) {
        issue(['axes', key], `the ${s.generator.kind} generator sets model.ffn: drop this axis, or drop the generator and list the ffn configs as an axis`);
      }
      const seen = new Set<string>();
      values.forEach((v, i) => {
        const t = JSON.stringify(v);
        if (seen.has(t)) issue(['axes', key, i], `value ${t} is listed twice`);
        seen.add(t);
      });
    }
    if (s.budgets && ('train.steps' in s.set || (isObj(s.set.train) && 'steps' in s.set.train))) {
      issue(['set', 'train.steps'], 'train.steps follows from budgets: remove it from set');
    }
  });

export type SweepSpecInput = z.input<typeof sweepSpecSchema>;
export type SweepGenerator = z.output<typeof generatorSchema>;

export interface SweepSpec extends z.output<typeof sweepSpecSchema> {
  /** Folder that relative paths in the spec (base config file, data paths) are relative to. */
  baseDir: string;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The keys each object of a spec accepts (for unknown-key messages). */
function allowedKeys(path: readonly (string | number)[], raw: unknown): string[] {
  if (path.length === 0) return Object.keys(sweepSpecSchema._def.schema.shape);
  if (path.length === 1 && path[0] === 'generator') {
    const kind = isObj(raw) && isObj(raw.generator) ? raw.generator.kind : undefined;
    return kind === 'fixed-active' ? ['kind', 'experts'] : kind === 'fixed-total' ? ['kind', 'sparsities', 'expertParams'] : ['kind'];
  }
  if (path.length === 1 && path[0] === 'base') return ['preset', 'config', 'inline'];
  return [];
}

/** Config-style messages; unknown keys get the spec's own allowed keys (not the config's). */
function formatSpecIssues(issues: readonly z.ZodIssue[], raw: unknown): string[] {
  const out: string[] = [];
  for (const i of issues) {
    if (i.code === 'unrecognized_keys') {
      const where = (k: string) => [...i.path, k].join('.');
      for (const k of i.keys) out.push(`${where(k)}: unknown key; allowed keys: ${allowedKeys(i.path, raw).join(', ')}`);
    } else if (i.code === 'invalid_string' && i.path.length === 2 && i.path[0] === 'axes') {
      out.push(`axes.${i.path[1]}: ${i.message}, got ${JSON.stringify(i.path[1])}`); // a bad key, not a bad value
    } else if (i.code === 'invalid_union' && i.path.length === 1 && i.path[0] === 'base') {
      out.push(`base: expected a preset name, {"preset": name}, {"config": "file.json"} or {"inline": {config}}, got ${JSON.stringify(isObj(raw) ? raw.base : undefined)?.slice(0, 60)}`);
    } else {
      out.push(...formatIssues([i], raw));
    }
  }
  return out;
}

/** Validate a spec object; a ConfigError lists every problem by field. */
export function parseSweepSpec(raw: unknown, opts: { baseDir?: string; source?: string } = {}): SweepSpec {
  const r = sweepSpecSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(`invalid sweep spec${opts.source ? ` ${opts.source}` : ''}:`, formatSpecIssues(r.error.issues, raw));
  return { ...r.data, baseDir: resolve(opts.baseDir ?? '.') };
}

/** Read and validate a spec file; relative paths in it are relative to its folder. */
export function readSweepSpec(file: string): SweepSpec {
  return parseSweepSpec(readJsonConfig(file), { baseDir: dirname(resolve(file)), source: file });
}
