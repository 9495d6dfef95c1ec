// The token cache: keyed by content, verified on read, LRU-bounded, safe with concurrent writers;
// and the data identity a run records.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, readdirSync, statSync, utimesSync, renameSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getTokenizer } from '../src/data/tokenizer.js';
import { loadCorpus } from '../src/data/corpus.js';
import { evictCache } from '../src/data/tokencache.js';
import { dataIdentity, describeDataChange } from '../src/data/identity.js';

const bytesTok = getTokenizer('bytes');

function withDir(fn: (dir: string) => void | Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'moelab-cache-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

const entries = (dir: string): string[] => readdirSync(dir).filter((n) => n.endsWith('.safetensors')).sort();

test('cache: same size and mtime but different content is re-tokenised', withDir((dir) => {
  const cacheDir = join(dir, 'cache');
  const f = join(dir, 'a.txt');
  const when = new Date('2020-01-02T03:04:05Z');
  writeFileSync(f, 'first version\n');
  utimesSync(f, when, when);
  const c1 = loadCorpus([f], bytesTok, { cacheDir });
  assert.equal(loadCorpus([f], bytesTok, { cacheDir }).cached, true);
  writeFileSync(f, 'other version\n'); // same length
  utimesSync(f, when, when);
  assert.equal(statSync(f).size, c1.bytes);
  const c2 = loadCorpus([f], bytesTok, { cacheDir });
  assert.equal(c2.cached, false);
  assert.equal(bytesTok.decode(c2.tokens), 'other version\n');
  assert.notEqual(c2.dataHash, c1.dataHash);
  // the content, not the path, is the key: a copy elsewhere hits the same entry
  const copy = join(dir, 'copy.txt');
  writeFileSync(copy, 'other version\n');
  const c3 = loadCorpus([copy], bytesTok, { cacheDir });
  assert.equal(c3.cached, true);
  assert.equal(c3.dataHash, c2.dataHash);
  assert.deepEqual(c3.files, [copy]);
}));

test('cache: an entry whose tokens were altered (header intact) is a miss and is rebuilt', withDir((dir) => {
  const cacheDir = join(dir, 'cache');
  const f = join(dir, 'a.txt');
  writeFileSync(f, 'hello checksum\n');
  loadCorpus([f], bytesTok, { cacheDir });
  const [name] = entries(cacheDir);
  const p = join(cacheDir, name);
  const raw = readFileSync(p);
  raw[raw.length - 2] ^= 1; // flip a bit in the last token
  writeFileSync(p, raw);
  const c = loadCorpus([f], bytesTok, { cacheDir });
  assert.equal(c.cached, false);
  assert.equal(bytesTok.decode(c.tokens), 'hello checksum\n');
  assert.equal(loadCorpus([f], bytesTok, { cacheDir }).cached, true);
}));

test('cache: bounded size, least recently used entries evicted, stale temp files removed', withDir((dir) => {
  const cacheDir = join(dir, 'cache');
  const make = (name: string): string => {
    const f = join(dir, name);
    writeFileSync(f, name.repeat(1 + Math.floor(1000 / name.length)) + '\n');
    return f;
  };
  const [a, b, c] = [make('aaa.txt'), make('bbb.txt'), make('ccc.txt')];
  const limit = 5600; // room for two entries of ~2.4 KB (1 KB of text as u16 tokens + header)
  loadCorpus([a], bytesTok, { cacheDir, cacheMaxBytes: limit });
  const [ea] = entries(cacheDir);
  loadCorpus([b], bytesTok, { cacheDir, cacheMaxBytes: limit });
  const eb = entries(cacheDir).find((n) => n !== ea)!;
  const size = statSync(join(cacheDir, ea)).size;
  assert.ok(2 * size <= limit && 3 * size > limit, `entry size ${size}`);
  const t = Date.now() / 1000;
  utimesSync(join(cacheDir, ea), t - 100, t - 100);
  utimesSync(join(cacheDir, eb), t - 50, t - 50);
  // a hit marks `a` as recently used, so `b` is now the oldest
  assert.equal(loadCorpus([a], bytesTok, { cacheDir, cacheMaxBytes: limit }).cached, true);
  assert.ok(statSync(join(cacheDir, ea)).mtimeMs > (t - 10) * 1000);
  const oldTemp = join(cacheDir, `${ea}.tmp-999999-deadbeef`);
  const newTemp = join(cacheDir, `${ea}.tmp-999999-feedf00d`);
  writeFileSync(oldTemp, 'left by a killed writer');
  writeFileSync(newTemp, 'being written right now');
  utimesSync(oldTemp, t - 7200, t - 7200);
  loadCorpus([c], bytesTok, { cacheDir, cacheMaxBytes: limit });
  const left = entries(cacheDir);
  assert.equal(left.length, 2);
  assert.ok(left.includes(ea) && !left.includes(eb), `kept ${left}`);
  assert.deepEqual(readdirSync(cacheDir).filter((n) => n.includes('.tmp-')), [`${ea}.tmp-999999-feedf00d`]);
  assert.equal(loadCorpus([a], bytesTok, { cacheDir }).cached, true);
  assert.equal(loadCorpus([b], bytesTok, { cacheDir }).cached, false, 'evicted entry is rebuilt');
  // a limit of 0 keeps only the entry being used; other files in the folder are not touched
  writeFileSync(join(cacheDir, 'notes.txt'), 'mine');
  const removed = evictCache(cacheDir, 0, join(cacheDir, ea));
  assert.equal(removed.length, 2);
  assert.deepEqual(entries(cacheDir), [ea]);
  assert.ok(readdirSync(cacheDir).includes('notes.txt'));
  assert.throws(() => loadCorpus([a], bytesTok, { cacheDir, cacheMaxBytes: -1 }), /cacheMaxBytes must be a number >= 0/);
}));

test('cache: concurrent processes tokenising the same corpus each get a whole, correct entry', withDir(async (dir) => {
  const cacheDir = join(dir, 'cache');
  const f = join(dir, 'big.txt');
  const lines: string[] = [];
  for (let i = 0; i < 40_000; i++) lines.push(`line ${i} of a corpus written by one process and read by several ${i * 7919 % 10007}`);
  writeFileSync(f, lines.join('\n') + '\n');
  const want = createHash('sha256').update(new Uint8Array(loadCorpus([f], bytesTok, { cache: false }).tokens.buffer)).digest('hex');
  const corpusJs = fileURLToPath(new URL('../src/data/corpus.js', import.meta.url));
  const tokJs = fileURLToPath(new URL('../src/data/tokenizer.js', import.meta.url));
  const script = `
    import { loadCorpus } from ${JSON.stringify(corpusJs)};
    import { getTokenizer } from ${JSON.stringify(tokJs)};
    import { createHash } from 'node:crypto';
    for (let i = 0; i < 3; i++) {
      const c = loadCorpus([${JSON.stringify(f)}], getTokenizer('bytes'), { cacheDir: ${JSON.stringify(cacheDir)} });
      console.log(createHash('sha256').update(new Uint8Array(c.tokens.buffer)).digest('hex'), c.cached);
    }`;
  const run = (): Promise<string> => new Promise((res, rej) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => (code === 0 ? res(out) : rej(new Error(`child exited ${code}: ${err}`))));
  });
  const outs = await Promise.all([run(), run(), run()]);
  for (const o of outs) {
    const rows = o.trim().split('\n');
    assert.equal(rows.length, 3);
    for (const r of rows) assert.equal(r.split(' ')[0], want, 'every process got the right tokens');
  }
  assert.equal(entries(cacheDir).length, 1);
  assert.deepEqual(readdirSync(cacheDir).filter((n) => n.includes('.tmp-')), [], 'no temp files left');
  const hit = loadCorpus([f], bytesTok, { cacheDir });
  assert.equal(hit.cached, true);
  assert.equal(createHash('sha256').update(new Uint8Array(hit.tokens.buffer)).digest('hex'), want);
}));

