// Run identity: a short, stable hash of the parts of a resolved config that decide what a run
// computes, for naming run folders of a sweep. The hash is SHA-256 of the canonical JSON (object
// keys sorted at every level, arrays in order, undefined dropped) of the config without the
// fields that do not change the result:
//   name              a label
//   derived           provenance of values that are in the config anyway
//   train.threads     compute threads
//   train.logEvery    how often a line is printed
//   train.saveEvery   how often a checkpoint is written
// Data paths enter as the (absolute) paths, not the files' contents. Fields added after hashes were
// first published enter only when they differ from the value every earlier config implied
// (train.precision 'fp32'; train.bf16Centering true, and under fp32 it changes nothing), so existing
// run folders keep their names.
import { createHash } from 'node:crypto';
import type { Config } from './schema.js';

/** Dotted paths left out of the identity. */
export const NON_IDENTITY_FIELDS: readonly string[] = ['name', 'derived', 'train.threads', 'train.logEvery', 'train.saveEvery'];

/** JSON with object keys sorted at every level: equal values give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
    const o = v as Record<string, unknown>;
    return Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
  });
}

/** The config without the fields listed in NON_IDENTITY_FIELDS. */
export function configIdentity(cfg: Config): Record<string, unknown> {
  const out = JSON.parse(JSON.stringify(cfg)) as Record<string, unknown>;
  const train = out.train as Record<string, unknown> | undefined;
  if (train && (train.bf16Centering === true || train.precision === 'fp32')) delete train.bf16Centering;
  if (train && train.precision === 'fp32') delete train.precision;
  for (const path of NON_IDENTITY_FIELDS) {
    const parts = path.split('.');
    let o: unknown = out;
    for (const p of parts.slice(0, -1)) o = typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[p] : undefined;
    if (typeof o === 'object' && o !== null) delete (o as Record<string, unknown>)[parts[parts.length - 1]];
  }
  return out;
}

/** A short hex hash of the config's identity (12 hex digits = 48 bits by default). */
export function configHash(cfg: Config, length = 12): string {
  if (!Number.isInteger(length) || length < 4 || length > 64) throw new RangeError(`configHash: length must be an integer in 4..64, got ${length}`);
  return createHash('sha256').update(canonicalJson(configIdentity(cfg))).digest('hex').slice(0, length);
}
