// The training path end to end through the CLI: a run learns and checkpoints; resume after kill -9
// reproduces an uninterrupted run exactly; bad configs, bad data and bad checkpoints fail clearly
// and leave existing checkpoints intact.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, writeFileSync, readFileSync, existsSync, truncateSync, statSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
let dir = '';
let corpus = '';
// a small model so each step takes milliseconds
const SMALL = ['--set', 'model.d=32', '--set', 'model.layers=2', '--set', 'model.heads=2', '--set', 'model.seq=32',
  '--set', 'train.batch=4', '--set', 'train.warmup=2', '--set', 'train.logEvery=1', '--set', 'train.evalEvery=5', '--set', 'train.evalBatches=2'];

function run(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function lastTrainLoss(runDir: string): number {
  const lines = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  return lines.filter((l) => l.type === 'train').pop().loss;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'moelab-train-'));
  corpus = join(dir, 'corpus.txt');
  const words = ['the', 'model', 'learns', 'to', 'predict', 'next', 'byte', 'of', 'text', 'and', 'experts', 'route', 'tokens'];
  let text = '';
  for (let i = 0; i < 4000; i++) text += words[(i * 7 + (i >> 3)) % words.length] + (i % 11 === 10 ? '.\n' : ' ');
  writeFileSync(corpus, text);
});