test('data identity: file hashes and one data hash; describeDataChange says what changed', withDir((dir) => {
  const a = join(dir, 'a.txt'), b = join(dir, 'b.txt');
  writeFileSync(a, 'alpha\n');
  writeFileSync(b, 'beta\n');
  const c = loadCorpus([a, b], bytesTok, { cache: false });
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  assert.deepEqual(c.sources, [{ path: a, sha256: sha('alpha\n'), size: 6 }, { path: b, sha256: sha('beta\n'), size: 5 }]);
  assert.equal(c.dataHash, createHash('sha256').update(JSON.stringify([sha('alpha\n'), sha('beta\n')])).digest('hex'));
  const before = JSON.parse(JSON.stringify(dataIdentity(c)));
  assert.equal(describeDataChange(before, dataIdentity(loadCorpus([a, b], bytesTok, { cache: false }))), null);
  // moved files with the same content are the same data
  const moved = join(dir, 'moved.txt');
  renameSync(b, moved);
  assert.equal(describeDataChange(before, dataIdentity(loadCorpus([a, moved], bytesTok, { cache: false }))), null);
  renameSync(moved, b);
  assert.equal(describeDataChange(before, dataIdentity(loadCorpus([b, a], bytesTok, { cache: false }))),
    "the data differs from the run's: the same files are read in a different order");
  writeFileSync(b, 'BETA\n');
  const c2 = join(dir, 'c.txt');
  writeFileSync(c2, 'gamma\n');
  assert.equal(describeDataChange(before, dataIdentity(loadCorpus([b, c2], bytesTok, { cache: false }))),
    `the data differs from the run's: 1 file(s) changed (${b}); 1 file(s) added (${c2}); 1 file(s) removed (${a})`);
}));
