// Decide how a data file's bytes are read as text, and refuse files that are not text.
//
// encoding 'utf8'   the file must be valid UTF-8; otherwise a CorpusError names the first bad byte.
// encoding 'latin1' every byte is one character of Windows-1252 (the WHATWG meaning of the label
//                   "latin1": ISO-8859-1 with printable punctuation such as curly quotes at
//                   0x80-0x9F); the text is re-encoded as UTF-8 before tokenising.
// encoding 'auto'   (default) valid UTF-8 is UTF-8. Otherwise, if the file has more valid multi-byte
//                   UTF-8 sequences than invalid ones, it is UTF-8 with a few damaged bytes (read as
//                   UTF-8, with a notice); else, if it reads as plausible Latin-1 text (at most 30%
//                   bytes above 0x7F, which covers Western European languages), as Latin-1 with a
//                   notice; else it is refused as binary.
//
// Always refused as binary: a NUL byte anywhere (UTF-16 text is recognised and named), or more
// than 10% of the characters being control characters (other than tab, newline, carriage return,
// form feed, vertical tab, escape) or undecodable.
import { isUtf8 } from 'node:buffer';
import { CorpusError } from './errors.js';

export type TextEncodingOption = 'utf8' | 'latin1' | 'auto';
export const TEXT_ENCODINGS: readonly TextEncodingOption[] = ['utf8', 'latin1', 'auto'];

export interface DecodedSource {
  /** The bytes to tokenise: the file itself when read as UTF-8, else its UTF-8 transcoding. */
  bytes: Uint8Array;
  encoding: 'utf8' | 'latin1';
  /** Set when the file was not plain valid UTF-8 (what was done about it). */
  notice?: string;
}

/** Most characters may be anything but at most this share may be control / undecodable. */
const MAX_BAD_SHARE = 0.1;
/** Above this share of bytes >= 0x80 a non-UTF-8 file is not taken for Latin-1 text by 'auto'. */
const MAX_LATIN1_HIGH_SHARE = 0.3;
/** Windows-1252 leaves these bytes undefined (they decode to C1 control characters). */
const CP1252_UNDEFINED = new Set([0x81, 0x8d, 0x8f, 0x90, 0x9d]);

const isControl = (b: number): boolean => (b < 32 && b !== 9 && b !== 10 && b !== 11 && b !== 12 && b !== 13 && b !== 27) || b === 127;

interface Scan {
  /** Characters when read as UTF-8 (an invalid sequence counts as one). */
  chars: number;
  controls: number;
  invalid: number;
  firstInvalid: number;
  /** Valid UTF-8 sequences of 2-4 bytes. */
  multi: number;
  /** Bytes >= 0x80. */
  high: number;
  cp1252Undefined: number;
}

/** Length of the valid UTF-8 sequence starting at i (0 if invalid) and how many bytes it consumed. */
function utf8At(buf: Uint8Array, i: number): { len: number; used: number } {
  const b = buf[i];
  let need: number, lo = 0x80, hi = 0xbf;
  if (b >= 0xc2 && b <= 0xdf) need = 1;
  else if (b >= 0xe0 && b <= 0xef) {
    need = 2;
    if (b === 0xe0) lo = 0xa0;
    if (b === 0xed) hi = 0x9f; // no surrogates
  } else if (b >= 0xf0 && b <= 0xf4) {
    need = 3;
    if (b === 0xf0) lo = 0x90;
    if (b === 0xf4) hi = 0x8f; // nothing above U+10FFFF
  } else return { len: 0, used: 1 };
  for (let k = 1; k <= need; k++) {
    const c = buf[i + k];
    const ok = c !== undefined && (k === 1 ? c >= lo && c <= hi : c >= 0x80 && c <= 0xbf);
    if (!ok) return { len: 0, used: k }; // the maximal invalid prefix is one replacement character
  }
  return { len: need + 1, used: need + 1 };
}

function scan(buf: Uint8Array, valid: boolean): Scan {
  const s: Scan = { chars: 0, controls: 0, invalid: 0, firstInvalid: -1, multi: 0, high: 0, cp1252Undefined: 0 };
  if (valid) {
    // fast path: characters are the bytes that do not continue a sequence
    for (let i = 0; i < buf.length; i++) {
      const b = buf[i];
      if (b < 0x80) {
        s.chars++;
        if (isControl(b)) s.controls++;
      } else {
        s.high++;
        if (b >= 0xc0) {
          s.chars++;
          s.multi++;
        }
      }
    }
    return s;
  }
  for (let i = 0; i < buf.length;) {
    const b = buf[i];
    if (b < 0x80) {
      s.chars++;
      if (isControl(b)) s.controls++;
      i++;
      continue;
    }
    const { len, used } = utf8At(buf, i);
    s.chars++;
    if (len) s.multi++;
    else {
      s.invalid++;
      if (s.firstInvalid < 0) s.firstInvalid = i;
    }
    i += used;
  }
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i];
    if (b >= 0x80) {
      s.high++;
      if (CP1252_UNDEFINED.has(b)) s.cp1252Undefined++;
    }
  }
  return s;
}

