// Tokenizers: 'bytes' (UTF-8 bytes, vocabulary 256, what the PyTorch reference uses) and 'gpt2'
// (the GPT-2 r50k BPE from gpt-tokenizer, vocabulary 50257, bundled: nothing is downloaded). Both
// vocabularies fit in 16 bits, so token arrays are Uint16Array.
//
// Long pre-tokens. GPT-2 BPE first splits text into pre-tokens (letter runs, digit runs,
// punctuation runs, whitespace runs) and merges bytes inside each one; gpt-tokenizer's merge loop
// rescans the whole pre-token for every merge, so one pre-token of n bytes costs O(n^2) (107 s for
// 400 KB of "a"). Pre-tokens longer than MAX_PRETOKEN (128 UTF-16 units, about twice the longest
// r50k token of 66 characters) are therefore cut into pieces of at most that length and each piece
// is merged on its own. Text without such a pre-token is encoded exactly as before; with one, only
// the tokens inside the long pre-token can differ (a token boundary at every cut).
import { createRequire } from 'node:module';
import { VOCAB_SIZES, TOKENIZER_NAMES, type TokenizerName } from '../config/schema.js';

export type TokenArray = Uint16Array | Int32Array;

export interface Tokenizer {
  readonly name: TokenizerName;
  readonly vocabSize: number;
  encode(text: string): Uint16Array;
  /** Tokens of raw file bytes (bytes: the bytes themselves, so non-UTF-8 input survives exactly). */
  encodeBytes(bytes: Uint8Array): Uint16Array;
  /** Invalid UTF-8 (e.g. a sampled byte sequence cut mid-character) decodes to U+FFFD. */
  decode(ids: ArrayLike<number>): string;
  /** UTF-8 bytes the tokens stand for (bits-per-byte = total nats / ln 2 / this). */
  countBytes(ids: ArrayLike<number>): number;
  /** Average source bytes per token when known exactly (1 for bytes). */
  readonly bytesPerToken?: number;
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: false });
const utf8Encoder = new TextEncoder();

function checkIds(ids: ArrayLike<number>, vocab: number, who: string): void {
  for (let i = 0; i < ids.length; i++) {
    const t = ids[i];
    if (!(t >= 0 && t < vocab) || !Number.isInteger(t)) throw new RangeError(`${who}.decode: token ${t} at position ${i} is outside the vocabulary [0, ${vocab})`);
  }
}

class ByteTokenizer implements Tokenizer {
  readonly name = 'bytes' as const;
  readonly vocabSize = 256;
  readonly bytesPerToken = 1;
  encode(text: string): Uint16Array {
    return Uint16Array.from(utf8Encoder.encode(text));
  }
  encodeBytes(bytes: Uint8Array): Uint16Array {
    return Uint16Array.from(bytes);
  }
  decode(ids: ArrayLike<number>): string {
    checkIds(ids, 256, 'bytes');
    return utf8Decoder.decode(Uint8Array.from(ids as ArrayLike<number>));
  }
  countBytes(ids: ArrayLike<number>): number {
    return ids.length;
  }
}

interface BpeModule {
  encode(text: string, opts?: { allowedSpecial?: Set<string>; disallowedSpecial?: Set<string> }): number[];
  decode(ids: Iterable<number>): string;
}

export const MAX_PRETOKEN = 128;
/** Any pre-token longer than MAX_PRETOKEN units holds a run of at least this many code points of one class. */
const LONG_RUN = new RegExp(`\\p{L}{${MAX_PRETOKEN / 2}}|\\p{N}{${MAX_PRETOKEN / 2}}|[^\\s\\p{L}\\p{N}]{${MAX_PRETOKEN / 2}}|\\s{${MAX_PRETOKEN / 2}}`, 'u');
const isSpace = (c: string): boolean => /\s/u.test(c);

/** Cut points of a long string: pieces of at most `max` UTF-16 units, never inside a surrogate pair. */
export function pieces(s: string, max: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.length;) {
    let j = Math.min(s.length, i + max);
    const c = s.charCodeAt(j - 1);
    if (j < s.length && c >= 0xd800 && c <= 0xdbff) j--; // keep the pair together
    out.push(s.slice(i, j));
    i = j;
  }
  return out;
}

class Gpt2Tokenizer implements Tokenizer {
  readonly name = 'gpt2' as const;
  readonly vocabSize = VOCAB_SIZES.gpt2;
  private mod: BpeModule | null = null;
  private split: RegExp | null = null;

  private bpe(): BpeModule {
    // Loaded on first use (the rank table takes a moment to build); CJS build so this stays sync.
    if (!this.mod) {
      const req = createRequire(import.meta.url);
      this.mod = req('gpt-tokenizer/encoding/r50k_base') as BpeModule;
      this.split = (req('gpt-tokenizer/encodingParams/constants') as { R50K_TOKEN_SPLIT_REGEX: RegExp }).R50K_TOKEN_SPLIT_REGEX;
    }
    return this.mod;
  }
  private plain(text: string): number[] {
    // Special-token strings in the text are ordinary text here (no '<|endoftext|>' injection).
    return text ? this.bpe().encode(text, { allowedSpecial: new Set(), disallowedSpecial: new Set() }) : [];
  }
  encode(text: string): Uint16Array {
    if (!LONG_RUN.test(text)) return Uint16Array.from(this.plain(text));
    this.bpe();
    // Encode the text between long pre-tokens in one call each. A stretch may only end after a
    // pre-token ending in a non-space: re-splitting it alone then gives the same pre-tokens (a
    // trailing whitespace run could split differently without the text after it), so the
    // whitespace pre-tokens just before a long one are encoded one by one.
    const out: number[] = [];
    const push = (ids: number[]): void => {
      for (const id of ids) out.push(id);
    };
    let start = 0; // first character not yet encoded
    let safeEnd = 0; // end of the last pre-token ending in a non-space
    let spaces: string[] = []; // whitespace pre-tokens after safeEnd
    for (const m of text.matchAll(this.split!)) {
      const tok = m[0];
      const end = m.index + tok.length;
      if (tok.length <= MAX_PRETOKEN) {
        if (isSpace(tok[tok.length - 1])) spaces.push(tok);
        else {
          safeEnd = end;
          spaces = [];
        }
        continue;
      }
      push(this.plain(text.slice(start, safeEnd)));
      for (const w of spaces) push(this.plain(w));
      for (const p of pieces(tok, MAX_PRETOKEN)) push(this.plain(p));
      start = safeEnd = end;
      spaces = [];
    }
    push(this.plain(text.slice(start)));
    return Uint16Array.from(out);
  }
  encodeBytes(bytes: Uint8Array): Uint16Array {
    return this.encode(utf8Decoder.decode(bytes));
  }
  decode(ids: ArrayLike<number>): string {
    checkIds(ids, this.vocabSize, 'gpt2');
    return this.bpe().decode(Array.from(ids));
  }
  countBytes(ids: ArrayLike<number>): number {
    return utf8Encoder.encode(this.decode(ids)).length;
  }
}

const cache = new Map<TokenizerName, Tokenizer>();

export function getTokenizer(name: string): Tokenizer {
  if (!(TOKENIZER_NAMES as readonly string[]).includes(name)) {
    throw new Error(`unknown tokenizer '${name}'; available: ${TOKENIZER_NAMES.join(', ')}`);
  }
  const key = name as TokenizerName;
  let t = cache.get(key);
  if (!t) {
    t = key === 'bytes' ? new ByteTokenizer() : new Gpt2Tokenizer();
    cache.set(key, t);
  }
  return t;
}
