// Sweep expansion: spec -> the list of points to train, a pure function of the spec (and of the
// preset or config file it names). Order: the axes' cartesian product (the last axis varies
// fastest), then the generator's variants, then seeds, then budgets. Each point's config is the
// base with, in order, the spec's `set`, its axis values, the generator's overrides, its seed and
// the steps its budget buys, resolved like any config (derived defaults such as warmup = steps/20
// follow). Points that resolve to the same config (same configHash) are collapsed into one.
//
// Budgets: tokens/step = batch * seq * accum and FLOPs/token from countModel (spec/count.ts: 6 *
// forward MACs + 12 * layers * d * seq), so train.steps = round(C / (FLOPs/token * tokens/step))
// and the point trains flopsPerToken * tokens/step * steps FLOPs (C up to the rounding of steps).
import { resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { ConfigError, applyOverrides, loadConfig, resolveConfig, withAbsoluteDataPaths } from '../config/load.js';
import { configHash } from '../config/hash.js';
import { countModel } from '../spec/count.js';
import { familyOf } from './family.js';
import { generatorVariants } from './generators.js';
import type { SweepSpec } from './spec.js';

export interface SweepPoint {
  /** configHash of the resolved config: the run folder's name. */
  hash: string;
  /** A readable run name (config.name); not part of the identity. */
  name: string;
  config: Config;
  family: string;
  /** What produced the point: axis path -> value, generator choices under `generator.<key>`, and `seed`, `budget` when swept. */
  axes: Record<string, unknown>;
  seed: number;
  /** The compute budget the point was sized for (FLOPs), or null without budgets. */
  budget: number | null;
  /** FLOPs this point trains: flopsPerToken * tokensPerStep * steps. */
  trainingFlops: number;
  /** Axis values of further combinations that resolved to this same config. */
  duplicates: Record<string, unknown>[];
}

/** Tokens one optimizer step trains on. */
export const tokensPerStep = (cfg: Config): number => cfg.train.batch * cfg.model.seq * cfg.train.accum;

/** Steps a compute budget buys for a config (may be < 1: the caller refuses those). */
export function stepsForBudget(cfg: Config, budget: number): number {
  return Math.round(budget / (countModel(cfg.model).flopsPerToken * tokensPerStep(cfg)));
}

function describe(axes: Record<string, unknown>): string {
  const parts = Object.entries(axes).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return parts.length ? `{${parts.join(', ')}}` : '(the base config)';
}

/** The base config with overrides (dotted keys) applied, resolved. */
export function resolveBase(spec: SweepSpec, overrides: Record<string, unknown>): Config {
  const b = spec.base;
  const cwd = spec.baseDir;
  if (typeof b === 'string') return loadConfig({ preset: b, overrides, cwd });
  if ('preset' in b) return loadConfig({ preset: b.preset, overrides, cwd });
  if ('config' in b) return loadConfig({ configPath: resolve(cwd, b.config), overrides, cwd });
  const inline = withAbsoluteDataPaths(b.inline, cwd);
  return resolveConfig(applyOverrides(inline, overrides, cwd), { baseDir: cwd, source: 'inline base config with overrides' });
}

function withPointContext<T>(axes: Record<string, unknown>, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`sweep point ${describe(axes)}: ${e.message.split('\n')[0]}`, e.problems);
    throw e;
  }
}

/** Every combination of the axes' values, the last axis varying fastest. */
export function cartesian(axes: Record<string, readonly unknown[]>): Record<string, unknown>[] {
  let out: Record<string, unknown>[] = [{}];
  for (const [key, values] of Object.entries(axes)) out = out.flatMap((o) => values.map((v) => ({ ...o, [key]: v })));
  return out;
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]/g, '').slice(0, 128) || 'point';
}

function pointName(cfg: Config, family: string, budget: number | null): string {
  const c = budget === null ? '' : `-C${budget.toExponential(2).replace('e+', 'e')}`;
  return safeName(`${family}-d${cfg.model.d}-L${cfg.model.layers}${c}-s${cfg.train.seed}`);
}

/** The spec's points, duplicates (same configHash) collapsed into the first. */
export function expandSweep(spec: SweepSpec): SweepPoint[] {
  const byHash = new Map<string, SweepPoint>();
  for (const combo of cartesian(spec.axes)) {
    const common = { ...spec.set, ...combo };
    const variants = spec.generator
      ? withPointContext(combo, () => generatorVariants(spec.generator!, resolveBase(spec, common)))
      : [{ overrides: {}, values: {} as Record<string, number> }];
    for (const variant of variants) {
      const genAxes = Object.fromEntries(Object.entries(variant.values).map(([k, v]) => [`generator.${k}`, v]));
      for (const seed of spec.seeds ?? [undefined]) {
        const seedOv = seed === undefined ? {} : { 'train.seed': seed };
        const seedAxes = seed === undefined ? {} : { seed };
        for (const budget of spec.budgets ?? [undefined]) {
          const axes = { ...combo, ...genAxes, ...seedAxes, ...(budget === undefined ? {} : { budget }) };
          const overrides = { ...common, ...variant.overrides, ...seedOv };
          const config = withPointContext(axes, () => {
            if (budget === undefined) return resolveBase(spec, overrides);
            const sized = resolveBase(spec, overrides);
            const steps = stepsForBudget(sized, budget);
            if (steps < 1) {
              const perStep = countModel(sized.model).flopsPerToken * tokensPerStep(sized);
              throw new ConfigError(`budget ${budget} FLOPs buys ${(budget / perStep).toPrecision(3)} steps (< 1) of this model ` +
                `(${perStep.toPrecision(4)} FLOPs per step = FLOPs/token x batch x seq x accum): raise the budget or shrink the model or batch`);
            }
            return resolveBase(spec, { ...overrides, 'train.steps': steps });
          });
          const hash = configHash(config);
          const seen = byHash.get(hash);
          if (seen) {
            seen.duplicates.push(axes);
            continue;
          }
          const family = familyOf(config);
          const b = budget ?? null;
          config.name = pointName(config, family, b);
          byHash.set(hash, {
            hash, name: config.name, config, family, axes, seed: config.train.seed, budget: b,
            trainingFlops: countModel(config.model).flopsPerToken * tokensPerStep(config) * config.train.steps, duplicates: [],
          });
        }
      }
    }
  }
  return [...byHash.values()];
}
