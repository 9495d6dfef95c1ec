// Reading data files as text: UTF-8, Latin-1 (Windows-1252), damaged UTF-8, binary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getTokenizer } from '../src/data/tokenizer.js';
import { loadCorpus, decodeSource, CorpusError } from '../src/data/corpus.js';

const latin1Text = 'Le caf\xe9 est tr\xe8s chaud, na\xefve fa\xe7ade \x93quoted\x94 \xa3 5.\n'.repeat(20);
const latin1Bytes = Buffer.from(latin1Text, 'latin1');
const expected = latin1Text.replace(/\x93/g, '\u201c').replace(/\x94/g, '\u201d'); // Windows-1252 quotes

const refused = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e: unknown) => e instanceof CorpusError && re.test((e as Error).message), `expected ${re}`);

test('encoding auto: valid UTF-8 is passed through unchanged, no notice', () => {
  const buf = Buffer.from('naïve café — 日本 🙂\n', 'utf8');
  const d = decodeSource(buf, 'f.txt');
  assert.equal(d.encoding, 'utf8');
  assert.equal(d.bytes, buf);
  assert.equal(d.notice, undefined);
});

test('encoding auto: Latin-1 / Windows-1252 text is decoded as such, with a notice', () => {
  const d = decodeSource(latin1Bytes, 'old.txt');
  assert.equal(d.encoding, 'latin1');
  assert.equal(Buffer.from(d.bytes).toString('utf8'), expected);
  assert.match(d.notice!, /old\.txt: not UTF-8 \(first invalid byte at offset 6\); read as Latin-1 \(Windows-1252\)/);
  // explicit latin1 gives the same, without a notice; latin1 on pure ASCII is the identity
  const e = decodeSource(latin1Bytes, 'old.txt', 'latin1');
  assert.equal(Buffer.from(e.bytes).toString('utf8'), expected);
  assert.equal(e.notice, undefined);
  assert.equal(Buffer.from(decodeSource(Buffer.from('plain\n'), 'a', 'latin1').bytes).toString(), 'plain\n');
  // every byte 0x20-0xFF but the 5 undefined ones maps to its Windows-1252 character
  const all = Buffer.from(Array.from({ length: 224 }, (_, i) => i + 0x20));
  const t = Buffer.from(decodeSource(all, 'all', 'latin1').bytes).toString('utf8');
  assert.equal(t.length, 224);
  assert.equal(t.slice(0x80 - 0x20, 0xa0 - 0x20), '€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008dŽ\u008f\u0090‘’“”•–—˜™š›œ\u009džŸ');
  assert.equal(t.slice(0xa0 - 0x20), Buffer.from(all.subarray(0xa0 - 0x20)).toString('latin1'));
});

test('encoding utf8: invalid UTF-8 is refused, naming the offset and the option', () => {
  refused(() => decodeSource(latin1Bytes, 'old.txt', 'utf8'), /data file is not valid UTF-8 \(first invalid byte at offset 6\): old\.txt; read it with encoding 'latin1'/);
  assert.equal(decodeSource(Buffer.from('ok ✓\n'), 'a', 'utf8').encoding, 'utf8');
  refused(() => decodeSource(Buffer.from('x'), 'a', 'ebcdic' as never), /unknown text encoding 'ebcdic'; use one of utf8, latin1, auto/);
});

test('encoding auto: UTF-8 with a few damaged bytes stays UTF-8, with a notice', () => {
  const buf = Buffer.concat([Buffer.from('日本語のテキスト '.repeat(10)), Buffer.from([0xff]), Buffer.from(' fin\n')]);
  const d = decodeSource(buf, 'cut.txt');
  assert.equal(d.encoding, 'utf8');
  assert.equal(d.bytes, buf);
  assert.match(d.notice!, /cut\.txt: 1 invalid UTF-8 sequence \(first at byte \d+\) among \d+ valid ones; read as UTF-8/);
});

test('binary content is still refused with a clear message', () => {
  refused(() => decodeSource(Buffer.from('text\0more'), 'nul.bin'), /looks binary \(NUL byte at offset 4\): nul\.bin/);
  refused(() => decodeSource(Buffer.from('text\0more'), 'nul.bin', 'latin1'), /looks binary \(NUL byte/);
  refused(() => decodeSource(Buffer.from('\ufeffhello', 'utf16le').subarray(0), 'w.txt'), /UTF-16 text, which is not supported: w\.txt; convert it to UTF-8/);
  const ctrl = Buffer.alloc(400, 0x41);
  for (let i = 0; i < 400; i += 3) ctrl[i] = 0x01;
  refused(() => decodeSource(ctrl, 'c.bin'), /looks binary \(\d+% of its characters are not text\): c\.bin/);
  refused(() => decodeSource(ctrl, 'c.bin', 'latin1'), /looks binary/);
  // random high bytes: neither UTF-8 nor plausible Latin-1 text
  const rnd = Buffer.alloc(2000);
  let x = 12345;
  for (let i = 0; i < rnd.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    rnd[i] = 0x20 + ((x >>> 16) % 0xe0);
  }
  refused(() => decodeSource(rnd, 'r.bin'), /looks binary \(\d+% of its characters are not text\): r\.bin; if it is text in a legacy encoding/);
});

test('loadCorpus: encoding option, Latin-1 notice also on a cache hit, keyed by the option', () => {
  const dir = mkdtempSync(join(tmpdir(), 'moelab-enc-'));
  try {
    const f = join(dir, 'old.txt');
    writeFileSync(f, latin1Bytes);
    const cacheDir = join(dir, 'cache');
    for (const name of ['bytes', 'gpt2'] as const) {
      const tok = getTokenizer(name);
      const c = loadCorpus([f], tok, { cacheDir });
      assert.equal(tok.decode(c.tokens), expected);
      assert.equal(c.bytes, Buffer.byteLength(expected));
      assert.equal(c.encoding, 'auto');
      assert.equal(c.notices.length, 1);
      assert.match(c.notices[0], /read as Latin-1/);
      const again = loadCorpus([f], tok, { cacheDir });
      assert.equal(again.cached, true);
      assert.deepEqual(again.notices, c.notices);
      assert.deepEqual(again.tokens, c.tokens);
      const l = loadCorpus([f], tok, { cacheDir, encoding: 'latin1' });
      assert.equal(l.cached, false, 'another option is another cache entry');
      assert.deepEqual(l.tokens, c.tokens);
      assert.deepEqual(l.notices, []);
    }
    refused(() => loadCorpus([f], getTokenizer('bytes'), { cacheDir, encoding: 'utf8' }), /not valid UTF-8 .*old\.txt/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
