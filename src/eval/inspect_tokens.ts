/**
 * Which tokens each expert prefers: (token id, expert) routing assignments counted over an
 * evaluation set, with each token's occurrences, so that a token an expert takes every time it
 * occurs (specialisation) is told apart from a token that is merely frequent.
 *   count(v, e) = assignments of occurrences of token v to expert e (before capacity drops)
 *   share(v, e) = count(v, e) / occurrences(v): the fraction of v's occurrences expert e received
 *                 (1 = every one; with token choice the shares of a token sum to k over experts)
 */
import type { Tokenizer } from '../data/tokenizer.js';

export interface TokenPreference {
  /** Token id. */
  id: number;
  /** The token's text, escaped for display (see tokenLabel). */
  text: string;
  /** Routing assignments of this token to the expert. */
  count: number;
  /** Occurrences of the token in the evaluated inputs. */
  occurrences: number;
  /** count / occurrences. */
  share: number;
}

/** Occurrences of each token id in the inputs of a set of forwards. */
export class TokenOccurrences {
  readonly counts = new Map<number, number>();
  add(ids: ArrayLike<number>): void {
    for (let i = 0; i < ids.length; i++) this.counts.set(ids[i], (this.counts.get(ids[i]) ?? 0) + 1);
  }
  of(id: number): number {
    return this.counts.get(id) ?? 0;
  }
}

/** (token id, expert) assignment counts of one MoE layer. */
export class TokenExpertCounts {
  private readonly pairs = new Map<number, number>();
  /** Assignments per expert (the sum of its pairs). */
  readonly perExpert: Float64Array;

  constructor(readonly experts: number) {
    this.perExpert = new Float64Array(experts);
  }

  /** One forward's assignments: input row tok[a] (whose token id is ids[tok[a]]) to expert expert[a]. */
  add(ids: ArrayLike<number>, tok: Int32Array, expert: Int32Array): void {
    const E = this.experts;
    for (let a = 0; a < tok.length; a++) {
      const e = expert[a], key = ids[tok[a]] * E + e;
      this.pairs.set(key, (this.pairs.get(key) ?? 0) + 1);
      this.perExpert[e]++;
    }
  }

  /** Assignments of token `id` to expert `e`. */
  count(id: number, e: number): number {
    return this.pairs.get(id * this.experts + e) ?? 0;
  }

  /**
   * Each expert's `n` most assigned tokens: by count, then share, then id (ascending), so the
   * order is deterministic.
   */
  top(n: number, occ: TokenOccurrences, tokenizer: Tokenizer): TokenPreference[][] {
    const E = this.experts;
    const byExpert: { id: number; count: number; share: number }[][] = Array.from({ length: E }, () => []);
    for (const [key, count] of this.pairs) {
      const id = Math.floor(key / E), e = key - id * E;
      byExpert[e].push({ id, count, share: count / occ.of(id) });
    }
    return byExpert.map((list) => list
      .sort((a, b) => b.count - a.count || b.share - a.share || a.id - b.id)
      .slice(0, n)
      .map((p) => ({ id: p.id, text: tokenLabel(tokenizer, p.id), count: p.count, occurrences: occ.of(p.id), share: p.share })));
  }
}

/**
 * A token's text for display, escaped so that every token is visible and one line: backslash,
 * newline, tab, carriage return as \\ \n \t \r; other control characters as \xNN or \uNNNN; with the
 * bytes tokenizer a byte that is not printable ASCII (a piece of a multi-byte character) as \xNN.
 * Spaces are kept (BPE tokens often begin with one): show the text quoted.
 */
export function tokenLabel(tokenizer: Tokenizer, id: number): string {
  if (tokenizer.name === 'bytes' && (id < 0x20 || id > 0x7e)) return escapeChar(id);
  let out = '';
  for (const ch of tokenizer.decode([id])) {
    const c = ch.codePointAt(0)!;
    out += c < 0x20 || c === 0x7f || (c >= 0x80 && c < 0xa0) ? escapeChar(c) : ch === '\\' ? '\\\\' : ch;
  }
  return out;
}

function escapeChar(c: number): string {
  const named: Record<number, string> = { 0x0a: '\\n', 0x09: '\\t', 0x0d: '\\r' };
  return named[c] ?? (c < 0x100 ? `\\x${c.toString(16).padStart(2, '0')}` : `\\u${c.toString(16).padStart(4, '0')}`);
}
