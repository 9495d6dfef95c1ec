// Option parsing shared by the commands.
import { loadConfig, parseOverrides, type Config } from '../index.js';

export function intOption(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got '${v}'`);
    return n;
  };
}

export function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got '${v}'`);
    return n;
  };
}

export function floatOption(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`${name} must be a number, got '${v}'`);
    return n;
  };
}

export function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

export interface ConfigFlags {
  preset?: string;
  config?: string;
  set?: string[];
  steps?: number;
  data?: string[];
  threads?: number;
}

/** Resolves --preset / --config plus --set key=value overrides and the shorthand flags. */
export function configFromFlags(f: ConfigFlags): Config {
  const overrides: Record<string, unknown> = parseOverrides(f.set ?? []);
  if (f.steps !== undefined) overrides['train.steps'] = f.steps;
  if (f.threads !== undefined) overrides['train.threads'] = f.threads;
  if (f.data && f.data.length) overrides['data.paths'] = f.data;
  return loadConfig({ preset: f.preset, configPath: f.config, overrides });
}
