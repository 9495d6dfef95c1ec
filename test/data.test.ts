import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, utimesSync, readdirSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/util/random.js';
import { getTokenizer } from '../src/data/tokenizer.js';
import { loadCorpus, resolveCorpusFiles, defaultCorpusFiles, CorpusError, decodeSource } from '../src/data/corpus.js';
import { splitTokens, checkSplit, BatchSampler, fixedValBatches, evalWindows, evalWindowCount, evalBatches } from '../src/data/loader.js';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'moelab-data-'));
}

// ---------------------------------------------------------------------------------------------
// random

test('xoshiro128** matches the reference sequence for state {1,2,3,4}', () => {
  const r = Rng.fromState({ s: [1, 2, 3, 4], spare: null });
  assert.deepEqual([r.nextU32(), r.nextU32(), r.nextU32(), r.nextU32()], [11520, 0, 5927040, 70819200]);
});

test('Rng: deterministic, streams differ, state round-trips through JSON', () => {
  const a = new Rng(42), b = new Rng(42), c = new Rng(42, 1), d = new Rng(43);
  const xs = Array.from({ length: 8 }, () => a.nextU32());
  assert.deepEqual(Array.from({ length: 8 }, () => b.nextU32()), xs);
  assert.notDeepEqual(Array.from({ length: 8 }, () => c.nextU32()), xs);
  assert.notDeepEqual(Array.from({ length: 8 }, () => d.nextU32()), xs);
  const r = new Rng(7);
  r.normal(); // leaves a cached spare in the state
  const saved = JSON.parse(JSON.stringify(r.getState()));
  const want = [r.normal(), r.uniform(), r.int(1000), r.normal(), r.normal()];
  const r2 = Rng.fromState(saved);
  assert.deepEqual([r2.normal(), r2.uniform(), r2.int(1000), r2.normal(), r2.normal()], want);
  assert.throws(() => r2.setState({ s: [0, 0, 0, 0], spare: null }), /all-zero/);
  assert.throws(() => r2.setState({ s: [1, 2, 3] as unknown as [number, number, number, number], spare: null }), /invalid RNG state/);
  assert.throws(() => new Rng(-1), /seed/);
});

test('Rng: uniform / int / normal distributions', () => {
  const r = new Rng(1);
  const n = 200_000;
  let s = 0, s2 = 0, mn = 1, mx = 0;
  for (let i = 0; i < n; i++) {
    const u = r.uniform();
    s += u; mn = Math.min(mn, u); mx = Math.max(mx, u);
  }
  assert.ok(mn >= 0 && mx < 1);
  assert.ok(Math.abs(s / n - 0.5) < 0.005);
  const counts = new Array(7).fill(0);
  for (let i = 0; i < 70_000; i++) counts[r.int(7)]++;
  for (const c of counts) assert.ok(Math.abs(c - 10_000) < 400, `int(7) bucket ${c}`);
  assert.ok(r.int(2 ** 40) < 2 ** 40);
  assert.throws(() => r.int(0), /positive integer/);
  s = 0;
  for (let i = 0; i < n; i++) {
    const z = r.normal();
    s += z; s2 += z * z;
  }
  assert.ok(Math.abs(s / n) < 0.01, `mean ${s / n}`);
  assert.ok(Math.abs(s2 / n - 1) < 0.02, `var ${s2 / n}`);
  const w = r.fillNormal(new Float32Array(1000), 0, 0.02);
  assert.ok(w.every((v) => Math.abs(v) < 0.2));
  const perm = r.shuffle(Array.from({ length: 20 }, (_, i) => i));
  assert.deepEqual([...perm].sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i));
});

// ---------------------------------------------------------------------------------------------
// tokenizers