describe('moelab train', () => {
  test('trains, logs, checkpoints, and the loss falls', () => {
    const r = run(['train', '--data', corpus, '--out', 'r1', '--steps', '30', '--no-progress', ...SMALL]);
    assert.equal(r.code, 0, r.err);
    for (const f of ['model.safetensors', 'optimizer.safetensors', 'config.json', 'state.json', 'metrics.jsonl']) assert.ok(existsSync(join(dir, 'r1', f)), f);
    const m = readFileSync(join(dir, 'r1', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const tr = m.filter((l) => l.type === 'train');
    assert.ok(tr[tr.length - 1].loss < tr[0].loss - 0.5, `loss ${tr[0].loss} -> ${tr[tr.length - 1].loss}`);
    assert.ok(m.some((l) => l.type === 'eval' && Number.isFinite(l.val_loss)));
    assert.match(r.err, /sample:/);
  });

  test('refuses to overwrite a run without --resume', () => {
    const r = run(['train', '--data', corpus, '--out', 'r1', '--steps', '30', '--no-progress', ...SMALL]);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /already holds a checkpoint.*--resume/);
  });

  test('resume after kill -9 reproduces the uninterrupted run exactly', async () => {
    const steps = '60';
    const full = run(['train', '--data', corpus, '--out', 'straight', '--steps', steps, '--no-progress', '--no-sample', ...SMALL, '--set', 'train.saveEvery=5']);
    assert.equal(full.code, 0, full.err);
    // the same run, killed with SIGKILL as soon as its first checkpoint exists
    const child = spawn(process.execPath, [CLI, 'train', '--data', corpus, '--out', 'killed', '--steps', steps, '--no-progress', '--no-sample', ...SMALL, '--set', 'train.saveEvery=5'], { cwd: dir, stdio: 'ignore' });
    const state = join(dir, 'killed', 'state.json');
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (existsSync(state) || child.exitCode !== null) {
          clearInterval(poll);
          child.kill('SIGKILL');
          resolve();
        }
      }, 2);
    });
    await new Promise((r) => child.once('exit', r).once('close', r));
    const saved = JSON.parse(readFileSync(state, 'utf8')).state.step;
    assert.ok(saved >= 5, `checkpoint at step ${saved}`);
    const resumed = run(['train', '--resume', '--out', 'killed', '--no-progress', '--no-sample']);
    assert.equal(resumed.code, 0, resumed.err);
    assert.equal(lastTrainLoss(join(dir, 'killed')), lastTrainLoss(join(dir, 'straight')));
  });

  test('training survives a closed stderr pipe (the reader went away)', async () => {
    const child = spawn(process.execPath, [CLI, 'train', '--data', corpus, '--out', 'epipe', '--steps', '20', '--no-progress', '--no-sample', ...SMALL],
      { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.once('data', () => child.stderr!.destroy()); // close our end after the first line
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    assert.equal(code, 0);
    assert.equal(JSON.parse(readFileSync(join(dir, 'epipe', 'state.json'), 'utf8')).state.step, 20);
  });

  test('two trainers on one run folder: the second is refused and names the first', async () => {
    const args = [CLI, 'train', '--data', corpus, '--out', 'contended', '--steps', '400', '--no-progress', '--no-sample', ...SMALL];
    const first = spawn(process.execPath, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    // wait until the first one is training (its first log line), then start the second
    await new Promise<void>((r) => first.stderr!.once('data', () => r()));
    const second = run(args.slice(1));
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    assert.notEqual(second.code, 0);
    assert.match(second.err, /is being trained by pid \d+/);
  });

  test('run names and --out cannot escape or clobber: ../ names, empty --out, a foreign folder', () => {
    let r = run(['train', '--data', corpus, '--set', 'name=../../victim', '--no-progress', ...SMALL]);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /name/);
    assert.ok(!existsSync(join(dir, '..', '..', 'victim')));
    r = run(['train', '--data', corpus, '--out', '', '--no-progress', ...SMALL]);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /--out is empty|run folder is empty/);
    mkdirSync(join(dir, 'foreign-folder'));
    writeFileSync(join(dir, 'foreign-folder', 'thesis.tex'), 'precious');
    r = run(['train', '--data', corpus, '--out', 'foreign-folder', '--steps', '2', '--no-progress', ...SMALL]);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /not a moelab run/);
    assert.deepEqual(readdirSync(join(dir, 'foreign-folder')), ['thesis.tex']);
  });

  test('--by-hash names the run folder by the resolved config; the run records its provenance', () => {
    const args = ['train', '--data', corpus, '--by-hash', '--steps', '3', '--no-progress', '--no-sample', ...SMALL, '--set', 'name=hashed'];
    let r = run(args);
    assert.equal(r.code, 0, r.err);
    const folders = readdirSync(join(dir, 'runs')).filter((f) => f.startsWith('hashed-'));
    assert.equal(folders.length, 1);
    assert.match(folders[0], /^hashed-[0-9a-f]{12}$/);
    const state = JSON.parse(readFileSync(join(dir, 'runs', folders[0], 'state.json'), 'utf8')).state;
    for (const k of ['moelab', 'node', 'host', 'cpu', 'isa', 'threads']) assert.ok(k in state.provenance.created, k);
    assert.equal(state.provenance.created.seed, 0);
    r = run(args); // the same config maps to the same folder: refused, not silently a second run
    assert.notEqual(r.code, 0);
    assert.match(r.err, /already holds a checkpoint \(step 3\)/);
    r = run([...args, '--set', 'train.lr=5e-4']); // another config, another folder
    assert.equal(r.code, 0, r.err);
    assert.equal(readdirSync(join(dir, 'runs')).filter((f) => f.startsWith('hashed-')).length, 2);
  });

  test('eval --batch 0 is refused', () => {
    const r = run(['eval', '--run', 'r1', '--data', corpus, '--batch', '0']);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /--batch must be a positive integer/);
  });

  test('bad configs name the field and the allowed values', () => {
    let r = run(['train', '--preset', 'nope']);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /nope/);
    assert.match(r.err, /dense-d256/);
    r = run(['train', '--set', 'model.ffn.type=moee', '--steps', '1']);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /model\.ffn\.type/);
    writeFileSync(join(dir, 'bad.json'), '{"model": {"d": 30, "heads": 4}');
    r = run(['train', '--config', 'bad.json']);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /bad\.json/);
  });

  test('missing, empty and binary data fail before training', () => {
    let r = run(['train', '--data', 'no-such-file.txt', '--out', 'x1', ...SMALL]);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /no-such-file\.txt/);
    writeFileSync(join(dir, 'empty.txt'), '');
    r = run(['train', '--data', 'empty.txt', '--out', 'x2', ...SMALL]);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /empty/i);
    writeFileSync(join(dir, 'bin.dat'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131) % 256)));
    r = run(['train', '--data', 'bin.dat', '--out', 'x3', ...SMALL]);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /binary/i);
    assert.ok(!existsSync(join(dir, 'x3', 'state.json')));
  });

  test('NaN loss stops the run and keeps the last good checkpoint', () => {
    cpSync(join(dir, 'r1'), join(dir, 'nan'), { recursive: true });
    const before = readFileSync(join(dir, 'nan', 'model.safetensors'));
    const r = run(['train', '--resume', '--out', 'nan', '--steps', '40', '--set', 'train.lr=1e30', '--no-progress']);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /NaN|Infinity|became/);
    assert.ok(readFileSync(join(dir, 'nan', 'model.safetensors')).equals(before), 'checkpoint untouched');
  });

  test('truncated and foreign checkpoints are refused with a clear error', () => {
    cpSync(join(dir, 'r1'), join(dir, 'trunc'), { recursive: true });
    const f = join(dir, 'trunc', 'model.safetensors');
    truncateSync(f, statSync(f).size - 100);
    let r = run(['eval', '--run', 'trunc', '--data', corpus]);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /model\.safetensors/);
    assert.match(r.err, /truncat|size|bytes/i);
    // a checkpoint of another architecture: config says d=48, weights are d=32
    cpSync(join(dir, 'r1'), join(dir, 'foreign'), { recursive: true });
    const cfgPath = join(dir, 'foreign', 'config.json');
    const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
    cfg.model.d = 48;
    writeFileSync(cfgPath, JSON.stringify(cfg));
    r = run(['eval', '--run', 'foreign', '--data', corpus]);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /config\.json|model\.d|shape/);
    // resuming r1 with a different architecture is refused
    r = run(['train', '--resume', '--out', 'r1', '--steps', '31', ...SMALL, '--set', 'model.d=64']);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /model\.d|architecture/);
    // resuming on other data is refused (the sampler's position means nothing in another corpus)
    writeFileSync(join(dir, 'other.txt'), 'other text '.repeat(2000));
    r = run(['train', '--resume', '--out', 'r1', '--data', 'other.txt', '--steps', '31', '--no-progress']);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /--data cannot change it/);
  });

  test('eval prints a table and JSON; generate is deterministic for a seed', () => {
    let r = run(['eval', '--run', 'r1', '--data', corpus, '--json']);
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out.trim());
    assert.ok(j.loss > 0 && j.bpb > 0 && j.tokens > 1000, r.out);
    assert.ok(Math.abs(j.bpb - j.loss / Math.LN2) < 0.01, 'bytes tokenizer: bpb = nats / ln 2');
    r = run(['eval', '--run', 'r1', '--data', corpus]);
    assert.match(r.out, /nats\/token.*perplexity.*bits\/byte.*tokens/);
    const g1 = run(['generate', '--run', 'r1', '--prompt', 'the ', '-n', '20', '--seed', '5']);
    const g2 = run(['generate', '--run', 'r1', '--prompt', 'the ', '-n', '20', '--seed', '5']);
    assert.equal(g1.code, 0, g1.err);
    assert.equal(g1.out, g2.out);
    assert.ok(g1.out.length > 10);
  });
});
