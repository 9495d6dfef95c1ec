// Build a run config from a preset or a JSON file plus overrides, and validate it. Every problem
// is reported as one line `field.path: what was expected, what was found`, all at once, e.g.
//   model.ffn.type: expected one of 'dense' | 'moe' | 'peer', got 'moee'
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { configSchema, type Config, type ConfigInput } from './schema.js';
import { DEFAULT_PRESET, getPreset, presetNames } from './presets.js';

export class ConfigError extends Error {
  /** One entry per problem (already formatted). */
  readonly problems: string[];
  constructor(message: string, problems: string[] = []) {
    super(problems.length ? `${message}\n${problems.map((p) => `  ${p}`).join('\n')}` : message);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface LoadConfigOptions {
  /** Preset name (default 'tiny' when neither preset nor configPath is given). */
  preset?: string;
  /** JSON config file (a full config, e.g. a checkpoint's config.json, or a partial one). */
  configPath?: string;
  /**
   * Deep-merged over the preset / file. Nested objects (`{train: {steps: 100}}`) or dotted keys
   * (`{'train.steps': 100}`). Arrays and scalars replace; an ffn override with a different `type`
   * replaces the whole ffn section.
   */
  overrides?: Record<string, unknown>;
  /** Folder that relative data paths in `overrides` are relative to (default: the cwd). */
  cwd?: string;
}

/**
 * A preset or config file plus overrides, resolved. Relative data paths become absolute: those in
 * a config file relative to the file's folder, those in overrides (command-line flags) relative to
 * `cwd`, so a run's config.json names its data wherever the run is resumed from.
 */
export function loadConfig(opts: LoadConfigOptions = {}): Config {
  if (opts.preset !== undefined && opts.configPath !== undefined) {
    throw new ConfigError(`give either a preset ('${opts.preset}') or a config file ('${opts.configPath}'), not both`);
  }
  let base: unknown;
  let source: string;
  if (opts.configPath !== undefined) {
    base = withAbsoluteDataPaths(readJsonConfig(opts.configPath), dirname(resolve(opts.configPath)));
    source = `config file ${opts.configPath}`;
  } else {
    const name = opts.preset ?? DEFAULT_PRESET;
    const p = getPreset(name);
    if (!p) throw new ConfigError(`unknown preset '${name}'; available presets: ${presetNames().join(', ')}`);
    base = p.config;
    source = `preset '${name}'`;
  }
  const has = opts.overrides !== undefined && Object.keys(opts.overrides).length > 0;
  const merged = has ? applyOverrides(base, opts.overrides!, opts.cwd) : base;
  return resolveConfig(merged, { source: has ? `${source} with overrides` : source, baseDir: opts.cwd });
}

export interface ResolveOptions {
  /** Folder relative data paths are relative to (default: the cwd). */
  baseDir?: string;
  /** Where the input came from, for error messages. */
  source?: string;
}

/**
 * Input (a config file's object, a preset's config, a saved config.json) -> the resolved Config:
 * every default filled in, derived ones listed in `derived`, data paths absolute. Throws a
 * ConfigError listing every problem.
 */
export function resolveConfig(input: unknown, opts: ResolveOptions = {}): Config {
  const raw = withAbsoluteDataPaths(input, opts.baseDir);
  const r = configSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(`invalid ${opts.source ?? 'config'}:`, formatIssues(r.error.issues, raw));
  return r.data;
}

/** resolveConfig with a source name for messages (relative data paths relative to the cwd). */
export function validateConfig(raw: unknown, source = 'config'): Config {
  return resolveConfig(raw, { source });
}

/** A copy of the input with data.paths made absolute against baseDir (default: the cwd). */
export function withAbsoluteDataPaths(input: unknown, baseDir?: string): unknown {
  if (!isPlainObject(input) || !isPlainObject(input.data) || !Array.isArray(input.data.paths)) return input;
  const base = resolve(baseDir ?? '.');
  // non-strings and empty strings are left for the schema to report
  const paths = input.data.paths.map((p: unknown) => (typeof p === 'string' && p !== '' ? resolve(base, p) : p));
  return { ...input, data: { ...input.data, paths } };
}

/**
 * Overrides (nested or dotted keys) merged over `base`, their relative data paths made absolute
 * against `cwd`. A field an override sets is no longer one of base's derived fields: it stays as
 * given, while the derived fields it does not set are derived afresh (so train.lr=1e-4 moves a
 * derived minLr, and train.steps moves a derived warmup).
 */
export function applyOverrides(base: unknown, overrides: Record<string, unknown>, cwd?: string): unknown {
  const ov = withAbsoluteDataPaths(expandDotted(overrides), cwd) as Record<string, unknown>;
  const set = leafPaths(ov);
  let b = base;
  if (isPlainObject(base) && Array.isArray(base.derived)) {
    b = { ...base, derived: base.derived.filter((p) => !set.some((s) => p === s || (typeof p === 'string' && p.startsWith(`${s}.`)))) };
  }
  return deepMerge(b, ov);
}

/** Dotted paths of the values an override object sets (undefined sets nothing). */
function leafPaths(o: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(o).flatMap(([k, v]) => {
    if (v === undefined) return [];
    return isPlainObject(v) && Object.keys(v).length ? leafPaths(v, `${prefix}${k}.`) : [`${prefix}${k}`];
  });
}

/** Parse a JSON file, with a ConfigError saying what went wrong. */
export function readJsonConfig(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new ConfigError(`config file not found: ${path}`);
    if (err.code === 'EISDIR') throw new ConfigError(`config path is a directory, expected a JSON file: ${path}`);
    throw new ConfigError(`cannot read config file ${path}: ${err.message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(e as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// overrides

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `{'train.steps': 5, model: {d: 64}}` -> `{train: {steps: 5}, model: {d: 64}}`. */
export function expandDotted(obj: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj)) {
    const parts = key.split('.');
    if (parts.some((p) => p === '')) throw new ConfigError(`invalid override key '${key}'`);
    let v: unknown = isPlainObject(value) ? expandDotted(value) : value;
    for (let i = parts.length - 1; i >= 0; i--) v = { [parts[i]]: v };
    out = deepMerge(out, v) as Record<string, unknown>;
  }
  return out;
}

/**
 * Merge `over` into `base` (neither is modified). Objects merge key by key; anything else in
 * `over` replaces. Two objects whose `type` fields differ do not merge: `over` replaces `base`.
 */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : structuredClone(over);
  if ('type' in over && 'type' in base && over.type !== base.type) return structuredClone(over);
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? deepMerge(base[k], v) : structuredClone(v);
  return out;
}

/**
 * Parse CLI-style overrides `key.path=value`: the value is JSON when it parses (numbers,
 * booleans, arrays, quoted strings), else a plain string (`model.vocab=gpt2`).
 */
export function parseOverrides(items: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new ConfigError(`invalid override '${item}': expected key.path=value, e.g. train.steps=100`);
    const key = item.slice(0, eq).trim();
    const text = item.slice(eq + 1).trim();
    let value: unknown = text;
    try {
      value = JSON.parse(text);
    } catch {
      /* plain string */
    }
    out[key] = value;
  }
  return expandDotted(out);
}

// ---------------------------------------------------------------------------------------------
// zod issue formatting

/** `['model','ffn','layers',0]` -> `model.ffn.layers[0]`. */
export function formatPath(path: readonly (string | number)[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${p}` : p;
  return s || '(root)';
}

function valueAt(root: unknown, path: readonly (string | number)[]): { found: boolean; value: unknown } {
  let v: unknown = root;
  for (const p of path) {
    if (v === null || typeof v !== 'object' || !(p in (v as object))) return { found: false, value: undefined };
    v = (v as Record<string | number, unknown>)[p];
  }
  return { found: true, value: v };
}

/** A short description of a value as found in the input. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'string') return `'${v.length > 40 ? v.slice(0, 40) + '...' : v}'`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `an array (${JSON.stringify(v).slice(0, 40)})`;
  if (typeof v === 'object') return 'an object';
  return typeof v;
}

function quoteOptions(opts: readonly unknown[]): string {
  return opts.map((o) => (typeof o === 'string' ? `'${o}'` : String(o))).join(' | ');
}

/** Optimal-string-alignment distance (edits, with adjacent transpositions counting one). */
function editDistance(a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** Keys the object schema at `path` accepts, found by walking the config schema. */
function knownKeysAt(path: readonly (string | number)[], root: unknown): string[] {
  let s: z.ZodTypeAny = configSchema;
  const unwrap = (t: z.ZodTypeAny): z.ZodTypeAny => {
    for (;;) {
      if (t instanceof z.ZodEffects) t = t.innerType();
      else if (t instanceof z.ZodDefault) t = t._def.innerType;
      else if (t instanceof z.ZodOptional) t = t.unwrap();
      else return t;
    }
  };
  for (let i = 0; i <= path.length; i++) {
    s = unwrap(s);
    if (s instanceof z.ZodDiscriminatedUnion) {
      const { value } = valueAt(root, path.slice(0, i));
      const disc = (value as Record<string, unknown> | undefined)?.[s.discriminator];
      const opt = s.optionsMap.get(disc as z.Primitive);
      if (!opt) return [];
      s = opt;
    }
    if (i === path.length) break;
    if (!(s instanceof z.ZodObject)) return [];
    s = (s.shape as Record<string, z.ZodTypeAny>)[String(path[i])];
    if (!s) return [];
  }
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}

function formatOne(issue: z.ZodIssue, input: unknown): string[] {
  const where = formatPath(issue.path);
  const got = valueAt(input, issue.path);
  switch (issue.code) {
    case 'invalid_type':
      if (issue.received === 'undefined') return [`${where}: required (expected ${issue.expected})`];
      return [`${where}: expected ${issue.expected}, got ${issue.received}${got.found ? ` (${describeValue(got.value)})` : ''}`];
    case 'invalid_literal':
      return [`${where}: expected ${quoteOptions([issue.expected])}, got ${describeValue(got.value)}`];
    case 'invalid_enum_value':
      return [`${where}: expected one of ${quoteOptions(issue.options)}, got ${describeValue(issue.received)}`];
    case 'invalid_union_discriminator':
      return [`${where}: expected one of ${quoteOptions(issue.options)}, got ${describeValue(got.value)}`];
    case 'unrecognized_keys': {
      const known = knownKeysAt(issue.path, input);
      return issue.keys.map((k) => {
        const close = known.filter((c) => editDistance(k, c) <= Math.max(1, Math.floor(c.length / 3)));
        const hint = close.length ? `; did you mean ${quoteOptions(close)}?` : known.length ? `; allowed keys: ${known.join(', ')}` : '';
        return `${formatPath([...issue.path, k])}: unknown key${hint}`;
      });
    }
    case 'invalid_union': {
      // A branch that got past the type check (its issues point deeper) explains the problem best.
      const depth = issue.path.length;
      const deeper = issue.unionErrors.flatMap((e) => e.issues).filter((i) => i.path.length > depth);
      if (deeper.length) return deeper.flatMap((i) => formatOne(i, input));
      const expected = issue.unionErrors.map((e) => {
        const first = e.issues[0];
        if (first?.code === 'invalid_literal') return quoteOptions([first.expected]);
        if (first?.code === 'invalid_type') return first.expected === 'array' ? 'an array' : first.expected === 'object' ? 'an object' : first.expected;
        return 'another value';
      });
      return [`${where}: expected ${[...new Set(expected)].join(' or ')}, got ${describeValue(got.value)}`];
    }
    case 'too_small': {
      const v = describeValue(got.value);
      if (issue.type === 'array') return [`${where}: expected at least ${issue.minimum} item(s), got ${v}`];
      if (issue.type === 'string') return [`${where}: expected a non-empty string, got ${v}`];
      const op = issue.inclusive ? '>=' : '>';
      return [`${where}: must be ${op} ${issue.minimum}, got ${v}`];
    }
    case 'too_big': {
      const op = issue.inclusive ? '<=' : '<';
      return [`${where}: must be ${op} ${issue.maximum}, got ${describeValue(got.value)}`];
    }
    case 'not_finite':
      return [`${where}: must be a finite number, got ${describeValue(got.value)}`];
    case 'not_multiple_of':
      return [`${where}: must be a multiple of ${issue.multipleOf}, got ${describeValue(got.value)}`];
    case 'custom':
      return [`${where}: ${issue.message}`];
    default:
      return [`${where}: ${issue.message}${got.found ? ` (got ${describeValue(got.value)})` : ''}`];
  }
}

/** Format zod issues against the input they came from (used to show the offending values). */
export function formatIssues(issues: readonly z.ZodIssue[], input: unknown): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    for (const line of formatOne(issue, input)) {
      // zod reports 1.5 for an int field as invalid_type 'integer' / 'float': make it readable
      const fixed = line.replace(/expected integer, got float/, 'expected an integer, got a fraction');
      if (!out.includes(fixed)) out.push(fixed);
    }
  }
  return out;
}

/** Parse a config without throwing: the resolved config or the formatted problems. */
export function tryValidateConfig(raw: unknown): { ok: true; config: Config } | { ok: false; problems: string[] } {
  raw = withAbsoluteDataPaths(raw);
  const r = configSchema.safeParse(raw);
  return r.success ? { ok: true, config: r.data } : { ok: false, problems: formatIssues(r.error.issues, raw) };
}

export type { Config, ConfigInput };