test('bytes tokenizer: UTF-8 round trip, vocab 256', () => {
  const t = getTokenizer('bytes');
  assert.equal(t.vocabSize, 256);
  const text = 'Fellow-Citizens — naïve 日本 🙂\n';
  const ids = t.encode(text);
  assert.ok(ids instanceof Uint16Array);
  assert.equal(ids.length, Buffer.byteLength(text));
  assert.equal(t.decode(ids), text);
  assert.equal(t.countBytes(ids), ids.length);
  assert.deepEqual(t.encodeBytes(new Uint8Array([0xff, 0x41])), new Uint16Array([0xff, 0x41]));
  assert.equal(t.decode([0xe6, 0x97]), '\ufffd'); // cut mid-character: replacement, no throw
  assert.throws(() => t.decode([300]), /outside the vocabulary/);
  assert.throws(() => getTokenizer('bpe'), /unknown tokenizer 'bpe'; available: bytes, gpt2/);
});

test('gpt2 tokenizer: r50k ids, special-token text stays text', () => {
  const t = getTokenizer('gpt2');
  assert.equal(t.vocabSize, 50257);
  assert.deepEqual([...t.encode('Hello world')], [15496, 995]);
  const text = 'The State of the Union <|endoftext|> is strong. 日本';
  const ids = t.encode(text);
  assert.ok(!ids.includes(50256), 'no <|endoftext|> token injected');
  assert.equal(t.decode(ids), text);
  assert.equal(t.countBytes(ids), Buffer.byteLength(text));
  assert.equal(getTokenizer('gpt2'), t, 'cached instance');
});

// ---------------------------------------------------------------------------------------------
// corpus