const pct = (x: number): string => `${Math.round(100 * x)}%`;

function binary(path: string, share: number): CorpusError {
  return new CorpusError(`data file looks binary (${pct(share)} of its characters are not text): ${path}; ` +
    `if it is text in a legacy encoding, convert it to UTF-8 (or read it with encoding 'latin1')`, path);
}

function refuseNul(buf: Uint8Array, path: string): void {
  const nul = buf.indexOf(0);
  if (nul < 0) return;
  const bom = buf.length >= 2 && ((buf[0] === 0xff && buf[1] === 0xfe) || (buf[0] === 0xfe && buf[1] === 0xff));
  if (bom) throw new CorpusError(`data file is UTF-16 text, which is not supported: ${path}; convert it to UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)`, path);
  throw new CorpusError(`data file looks binary (NUL byte at offset ${nul}): ${path}`, path);
}

function asLatin1(buf: Uint8Array, path: string, s: Scan, notice?: string): DecodedSource {
  const bad = s.controls + s.cp1252Undefined;
  if (bad > MAX_BAD_SHARE * buf.length) throw binary(path, bad / buf.length);
  return { bytes: Buffer.from(decodeWindows1252(buf), 'utf8'), encoding: 'latin1', ...(notice ? { notice } : {}) };
}

/**
 * Windows-1252 characters of bytes 0x80-0x9F (the rest is ISO-8859-1: byte = code point). The 5
 * undefined bytes keep their C1 code points, as the WHATWG decoder does. Written out because
 * Node's TextDecoder('windows-1252') decodes these bytes as ISO-8859-1 on some versions.
 */
const CP1252_HIGH = '\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f' +
  '\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178';

export function decodeWindows1252(buf: Uint8Array): string {
  const text = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('latin1');
  return /[\x80-\x9f]/.test(text) ? text.replace(/[\x80-\x9f]/g, (c) => CP1252_HIGH[c.charCodeAt(0) - 0x80]) : text;
}

/**
 * Read a data file's bytes as text under `encoding` (see the file comment), or throw a CorpusError
 * naming `path` when they are not text.
 */
export function decodeSource(buf: Uint8Array, path: string, encoding: TextEncodingOption = 'auto'): DecodedSource {
  if (!TEXT_ENCODINGS.includes(encoding)) throw new CorpusError(`unknown text encoding '${encoding}'; use one of ${TEXT_ENCODINGS.join(', ')}`);
  refuseNul(buf, path);
  const valid = isUtf8(buf);
  const s = scan(buf, valid && encoding !== 'latin1'); // the fast path does not count Windows-1252 gaps
  if (encoding === 'latin1') return asLatin1(buf, path, s);
  if (!valid && encoding === 'utf8') {
    throw new CorpusError(`data file is not valid UTF-8 (first invalid byte at offset ${s.firstInvalid}): ${path}; ` +
      `read it with encoding 'latin1' (or 'auto') if it is Latin-1 / Windows-1252 text, or convert it to UTF-8`, path);
  }
  if (valid || s.multi >= s.invalid) {
    const bad = s.controls + s.invalid;
    if (bad > MAX_BAD_SHARE * s.chars) throw binary(path, bad / s.chars);
    if (valid) return { bytes: buf, encoding: 'utf8' };
    return {
      bytes: buf, encoding: 'utf8',
      notice: `${path}: ${s.invalid} invalid UTF-8 sequence${s.invalid > 1 ? 's' : ''} (first at byte ${s.firstInvalid}) among ${s.multi} valid ones; ` +
        'read as UTF-8 (the invalid bytes become U+FFFD in text)',
    };
  }
  if (s.high > MAX_LATIN1_HIGH_SHARE * buf.length) throw binary(path, (s.controls + s.invalid) / s.chars);
  return asLatin1(buf, path, s, `${path}: not UTF-8 (first invalid byte at offset ${s.firstInvalid}); read as Latin-1 (Windows-1252)`);
}
