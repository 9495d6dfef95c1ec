// A run's config.json: what is written when a run starts and how it is read back when the run is
// resumed (or used as the base of another run) with overrides.
//
// config.json holds the resolved config (every value, so the run folder describes itself) with
// its `derived` list: the fields whose value was derived from others (train.minLr = lr/10,
// train.warmup = steps/20, the ffn widths = 4d, ...) rather than given. Reading it back derives
// those fields afresh and keeps every other field as saved, so
//   --resume --set train.lr=1e-4   moves a derived minLr with lr (it used to stay frozen at the old
//                                  lr/10 and fail "minLr must be <= lr"),
//   --resume --steps 361           moves a derived warm-up with steps,
// while a minLr or warmup the user gave stays as given. A config.json written before `derived`
// existed has no such list: all its values count as given.
import type { Config } from './schema.js';
import { applyOverrides, readJsonConfig, resolveConfig } from './load.js';

/** The JSON object to write as a run's config.json (a plain copy of the resolved config). */
export function configForSave(cfg: Config): Record<string, unknown> {
  return JSON.parse(JSON.stringify(cfg)) as Record<string, unknown>;
}

export interface SavedConfigOptions {
  /** Folder that relative data paths in the overrides are relative to (default: the cwd). */
  cwd?: string;
  /** Where the saved config came from, for error messages. */
  source?: string;
}

/**
 * A saved config.json object plus overrides (nested or dotted keys, e.g. `{'train.lr': 1e-4}`) ->
 * the resolved config: fields the overrides set are taken as given, the saved config's derived
 * fields are derived afresh, everything else is as saved.
 */
export function configFromSaved(json: unknown, overrides: Record<string, unknown> = {}, opts: SavedConfigOptions = {}): Config {
  const source = opts.source ?? 'saved config';
  const has = Object.keys(overrides).length > 0;
  return resolveConfig(has ? applyOverrides(json, overrides, opts.cwd) : json, { source: has ? `${source} with overrides` : source, baseDir: opts.cwd });
}

/** configFromSaved on a config.json file (a ConfigError says what is wrong with it). */
export function readSavedConfig(file: string, overrides: Record<string, unknown> = {}, opts: SavedConfigOptions = {}): Config {
  return configFromSaved(readJsonConfig(file), overrides, { ...opts, source: opts.source ?? file });
}