test('corpus: files and folders, recursive sorted walk, skips non-text names, newline separators', () => {
  const dir = tmp();
  try {
    mkdirSync(join(dir, 'b', 'sub'), { recursive: true });
    mkdirSync(join(dir, '.git'));
    writeFileSync(join(dir, 'b', 'z.txt'), 'zed\n');
    writeFileSync(join(dir, 'b', 'a.md'), 'alpha'); // no trailing newline: one is added
    writeFileSync(join(dir, 'b', 'sub', 'm'), 'middle\n');
    writeFileSync(join(dir, 'b', 'img.png'), Buffer.from([0x89, 0x50, 0, 0]));
    writeFileSync(join(dir, 'b', 'empty.txt'), '');
    writeFileSync(join(dir, '.git', 'HEAD'), 'ref');
    writeFileSync(join(dir, 'single.txt'), 'one');
    const tok = getTokenizer('bytes');
    const c = loadCorpus([join(dir, 'single.txt'), join(dir, 'b')], tok, { cache: false });
    assert.deepEqual(c.files, [join(dir, 'single.txt'), join(dir, 'b', 'a.md'), join(dir, 'b', 'sub', 'm'), join(dir, 'b', 'z.txt')]);
    assert.deepEqual(c.skipped, [join(dir, 'b', 'img.png')]);
    assert.equal(tok.decode(c.tokens), 'one\nalpha\nmiddle\nzed\n');
    assert.equal(c.bytes, c.tokens.length);
    assert.equal(c.cached, false);
    const g = loadCorpus([join(dir, 'b')], getTokenizer('gpt2'), { cache: false });
    assert.equal(getTokenizer('gpt2').decode(g.tokens), 'alpha\nmiddle\nzed\n');
    assert.equal(g.bytes, 'alpha\nmiddle\nzed\n'.length);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('corpus: clear errors naming the path', () => {
  const dir = tmp();
  const tok = getTokenizer('bytes');
  const err = (paths: string[], re: RegExp) => assert.throws(() => loadCorpus(paths, tok, { cache: false }), (e: unknown) => e instanceof CorpusError && re.test((e as Error).message));
  try {
    err([join(dir, 'missing.txt')], /data path not found: .*missing\.txt/);
    writeFileSync(join(dir, 'empty.txt'), '');
    err([join(dir, 'empty.txt')], /data file is empty: .*empty\.txt/);
    mkdirSync(join(dir, 'nothing'));
    writeFileSync(join(dir, 'nothing', 'x.png'), 'not really');
    err([join(dir, 'nothing')], /data folder has no non-empty text files: .*nothing/);
    writeFileSync(join(dir, 'nul.txt'), Buffer.from('text\0more'));
    err([join(dir, 'nul.txt')], /looks binary \(NUL byte at offset 4\): .*nul\.txt/);
    const junk = Buffer.alloc(1000);
    for (let i = 0; i < junk.length; i++) junk[i] = 0x80 + (i % 64); // invalid UTF-8 continuation bytes
    writeFileSync(join(dir, 'junk.txt'), junk);
    err([join(dir, 'junk.txt')], /looks binary \(\d+% of its characters are not text\): .*junk\.txt/);
    // a folder with a binary file under a text name is rejected too
    mkdirSync(join(dir, 'mixed'));
    writeFileSync(join(dir, 'mixed', 'a.txt'), 'fine');
    writeFileSync(join(dir, 'mixed', 'b.txt'), Buffer.from([1, 2, 0, 3]));
    err([join(dir, 'mixed')], /looks binary .*b\.txt/);
    if (process.getuid?.() !== 0) {
      writeFileSync(join(dir, 'secret.txt'), 'x');
      chmodSync(join(dir, 'secret.txt'), 0o000);
      err([join(dir, 'secret.txt')], /cannot read data file .*secret\.txt/);
    }
    // Latin-1 / mostly-ASCII text with a few invalid bytes is still text
    assert.equal(decodeSource(Buffer.from('caf\xe9 au lait, '.repeat(5) + 'plain ascii '.repeat(20), 'latin1'), 'x').encoding, 'latin1');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('corpus: token cache reused while files are unchanged, rebuilt when they change', () => {
  const dir = tmp();
  try {
    const cacheDir = join(dir, 'cache');
    const f = join(dir, 'a.txt');
    writeFileSync(f, 'hello cache\n');
    const tok = getTokenizer('bytes');
    const c1 = loadCorpus([f], tok, { cacheDir });
    assert.equal(c1.cached, false);
    assert.equal(readdirSync(cacheDir).filter((n) => n.endsWith('.safetensors')).length, 1);
    const c2 = loadCorpus([f], tok, { cacheDir });
    assert.equal(c2.cached, true);
    assert.deepEqual(c2.tokens, c1.tokens);
    assert.equal(c2.bytes, c1.bytes);
    // another tokenizer has its own entry
    assert.equal(loadCorpus([f], getTokenizer('gpt2'), { cacheDir }).cached, false);
    // a changed file (size and mtime) is re-read
    writeFileSync(f, 'hello changed cache\n');
    utimesSync(f, new Date(), new Date(Date.now() + 5000));
    const c3 = loadCorpus([f], tok, { cacheDir });
    assert.equal(c3.cached, false);
    assert.equal(tok.decode(c3.tokens), 'hello changed cache\n');
    // a damaged cache file is ignored and rebuilt
    for (const n of readdirSync(cacheDir)) writeFileSync(join(cacheDir, n), 'garbage');
    const c4 = loadCorpus([f], tok, { cacheDir });
    assert.equal(c4.cached, false);
    assert.equal(tok.decode(c4.tokens), 'hello changed cache\n');
    assert.equal(loadCorpus([f], tok, { cacheDir }).cached, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('default corpus: the 233 State of the Union addresses', () => {
  const files = defaultCorpusFiles();
  assert.equal(files.length, 233);
  assert.ok(files[0].endsWith('1790_george_washington_n.txt'));
  assert.deepEqual(resolveCorpusFiles([]).files, files);
  const dir = tmp();
  try {
    const c = loadCorpus([], getTokenizer('bytes'), { cacheDir: dir });
    assert.equal(c.files.length, 233);
    // 10,761,413 bytes of text plus a newline after each file that lacks one
    assert.ok(c.bytes >= 10_761_413 && c.bytes < 10_761_413 + 233, `bytes ${c.bytes}`);
    assert.equal(c.tokens.length, c.bytes);
    assert.equal(getTokenizer('bytes').decode(c.tokens.subarray(0, 22)), 'Fellow-Citizens of the');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// loader

const seqTokens = (n: number): Uint16Array => Uint16Array.from({ length: n }, (_, i) => i % 65536);

test('split: first 1 - valFraction train, rest validation (like int(0.9 * n))', () => {
  const t = seqTokens(1001);
  const s = splitTokens(t, 0.1);
  assert.equal(s.train.length, Math.floor(0.9 * 1001));
  assert.equal(s.train.length + s.val.length, 1001);
  assert.equal(s.val[0], s.train.length);
  assert.throws(() => splitTokens(t, 0), /valFraction/);
  assert.throws(() => checkSplit(splitTokens(seqTokens(100), 0.1), 16), /corpus too small: the validation split has 10 tokens, a window needs seq \+ 1 = 17/);
  assert.doesNotThrow(() => checkSplit(s, 16));
});

test('BatchSampler: y is x shifted by one, windows in range, deterministic, resumable', () => {
  const t = seqTokens(5000);
  const sm = new BatchSampler(t, 4, 16, 3);
  const b = sm.next();
  assert.equal(b.x.length, 64);
  assert.ok(b.x instanceof Int32Array && b.y instanceof Int32Array);
  for (let r = 0; r < 4; r++) {
    const start = b.x[r * 16];
    assert.ok(start >= 0 && start + 16 < 5000);
    for (let i = 0; i < 16; i++) {
      assert.equal(b.x[r * 16 + i], start + i);
      assert.equal(b.y[r * 16 + i], start + i + 1);
    }
  }
  const again = new BatchSampler(t, 4, 16, 3);
  assert.deepEqual(again.next(), b);
  assert.notDeepEqual(new BatchSampler(t, 4, 16, 4).next().x, b.x);
  // resume: state saved after k batches gives the same continuation
  const s1 = new BatchSampler(t, 4, 16, 9);
  s1.next(); s1.next();
  const state = JSON.parse(JSON.stringify(s1.getState()));
  const cont = [s1.next(), s1.next()];
  const s2 = new BatchSampler(t, 4, 16, 0);
  s2.setState(state);
  assert.deepEqual([s2.next(), s2.next()], cont);
  assert.equal(s2.getState().drawn, 4);
  // every start position is reachable, including the last (window ends at the final token)
  const small = new BatchSampler(seqTokens(20), 64, 16, 1);
  const starts = new Set<number>();
  for (let i = 0; i < 20; i++) {
    const bb = small.next();
    for (let r = 0; r < 64; r++) starts.add(bb.x[r * 16]);
  }
  assert.deepEqual([...starts].sort((x, y) => x - y), [0, 1, 2, 3]);
  assert.throws(() => new BatchSampler(seqTokens(16), 1, 16), /corpus too small/);
});

test('fixedValBatches: same batches every time, independent of training', () => {
  const v = seqTokens(3000);
  const a = fixedValBatches(v, 2, 32, 4);
  const b = fixedValBatches(v, 2, 32, 4);
  assert.equal(a.length, 4);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a[0].x, a[1].x);
  for (const bt of a) for (let i = 0; i < bt.x.length; i++) assert.equal(bt.y[i], bt.x[i] + 1);
});

test('evalWindows: every token after the first predicted exactly once, final window shorter', () => {
  for (const [n, seq] of [[101, 10], [100, 10], [11, 10], [2, 10], [1, 10], [57, 7]] as const) {
    const t = seqTokens(n);
    const ws = [...evalWindows(t, seq)];
    assert.equal(ws.length, evalWindowCount(n, seq), `count n=${n} seq=${seq}`);
    const predicted: number[] = [];
    ws.forEach((w, i) => {
      assert.equal(w.start, i * seq);
      assert.ok(w.length <= seq && w.length > 0);
      if (i < ws.length - 1) assert.equal(w.length, seq);
      for (let j = 0; j < w.length; j++) {
        assert.equal(w.x[j], w.start + j);
        assert.equal(w.y[j], w.start + j + 1);
        predicted.push(w.y[j]);
      }
    });
    assert.deepEqual(predicted, Array.from({ length: Math.max(0, n - 1) }, (_, i) => i + 1));
  }
  const batches = [...evalBatches(seqTokens(101), 10, 4)];
  assert.deepEqual(batches.map((b) => [b.batch, b.seq, b.tokens]), [[4, 10, 40], [4, 10, 40], [2, 10, 20]]);
  const tail = [...evalBatches(seqTokens(96), 10, 4)];
  assert.deepEqual(tail.map((b) => [b.batch, b.seq]), [[4, 10], [4, 10], [1, 10], [1, 5]]);
  assert.equal(tail.reduce((s, b) => s + b.tokens, 0), 95);
});
