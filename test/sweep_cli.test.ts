// moelab sweep / sweep status / compare end to end on a tiny sweep (4 runs of a few steps):
// one line per point start and finish (no per-step lines), a re-run that trains nothing, a
// --jobs 2 run of new points in child processes, status and the compute-matched comparison.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
let dir = '';

function run(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const BASE = { model: { d: 16, layers: 1, heads: 2, seq: 16 }, train: { batch: 2, evalEvery: 0, evalBatches: 1, logEvery: 1 }, data: { paths: ['corpus.txt'] } };

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'moelab-sweepcli-'));
  const words = ['the', 'model', 'learns', 'to', 'predict', 'next', 'byte', 'of', 'text', 'and', 'experts', 'route', 'tokens'];
  let text = '';
  for (let i = 0; i < 3000; i++) text += words[(i * 7 + (i >> 3)) % words.length] + (i % 11 === 10 ? '.\n' : ' ');
  writeFileSync(join(dir, 'corpus.txt'), text);
  const spec = { base: { inline: BASE }, axes: { 'model.ffn': [{ type: 'dense' }, { type: 'moe', experts: 4, topk: 1, every: 1 }] }, budgets: [6e6, 1.2e7] };
  writeFileSync(join(dir, 'study.json'), JSON.stringify(spec));
  writeFileSync(join(dir, 'study2.json'), JSON.stringify({ ...spec, seeds: [0, 1] }));
  writeFileSync(join(dir, 'diverge.json'), JSON.stringify({ base: { inline: { ...BASE, train: { ...BASE.train, steps: 4 } } }, axes: { 'train.lr': [1e30] } }));
  // about 1.5e11 parameters: refused by the memory check before anything is allocated
  writeFileSync(join(dir, 'huge.json'), JSON.stringify({ base: { inline: { ...BASE, model: { d: 16384, layers: 48, heads: 16, seq: 16 }, train: { ...BASE.train, steps: 2 } } }, axes: { 'train.seed': [0] } }));
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ base: 'tiny', axes: { 'model.d': 64 } }));
});

