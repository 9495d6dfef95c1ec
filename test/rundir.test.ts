import { test } from 'node:test';
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareRunDir, openRunWriter, checkRunName, RunDirError, RUN_MARKER } from '../src/train/rundir.js';
import { saveCheckpoint, loadCheckpoint, STATE_FILE, MODEL_FILE } from '../src/train/checkpoint.js';
import { RunLockedError, LOCK_FILE } from '../src/io/lock.js';

function withDir(fn: (root: string) => void): () => void {
  return () => {
    const root = mkdtempSync(join(tmpdir(), 'moelab-rundir-'));
    try {
      fn(root);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  };
}

function refused(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof RunDirError, `RunDirError expected, got ${e}`);
    assert.match((e as Error).message, re);
    return true;
  });
}

/** Names, sizes and contents: equal snapshots mean the folder was not written. */
function snapshot(dir: string): string[] {
  return readdirSync(dir).sort().map((f) => `${f} ${statSync(join(dir, f)).mtimeMs} ${readFileSync(join(dir, f), 'utf8')}`);
}

const tiny = { shape: [2], data: new Float32Array([1, 2]) };
const save = (dir: string, step: number, lock?: Parameters<typeof saveCheckpoint>[2]) =>
  saveCheckpoint(dir, { model: { w: tiny }, optimizer: { m: tiny }, config: { name: 'x' }, state: { step } }, lock);

test("--out '' is refused and nothing is written in the current folder", () => {
  const before = readdirSync('.');
  refused(() => prepareRunDir('', { resume: false }), /the run folder is empty \(--out ''\): give a folder/);
  refused(() => prepareRunDir('  ', { resume: false }), /the run folder is empty/);
  refused(() => openRunWriter('', { resume: false }), /the run folder is empty/);
  assert.deepEqual(readdirSync('.'), before);
});

test('new and empty folders are created and marked; resume needs a checkpoint', withDir((root) => {
  const fresh = join(root, 'runs', 'a');
  refused(() => prepareRunDir(fresh, { resume: true }), /nothing to resume: .*runs\/a does not exist/);
  assert.equal(existsSync(join(root, 'runs')), false, 'a refused resume creates nothing');
  assert.deepEqual(prepareRunDir(fresh, { resume: false }), { dir: fresh, was: 'new', hasCheckpoint: false });
  assert.deepEqual(readdirSync(fresh), [RUN_MARKER]);
  assert.throws(() => loadCheckpoint(fresh), /no checkpoint yet: this moelab run has not saved one \(state\.json is missing\); if it is training, wait for its first save/);
  const empty = join(root, 'empty');
  mkdirSync(empty);
  refused(() => prepareRunDir(empty, { resume: true }), /nothing to resume: .*empty is empty/);
  assert.deepEqual(readdirSync(empty), []);
  assert.equal(prepareRunDir(empty, { resume: false }).was, 'empty');
  // a run that crashed before its first checkpoint is ours: it may start again, not resume
  writeFileSync(join(empty, 'metrics.jsonl'), '{}\n');
  assert.deepEqual(prepareRunDir(empty, { resume: false }), { dir: empty, was: 'run', hasCheckpoint: false });
  refused(() => prepareRunDir(empty, { resume: true }), /nothing to resume: .* has no checkpoint yet \(state\.json is missing\); start it without --resume/);
}));

test('a folder that is not a moelab run is refused and left untouched', withDir((root) => {
  const file = join(root, 'file');
  writeFileSync(file, 'x');
  refused(() => prepareRunDir(file, { resume: false }), /is a file, not a folder/);

  const foreign = join(root, 'photos');
  mkdirSync(foreign);
  for (const f of ['config.json', 'b.jpg', 'c.jpg', 'd.jpg', 'e.jpg', 'f.jpg']) writeFileSync(join(foreign, f), f);
  const before = snapshot(foreign);
  refused(() => prepareRunDir(foreign, { resume: false }), /photos is not empty and not a moelab run \(it holds b\.jpg, c\.jpg, config\.json, d\.jpg, e\.jpg, \.\.\. \(6 entries\)\)\. moelab will not write into it/);
  refused(() => prepareRunDir(foreign, { resume: true }), /not a moelab run/);
  refused(() => openRunWriter(foreign, { resume: false }), /not a moelab run/);
  assert.deepEqual(snapshot(foreign), before);

  // a state.json that is not ours (another program's, or garbage)
  for (const text of ['{"format":"other-tool","step":3}', '{not json']) {
    writeFileSync(join(foreign, STATE_FILE), text);
    const b = snapshot(foreign);
    refused(() => prepareRunDir(foreign, { resume: true }), /its state\.json is not a moelab checkpoint \(unreadable or written by another program\)/);
    refused(() => prepareRunDir(foreign, { resume: false }), /not a moelab checkpoint/);
    assert.deepEqual(snapshot(foreign), b);
  }
}));

