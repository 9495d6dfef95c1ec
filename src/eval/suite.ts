/**
 * Domain perplexity suites: a list of named domains, each scored with evaluateTokens.
 *
 *   `domains` (built in): `in-domain` = the run's own held-out split (its data read again and cut
 *   exactly as training cut it: the last valFraction of the tokens), then the fixed package slices
 *   of domains.ts (fiction, brown, licences).
 *   A user suite is a JSON file {"domains": {"name": "path" | ["path", ...], ...}}: files or folders
 *   read as a corpus (folders recursively, as `train --data` reads them); relative paths are
 *   relative to the JSON file's folder.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { GPT } from '../nn/gpt.js';
import type { Tokenizer } from '../data/tokenizer.js';
import type { Config } from '../config/schema.js';
import { loadCorpus } from '../data/corpus.js';
import { splitTokens } from '../data/loader.js';
import { describeDataChange, type DataIdentity, dataIdentity } from '../data/identity.js';
import { evaluateTokens, type EvalResult } from './evaluate.js';
import { TEXT_DOMAINS } from './domains.js';
import type { WindowOptions } from './windows.js';

export type Domain =
  | { name: string; kind: 'held-out'; source: string }
  | { name: string; kind: 'text'; source: string; text: () => string }
  | { name: string; kind: 'files'; source: string; paths: string[] };

export interface DomainResult extends EvalResult {
  domain: string;
  source: string;
}

export const BUILTIN_SUITES = ['domains'] as const;

const NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** The domains of a suite: a built-in name or the path of a suite JSON file. */
export function resolveSuite(suite: string): Domain[] {
  if (suite === 'domains') {
    return [
      { name: 'in-domain', kind: 'held-out', source: "the run's held-out split (last valFraction of its data)" },
      ...TEXT_DOMAINS.map((d): Domain => ({ name: d.name, kind: 'text', source: d.source, text: d.text })),
    ];
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(suite, 'utf8'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new Error(`suite '${suite}' is neither a built-in suite (${BUILTIN_SUITES.join(', ')}) nor an existing JSON file`);
    throw new Error(`suite ${suite}: not readable JSON (${err.message})`);
  }
  const doms = (raw as { domains?: unknown } | null)?.domains;
  if (!doms || typeof doms !== 'object' || Array.isArray(doms)) {
    throw new Error(`suite ${suite}: expected {"domains": {"name": "path" or ["path", ...], ...}}`);
  }
  const base = dirname(resolve(suite));
  const out: Domain[] = [];
  for (const [name, v] of Object.entries(doms as Record<string, unknown>)) {
    if (!NAME.test(name)) throw new Error(`suite ${suite}: domain name '${name}' must be 1-64 letters, digits, '.', '_' or '-'`);
    const paths = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(paths) || paths.length === 0 || !paths.every((p) => typeof p === 'string' && p.length > 0)) {
      throw new Error(`suite ${suite}: domain '${name}' must name a path or a non-empty list of paths`);
    }
    const abs = paths.map((p) => resolve(base, p));
    out.push({ name, kind: 'files', source: abs.join(', '), paths: abs });
  }
  if (!out.length) throw new Error(`suite ${suite}: no domains`);
  return out;
}

/** Domains for `--data` files: each file (or folder) its own domain, named by the path given. */
export function fileDomains(paths: string[]): Domain[] {
  return paths.map((p) => ({ name: p, kind: 'files', source: resolve(p), paths: [resolve(p)] }));
}

export interface SuiteContext {
  /** The run's config (for `in-domain`: its data paths, valFraction). */
  config: Config;
  /** The data identity the run recorded, to warn when its data changed since training. */
  runData?: DataIdentity | null;
  onNotice?: (message: string) => void;
}

/** Scores each domain in order; a domain that cannot be read fails with its name in the message. */
export function evaluateDomains(model: GPT, tok: Tokenizer, domains: Domain[], ctx: SuiteContext, o: WindowOptions = {}): DomainResult[] {
  const names = new Set<string>();
  for (const d of domains) {
    if (names.has(d.name)) throw new Error(`domain '${d.name}' is listed twice`);
    names.add(d.name);
  }
  return domains.map((d) => {
    try {
      const r = scoreDomain(model, tok, d, ctx, o);
      return { domain: d.name, source: d.source, ...r, file: d.name };
    } catch (e) {
      throw new Error(`domain ${d.name}: ${(e as Error).message}`);
    }
  });
}

function scoreDomain(model: GPT, tok: Tokenizer, d: Domain, ctx: SuiteContext, o: WindowOptions): EvalResult {
  if (d.kind === 'text') {
    const text = d.text();
    return evaluateTokens(model, d.name, tok.encode(text), Buffer.byteLength(text, 'utf8'), o);
  }
  if (d.kind === 'files') {
    const c = loadCorpus(d.paths, tok);
    return evaluateTokens(model, d.name, c.tokens, c.bytes, o);
  }
  const c = loadCorpus(ctx.config.data.paths, tok);
  if (ctx.runData) {
    const change = describeDataChange(ctx.runData, dataIdentity(c));
    if (change) ctx.onNotice?.(`in-domain: ${change}; its held-out split is not the one the run was validated on`);
  }
  const val = splitTokens(c.tokens, ctx.config.data.valFraction).val;
  return evaluateTokens(model, d.name, val, tok.countBytes(val), o);
}