describe('moelab sweep', () => {
  test('--dry-run lists the points and writes nothing', () => {
    const r = run(['sweep', '--spec', 'study.json', '--out', 'sw', '--dry-run']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^sweep sw: 4 points: 0 done, 0 to resume, 4 to start/);
    const rows = r.out.trim().split('\n').slice(2);
    assert.equal(rows.length, 4);
    // 6e6 FLOPs / (46080 FLOPs/token x 32 tokens/step) = 4.07 -> 4 steps of the dense model
    assert.match(rows[0], /^start\s+dense\s+4\s+5\.90e\+6\s/);
    assert.ok(!existsSync(join(dir, 'sw')));
  });

  test('trains every point with one line per start and finish', () => {
    const r = run(['sweep', '--spec', 'study.json', '--out', 'sw']);
    assert.equal(r.code, 0, r.err);
    const lines = r.err.trim().split('\n');
    assert.match(lines[0], /^sweep sw: 4 points: 0 done, 0 to resume, 4 to start/);
    assert.equal(lines.filter((l) => /^\[\d\/4\] start /.test(l)).length, 4);
    const done = lines.filter((l) => /^\[\d\/4\] done /.test(l));
    assert.equal(done.length, 4);
    assert.ok(done.every((l) => /val loss \d+\.\d{4}/.test(l)), done.join('\n'));
    assert.equal(lines.length, 10, r.err); // plan, 4 x (start, done), summary: no per-step lines
    assert.match(lines[9], /4 finished, 0 failed, 0 stopped, 0 skipped; 4 results in sw\/results\.csv/);
    assert.ok(existsSync(join(dir, 'sw', 'sweep.json')));
  });

  test('a re-run trains nothing; a spec with another seed trains only the new points, in 2 processes', () => {
    const again = run(['sweep', '--spec', 'study.json', '--out', 'sw']);
    assert.equal(again.code, 0, again.err);
    assert.match(again.err, /4 points: 4 done, 0 to resume, 0 to start/);
    assert.doesNotMatch(again.err, /\] start /);
    const more = run(['sweep', '--spec', 'study2.json', '--out', 'sw', '--jobs', '2']);
    assert.equal(more.code, 0, more.err);
    assert.match(more.err, /8 points: 4 done, 0 to resume, 4 to start.*2 processes x 1 threads/);
    assert.equal(more.err.split('\n').filter((l) => / done /.test(l) && /seed=1/.test(l)).length, 4);
  });

  test('sweep status shows every point', () => {
    const r = run(['sweep', 'status', '--out', 'sw']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^sw: 8 points: 8 done, 0 running, 0 failed, 0 pending$/m);
    assert.equal(r.out.split('\n').filter((l) => /^done /.test(l)).length, 8);
    const json = run(['sweep', 'status', '--out', 'sw', '--json']).out.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(json.length, 8);
    assert.ok(json.every((p) => p.state === 'done' && p.step === p.steps));
  });

  test('compare: dense frontier and multipliers per family, as JSON', () => {
    const r = run(['compare', '--sweep', 'sw', '--json']);
    assert.equal(r.code, 0, r.err);
    const c = JSON.parse(r.out);
    assert.deepEqual(c.families.map((f: { family: string }) => f.family), ['dense', 'moe-E4-k1']);
    // two seeds of each config are one point
    assert.ok(c.families.every((f: { points: { seeds: number }[] }) => f.points.length === 2 && f.points.every((p) => p.seeds === 2)));
    assert.ok(c.denseFrontier.length >= 1);
    assert.equal(c.multipliers.length, 2);
    const text = run(['compare', '--sweep', 'sw']);
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, /^dense frontier: /m);
    assert.match(text.out, /^moe-E4-k1: geometric mean multiplier /m);
    assert.ok(existsSync(join(dir, 'sw', 'compare.json')));
    assert.equal(readFileSync(join(dir, 'sw', 'results.csv'), 'utf8').trim().split('\n').length, 9);
  });

  test('fit reads the sweep it ran: a power law in compute, with plots', () => {
    const r = run(['fit', '--sweep', 'sw', '--law', 'power', '--bootstrap', '4', '--json', '--out', 'sw-fit']);
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out);
    const text = JSON.stringify(j);
    for (const name of ['"E"', '"A"', '"alpha"']) assert.ok(text.includes(name), `${name} in ${text.slice(0, 300)}`);
    const files = readdirSync(join(dir, 'sw-fit'));
    assert.ok(files.some((f) => f.endsWith('.svg')) && files.some((f) => f.endsWith('.png')), files.join(', '));
  });

  test('a failed point: reported, exit status 3, status gives the reason', () => {
    const r = run(['sweep', '--spec', 'diverge.json', '--out', 'div']);
    assert.equal(r.code, 3, r.err);
    assert.match(r.err, /^\[1\/1\] FAILED dense \{train\.lr=1\.00e\+30\}: diverged: /m);
    const st = run(['sweep', 'status', '--out', 'div']);
    assert.match(st.out, /^div: 1 points: 0 done, 0 running, 1 failed, 0 pending$/m);
    assert.match(st.out, /^failed .* diverged: .*Try a lower train\.lr/m);
  });

  test('a config that does not fit in memory is a failed point of kind memory, with the advice', () => {
    const r = run(['sweep', '--spec', 'huge.json', '--out', 'huge']);
    assert.equal(r.code, 3, r.err);
    assert.match(r.err, /FAILED .*: memory: does not fit in memory: .*To fit, try: /);
    const st = run(['sweep', 'status', '--out', 'huge', '--json']);
    assert.match(st.out, /"state":"failed","reason":"memory: does not fit in memory: /);
  });

  test('bad input fails clearly', () => {
    const bad = run(['sweep', '--spec', 'bad.json']);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /invalid sweep spec bad\.json:\n\s+axes\.model\.d: expected array, got number/);
    assert.match(run(['sweep', 'status', '--out', 'nowhere']).err, /nowhere holds no sweep \(sweep\.json missing\)/);
    assert.match(run(['sweep', 'stats', '--out', 'sw']).err, /unknown sweep action 'stats'/);
    assert.match(run(['sweep']).err, /--spec <file> is required/);
  });
});
