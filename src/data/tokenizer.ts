// Tokenizers: 'bytes' (UTF-8 bytes, vocabulary 256, what the PyTorch reference uses) and 'gpt2'
// (the GPT-2 r50k BPE from gpt-tokenizer, vocabulary 50257, bundled: nothing is downloaded). Both
// vocabularies fit in 16 bits, so token arrays are Uint16Array.
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

class Gpt2Tokenizer implements Tokenizer {
  readonly name = 'gpt2' as const;
  readonly vocabSize = VOCAB_SIZES.gpt2;
  private mod: BpeModule | null = null;

  private bpe(): BpeModule {
    // Loaded on first use (the rank table takes a moment to build); CJS build so this stays sync.
    if (!this.mod) this.mod = createRequire(import.meta.url)('gpt-tokenizer/encoding/r50k_base') as BpeModule;
    return this.mod;
  }
  encode(text: string): Uint16Array {
    // Special-token strings in the text are ordinary text here (no '<|endoftext|>' injection).
    return Uint16Array.from(this.bpe().encode(text, { allowedSpecial: new Set(), disallowedSpecial: new Set() }));
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
