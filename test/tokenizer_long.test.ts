// gpt2 tokenization of very long pre-tokens: linear time, and normal text unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { getTokenizer, MAX_PRETOKEN, pieces } from '../src/data/tokenizer.js';
import { defaultCorpusFiles } from '../src/data/corpus.js';
import { readFileSync } from 'node:fs';

interface Bpe { encode(text: string, o: { allowedSpecial: Set<string>; disallowedSpecial: Set<string> }): number[] }
const lib = createRequire(import.meta.url)('gpt-tokenizer/encoding/r50k_base') as Bpe;
const plain = (text: string): number[] => lib.encode(text, { allowedSpecial: new Set(), disallowedSpecial: new Set() });
const gpt2 = getTokenizer('gpt2');

function timed<T>(fn: () => T): [T, number] {
  const t = process.hrtime.bigint();
  const r = fn();
  return [r, Number(process.hrtime.bigint() - t) / 1e9];
}

test('gpt2: 400 KB of one letter, 100 KB of one random word, long space runs tokenize in well under a few seconds', () => {
  const [ids, s] = timed(() => gpt2.encode('a'.repeat(400_000)));
  assert.ok(s < 3, `${s.toFixed(2)} s for 400 KB of "a"`);
  assert.equal(gpt2.decode(ids), 'a'.repeat(400_000));
  let x = 7;
  const word = Array.from({ length: 100_000 }, () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return String.fromCharCode(97 + ((x >>> 16) % 26));
  }).join('');
  const [ids2, s2] = timed(() => gpt2.encode(`x ${word} y`));
  assert.ok(s2 < 3, `${s2.toFixed(2)} s for a random 100 KB word`);
  assert.equal(gpt2.decode(ids2), `x ${word} y`);
  const [ids3, s3] = timed(() => gpt2.encode(' '.repeat(200_000) + '\n'.repeat(100_000) + '-'.repeat(100_000)));
  assert.ok(s3 < 3, `${s3.toFixed(2)} s for long whitespace and punctuation runs`);
  assert.equal(gpt2.decode(ids3), ' '.repeat(200_000) + '\n'.repeat(100_000) + '-'.repeat(100_000));
});

test('gpt2: text without long pre-tokens tokenizes exactly as gpt-tokenizer does', () => {
  const text = readFileSync(defaultCorpusFiles()[100], 'utf8');
  assert.deepEqual([...gpt2.encode(text)], plain(text));
  const tricky = 'It\'s  \n\n  a test\t\t of  "quotes" -- and 1234567 numbers,   日本語 🙂🙂 <|endoftext|>  \n';
  assert.deepEqual([...gpt2.encode(tricky)], plain(tricky));
  // a markdown rule of 100 dashes is below the bound: one pre-token, unchanged
  const rule = `# Title\n${'-'.repeat(100)}\ntext`;
  assert.deepEqual([...gpt2.encode(rule)], plain(rule));
});

test('gpt2: around a long pre-token, every token before and after it is the library\'s', () => {
  const long = 'z'.repeat(1000); // short enough for the library's quadratic merge to answer quickly
  /** [start, end, id] of each token in the text (ASCII text: each token decodes to its own span). */
  const spans = (ids: ArrayLike<number>): [number, number, number][] => {
    let o = 0;
    return Array.from(ids, (id) => {
      const s = o;
      o += gpt2.decode([id]).length;
      return [s, o, id];
    });
  };
  for (const [before, after] of [
    ['Some words here.', ' and after.'],
    ['Words then blank lines\n\n', '\n\nmore words'], // whitespace right before the long word
    ['tabs and spaces \t  ', '   \t end'],
    ['x\n \n', ''],
    ['', ''],
    ["it's", "'s there"],
    ['12345', '6789 ok'],
  ]) {
    const text = before + long + after;
    const from = before.length - (before.endsWith(' ') ? 1 : 0); // ' ?\p{L}+' takes one space
    const to = before.length + long.length;
    const mine = spans(gpt2.encode(text));
    const lib = spans(plain(text));
    assert.equal(mine[mine.length - 1][1], text.length);
    const pre = (sp: [number, number, number][]) => sp.filter(([, e]) => e <= from).map((t) => t[2]);
    const post = (sp: [number, number, number][]) => sp.filter(([s]) => s >= to).map((t) => t[2]);
    assert.deepEqual(pre(mine), pre(lib), `tokens before the long word in ${JSON.stringify(before)}`);
    assert.deepEqual(post(mine), post(lib), `tokens after the long word in ${JSON.stringify(after)}`);
    assert.ok(mine.every(([s, e]) => e <= from || s >= from), 'no token straddles the start of the long word');
    assert.equal(gpt2.decode(mine.map((t) => t[2])), text);
  }
});

test('pieces: bounded length, never inside a surrogate pair, concatenate back', () => {
  const s = 'ab' + '🙂'.repeat(200) + 'c';
  const ps = pieces(s, MAX_PRETOKEN);
  assert.equal(ps.join(''), s);
  for (const p of ps) {
    assert.ok(p.length <= MAX_PRETOKEN);
    assert.ok(!/[\ud800-\udbff]$/.test(p) && !/^[\udc00-\udfff]/.test(p), 'pair kept whole');
  }
  assert.deepEqual(pieces('abcdef', 4), ['abcd', 'ef']);
});
