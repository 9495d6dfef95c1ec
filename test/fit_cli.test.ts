// `moelab fit` end to end: CSV and sweep inputs, --json parameter names with intervals, the files
// it writes (tables, plots), and clear errors for bad input.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chinchillaLoss, abnarLoss, pngSize } from '../src/index.js';
import { rng } from './util.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
let dir = '';

function run(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, 'fit', ...args], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'moelab-fit-'));
  const r = rng(11);
  const chin = { E: 1.8, A: 400, B: 1500, alpha: 0.34, beta: 0.37 };
  const lines = ['params,tokens,loss,family'];
  for (const N of [1e6, 3e6, 1e7, 3e7]) for (const D of [1e8, 1e9, 1e10]) lines.push(`${N},${D},${chinchillaLoss(chin, N, D) * Math.exp(0.004 * (r() - 0.5))},dense`);
  writeFileSync(join(dir, 'points.csv'), lines.join('\n') + '\n');
  const ab = { a: 30, b: 1000, c: 0.2, d: 200, e: 1.6, alpha: 0.3, beta: 0.35, lambda: 0.3, delta: 0.4, gamma: 0.3 };
  const results: object[] = [];
  for (const N of [1e6, 1e7, 1e8]) for (const D of [1e8, 1e9, 1e10]) for (const S of [0, 0.5, 0.75]) {
    results.push({ params_total: N, params_active: N * (1 - S), tokens: D, sparsity: S, flops: 6 * N * (1 - S) * D, val_loss: abnarLoss(ab, N, D, S), family: S ? 'moe' : 'dense' });
  }
  results.push({ params_total: 1e6, tokens: 1e8, sparsity: 0, status: 'failed', reason: 'NaN loss' });
  mkdirSync(join(dir, 'sweep'));
  writeFileSync(join(dir, 'sweep', 'results.json'), JSON.stringify(results));
});

test('--points --json prints chinchilla parameters by name with intervals and writes tables and plots', () => {
  const r = run(['--points', 'points.csv', '--law', 'chinchilla', '--bootstrap', '4', '--json']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.deepEqual(Object.keys(j.params).sort(), ['A', 'B', 'E', 'alpha', 'beta']);
  for (const p of Object.values(j.params) as Array<{ value: number; lo: number; hi: number }>) assert.ok(p.lo <= p.hi && Number.isFinite(p.value));
  assert.ok(Math.abs(j.params.alpha.value - 0.34) < 0.05, `alpha ${j.params.alpha.value}`);
  assert.equal(j.allocation.length > 0, true);
  const out = join(dir, 'fit-chinchilla');
  for (const f of ['fit.json', 'fit.md', 'fit_vs_points.svg', 'fit_vs_points.png', 'fit_vs_points.vl.json']) assert.ok(existsSync(join(out, f)), f);
  assert.ok(pngSize(readFileSync(join(out, 'fit_vs_points.png'))).width > 500);
  const md = readFileSync(join(out, 'fit.md'), 'utf8');
  assert.match(md, /\| alpha \| 0\.3\d+ \| \[/);
  assert.match(md, /Compute-optimal allocation/);
  assert.match(md, /!\[fitted law vs points\]\(fit_vs_points\.png\)/);
});

test('--sweep reads results.json (skipping a failed point) and abnar writes the optimal-sparsity tables and plot', () => {
  const r = run(['--sweep', 'sweep', '--law', 'abnar', '--bootstrap', '0', '--budgets', '1e16,1e18', '--out', 'abnar-out']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /S\*\(C\)/);
  assert.match(r.out, /1 sweep point\(s\) without a final loss were skipped/);
  const j = JSON.parse(readFileSync(join(dir, 'abnar-out', 'fit.json'), 'utf8'));
  assert.deepEqual(Object.keys(j.params).sort(), ['a', 'alpha', 'b', 'beta', 'c', 'd', 'delta', 'e', 'gamma', 'lambda']);
  assert.equal(j.optimalSparsity.byCompute.length, 2);
  assert.ok(existsSync(join(dir, 'abnar-out', 'optimal_sparsity.png')));
});

test('--law FILE.json fits a user law', () => {
  const law = {
    name: 'my-power', formula: 'L = E + A/C^alpha',
    params: { E: { positive: true, grid: [1, 2] }, A: { positive: true, grid: [10, 1000] }, alpha: { grid: [0.05, 0.2] } },
    terms: [{ coef: 'E' }, { coef: 'A', divide: { C: 'alpha' } }],
  };
  writeFileSync(join(dir, 'my-law.json'), JSON.stringify(law));
  const r = run(['--points', 'points.csv', '--law', 'my-law.json', '--bootstrap', '0', '--json', '--out', 'user-out']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.law, 'my-power');
  assert.deepEqual(Object.keys(j.params), ['E', 'A', 'alpha']);
  writeFileSync(join(dir, 'clash.json'), JSON.stringify({ ...law, name: 'chinchilla' }));
  assert.match(run(['--points', 'points.csv', '--law', 'clash.json']).err, /name 'chinchilla' is a built-in law/);
});

test('bad input fails with what is wrong and where', () => {
  writeFileSync(join(dir, 'bad.csv'), 'params,tokens,loss\n1e6,1e9,3.1\n1e7,1e9,x\n');
  let r = run(['--points', 'bad.csv', '--law', 'chinchilla']);
  assert.equal(r.code, 1);
  assert.match(r.err, /bad\.csv line 3, column 'loss': 'x' is not a number/);
  r = run(['--points', 'nope.csv', '--law', 'chinchilla']);
  assert.match(r.err, /cannot read points file nope\.csv/);
  r = run(['--points', 'points.csv', '--law', 'abnar']);
  assert.match(r.err, /two or more sparsity levels/);
  r = run(['--law', 'chinchilla']);
  assert.match(r.err, /exactly one of --points FILE\.csv or --sweep DIR/);
  r = run(['--points', 'points.csv', '--law', 'nope']);
  assert.match(r.err, /unknown law 'nope'/);
  r = run(['--sweep', 'missing', '--law', 'power']);
  assert.match(r.err, /cannot read sweep results .*results\.json/);
});