test('a moelab run: resume it, or refuse to start over it', withDir((root) => {
  const dir = join(root, 'run');
  save(dir, 3); // a run from before the marker existed: recognised by its state.json
  refused(() => prepareRunDir(dir, { resume: false }), /run already holds a checkpoint \(step 3\): pass --resume to continue it, or choose another --out/);
  assert.deepEqual(prepareRunDir(dir, { resume: true }), { dir, was: 'run', hasCheckpoint: true });
  assert.ok(existsSync(join(dir, RUN_MARKER)), 'marked as ours now');
}));

test('run names are one safe path component', () => {
  for (const ok of ['tiny', 'moe-64.d256_v2', 'a b']) assert.equal(checkRunName(ok), ok);
  for (const [bad, why] of [['../../victim', /path separator/], ['a/b', /path separator/], ['a\\b', /path separator/], ['..', /parent or current/],
    ['.', /parent or current/], ['', /empty/], ['-rf', /starts with '-'/], ['a\u0001', /control characters/], ['x'.repeat(201), /longer than 200/]] as const) {
    refused(() => checkRunName(bad), why);
  }
});

test('openRunWriter: validates, locks, revalidates, recovers; a second writer is refused', withDir((root) => {
  const dir = join(root, 'run');
  const w = openRunWriter(dir, { resume: false, command: 'moelab train --out run' });
  assert.equal(w.was, 'new');
  assert.equal(w.hasCheckpoint, false);
  assert.ok(w.lock.held());
  assert.throws(() => openRunWriter(dir, { resume: false }), (e: unknown) => e instanceof RunLockedError && /being trained by pid \d+ .*\(moelab train --out run\)/.test((e as Error).message));
  save(dir, 1, { lock: w.lock });
  w.release();
  assert.equal(existsSync(join(dir, LOCK_FILE)), false);
  refused(() => openRunWriter(dir, { resume: false }), /already holds a checkpoint \(step 1\)/);
  assert.equal(existsSync(join(dir, LOCK_FILE)), false, 'a refused writer releases the lock');

  // a crashed save left an orphan temp: the next writer removes it
  writeFileSync(join(dir, `${MODEL_FILE}.tmp-1-abc`), 'partial');
  const w2 = openRunWriter(dir, { resume: true });
  assert.deepEqual(w2.recovered, { completed: [], removed: [`${MODEL_FILE}.tmp-1-abc`] });
  assert.equal(loadCheckpoint(dir).state.step, 1);
  save(dir, 2, { lock: w2.lock });
  w2.release();
  assert.throws(() => save(dir, 3, { lock: w2.lock }), /lost the lock on .*was removed/, 'saving after release is refused');
  assert.equal(loadCheckpoint(dir).state.step, 2);
}));

test('two trainers started on the same new folder at once: exactly one trains it', async () => {
  const root = mkdtempSync(join(tmpdir(), 'moelab-rundir-'));
  const dir = join(root, 'runs', 'same');
  const RUNDIR = new URL('../src/train/rundir.js', import.meta.url).href;
  const CK = new URL('../src/train/checkpoint.js', import.meta.url).href;
  const start = Date.now() + 800;
  const code = `
    const { openRunWriter } = await import(${JSON.stringify(RUNDIR)});
    const { saveCheckpoint } = await import(${JSON.stringify(CK)});
    while (Date.now() < ${start}) {}
    try {
      const w = openRunWriter(${JSON.stringify(dir)}, { resume: false, command: 'trainer ' + process.pid });
      const t = { shape: [4], data: new Float32Array(4).fill(process.pid) };
      for (let step = 1; step <= 5; step++) saveCheckpoint(${JSON.stringify(dir)}, { model: { w: t }, optimizer: { m: t }, config: { pid: process.pid }, state: { step } }, { lock: w.lock });
      w.release();
      console.log(JSON.stringify({ done: process.pid }));
    } catch (e) { console.log(JSON.stringify({ refused: e.name, message: e.message })); }`;
  const run = () => new Promise<Record<string, unknown>>((res) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('exit', () => res(JSON.parse(out || '{}') as Record<string, unknown>));
  });
  try {
    const results = await Promise.all([run(), run(), run()]);
    const done = results.filter((r) => r.done);
    assert.equal(done.length, 1, JSON.stringify(results));
    for (const r of results.filter((x) => x.refused)) {
      assert.ok(r.refused === 'RunLockedError' || r.refused === 'RunDirError', String(r.message));
      assert.match(String(r.message), /is being trained by pid \d+|already holds a checkpoint \(step [1-5]\)/);
    }
    const ck = loadCheckpoint(dir);
    assert.equal(ck.config.pid, done[0].done, 'the checkpoint is all from the one trainer');
    assert.ok((ck.model.get('w')!.data as Float32Array).every((v) => v === done[0].done));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
