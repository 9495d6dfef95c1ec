// report.md from a tiny real sweep (d 16 models, a few steps): its tables and image links, the
// images on disk (SVG with the families, PNG that decodes), the fit or the reason there is none;
// `moelab compare` writing its plots and `moelab report`.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSweepSpec, runSweep, writeSweepReport, expandSweep, pngSize, countModel, tokensPerStep, isoFlopData, type FitReport, type Point } from '../src/index.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
let dir = '';
const out = () => join(dir, 'sw');
const TINY = { model: { d: 16, layers: 1, heads: 2, seq: 16 }, train: { batch: 2, evalEvery: 0, evalBatches: 1, logEvery: 1 }, data: { paths: ['corpus.txt'] } };

function imageLinks(md: string): string[] {
  return [...md.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'moelab-report-'));
  const words = ['alpha', 'beta', 'gamma', 'delta', 'experts', 'route', 'tokens', 'to', 'the', 'model'];
  let text = '';
  for (let i = 0; i < 3000; i++) text += words[(i * 7 + (i >> 2)) % words.length] + (i % 9 === 8 ? '.\n' : ' ');
  writeFileSync(join(dir, 'corpus.txt'), text);
  // budgets buying about 3, 6 and 12 steps of the dense model: 2 families x 3 budgets x 2 seeds = 12 runs
  const raw = { description: 'tiny report sweep', base: { inline: TINY }, axes: { 'model.ffn': [{ type: 'dense' }, { type: 'moe', experts: 4, topk: 1, every: 1 }] } };
  const probe = expandSweep(parseSweepSpec(raw, { baseDir: dir }))[0].config;
  const perStep = countModel(probe.model).flopsPerToken * tokensPerStep(probe);
  const spec = parseSweepSpec({ ...raw, seeds: [0, 1], budgets: [3 * perStep, 6 * perStep, 12 * perStep] }, { baseDir: dir });
  const s = await runSweep({ spec, dir: out() });
  assert.equal(s.finished, 12);
  // dense only, one seed: 3 points at one sparsity
  const dense = parseSweepSpec({ ...raw, axes: {}, seeds: [0], budgets: [3 * perStep, 6 * perStep, 12 * perStep] }, { baseDir: dir });
  assert.equal((await runSweep({ spec: dense, dir: join(dir, 'dense') })).finished, 3);
});

describe('writeSweepReport', () => {
  test('tables, image links and images; abnar chosen for points at two sparsities', async () => {
    const r = await writeSweepReport(out(), { bootstrap: 5 });
    assert.equal(r.path, join(out(), 'report.md'));
    const md = readFileSync(r.path, 'utf8');
    assert.equal(md, r.markdown);
    assert.match(md, /^# tiny report sweep\n/);
    for (const h of ['## Points', '## Compute-matched comparison', '## Fit: abnar', '## Optimal sparsity', '### S*(C): sparsity and total parameters']) assert.ok(md.includes(h), h);
    assert.match(md, /\| family \| run \| seed \| budget \(FLOPs\) \| steps \| params \| active \| sparsity \| tokens \| FLOPs \| val loss \|/);
    assert.equal(md.split('\n').filter((l) => /^\| (dense|moe-E4-k1) \| (dense|moe-E4-k1)-d16\S+ \| [01] \| /.test(l)).length, 12, 'one row per run');
    assert.match(md, /\| family \| point \| FLOPs \| val loss \| dense FLOPs for that loss \| multiplier \| note \|/);
    assert.match(md, /\| moe-E4-k1 \| \d+ \| [\d.]+x \|/, 'the per-family geometric mean multiplier');
    assert.match(md, /\| parameter \| value \| 95% interval \|\n\|---\|---\|---\|\n\| a \| /);
    assert.equal(r.fit!.law.name, 'abnar');
    assert.equal(r.fitSkipped, null);
    // seeds are averaged with their spread
    assert.match(md, /\d\.\d{4} ± \d\.\d{4} \| 2 \|/);
    const links = imageLinks(md);
    // one size per family: no isoFLOP curve (a budget's dense and MoE runs are different sparsities, not one curve)
    assert.deepEqual(links, ['loss_vs_compute.png', 'compute_multiplier.png', 'fit-abnar/fit_vs_points.png', 'fit-abnar/optimal_sparsity.png']);
    for (const l of links) {
      const png = readFileSync(join(out(), l));
      const { width, height } = pngSize(png);
      assert.ok(width > 400 && height > 200, `${l}: ${width}x${height}`);
      const svg = readFileSync(join(out(), l.replace(/\.png$/, '.svg')), 'utf8');
      assert.match(svg, /^<svg/);
    }
    const lossSvg = readFileSync(join(out(), 'loss_vs_compute.svg'), 'utf8');
    assert.ok(lossSvg.includes('dense') && lossSvg.includes('moe-E4-k1'), 'both families in the legend');
    for (const f of ['results.json', 'results.csv', 'compare.json', 'loss_vs_compute.vl.json', 'fit-abnar/fit.json']) assert.ok(existsSync(join(out(), f)), f);
  });

  test('a law the points cannot identify: the report says why and links no fit image', async () => {
    const r = await writeSweepReport(join(dir, 'dense'), { law: 'abnar', bootstrap: 0 });
    assert.equal(r.fit, null);
    const md = readFileSync(r.path, 'utf8');
    assert.match(md, /## Fit\n\nNo law was fitted: law abnar has 10 parameters and needs at least 11 points; got 3\./);
    assert.ok(!existsSync(join(dir, 'dense', 'fit-abnar')));
    assert.match(md, /Dense frontier: \(/);
    assert.deepEqual(imageLinks(md), ['loss_vs_compute.png'], 'no sparse runs: no multiplier plot');
    // without a law: chinchilla needs 6 points and 2 model sizes; power (3 parameters) needs 4
    assert.match((await writeSweepReport(join(dir, 'dense'), { bootstrap: 0 })).markdown, /No law was fitted: chinchilla needs two or more model sizes and token counts; abnar needs two or more sparsities; law power has 3 parameters and needs at least 4 points; got 3\./);
    // a preface goes right after the title line and sees what was found
    const r2 = await writeSweepReport(out(), { bootstrap: 0, law: 'power', preface: (f) => `PREFACE ${f.results.results.length} ${f.comparison.families.length}\n` });
    assert.match(r2.markdown, /^# tiny report sweep\n\nSweep folder: [^\n]+\n\nPREFACE 12 2\n\n## Points/);
  });
});

describe('CLI', () => {
  test('moelab compare writes its plots next to compare.json', () => {
    for (const f of ['loss_vs_compute.png', 'loss_vs_compute.svg', 'compute_multiplier.png']) rmSync(join(out(), f), { force: true });
    const r = spawnSync(process.execPath, [CLI, 'compare', '--sweep', 'sw'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /plots: sw\/loss_vs_compute\.png, sw\/compute_multiplier\.png/);
    for (const f of ['loss_vs_compute.png', 'loss_vs_compute.svg', 'compute_multiplier.png', 'compute_multiplier.svg', 'compare.json']) assert.ok(existsSync(join(out(), f)), f);
    pngSize(readFileSync(join(out(), 'compute_multiplier.png')));
  });
  test('moelab report --sweep', () => {
    const r = spawnSync(process.execPath, [CLI, 'report', '--sweep', 'sw', '--law', 'chinchilla', '--bootstrap', '3'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /sw\/report\.md: 12 points, 0 without a result; fitted chinchilla \(R\^2 -?[\d.]+\)/);
    const bad = spawnSync(process.execPath, [CLI, 'report', '--sweep', 'nowhere'], { cwd: dir, encoding: 'utf8' });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /nowhere holds no sweep \(sweep\.json missing\)/);
  });
});

test('isoFLOP curves of a chinchilla fit without an optimum (alpha < 0: bigger is worse) are drawn without minima', () => {
  const pts: Point[] = [];
  for (const C of [1e12, 1e13]) for (const N of [1e4, 3e4, 1e5, 3e5]) pts.push({ params: N, tokens: C / (6 * N), sparsity: 0, loss: 2 + 0.1 * Math.log10(N) - 0.05 * Math.log10(C) });
  // as tiny noisy runs can fit it (seen on a 15 s study): only the law and its parameters matter here
  const report = { law: 'chinchilla', fit: { params: { E: 1, A: 2, B: 3, alpha: -0.3, beta: 0.2 } } } as unknown as FitReport;
  const iso = isoFlopData(report, pts)!;
  assert.equal(iso.rows.length, 8);
  assert.deepEqual(iso.minima, []);
});

test('isoFLOP curves: one per budget and sparsity, seeds averaged, abnar minima per curve', () => {
  // dense (S 0) and MoE (S 0.75) at two sizes each on two budgets, two seeds: without the split a
  // budget's line would join dense and MoE sizes, and each seed pair would draw a vertical segment
  const pts: Point[] = [];
  for (const C of [1e12, 3e12]) for (const [N, S] of [[1e5, 0], [4e5, 0], [3e5, 0.75], [1.2e6, 0.75]]) for (const seed of [0, 1]) {
    pts.push({ params: N, tokens: C / (6 * N * (1 - S)), sparsity: S, loss: 2 + seed / 10 + Math.log10(N) / 100 - Math.log10(C) / 50 });
  }
  const report = { law: 'abnar', fit: { params: { a: 1, b: 1, c: 0, d: 0, e: 1, alpha: 0.3, beta: 0.3, lambda: 0, delta: 0, gamma: 0 } } } as unknown as FitReport;
  const iso = isoFlopData(report, pts)!;
  assert.equal(iso.rows.length, 8, 'one row per budget, sparsity and size');
  for (const r of iso.rows) assert.ok(Math.abs(r.loss - (2.05 + Math.log10(r.params) / 100 - Math.log10(r.budget) / 50)) < 1e-9, 'mean over the two seeds');
  assert.deepEqual([...new Set(iso.rows.map((r) => r.sparsity))].sort(), [0, 0.75]);
  // a/N^a + b/D^b with D = C/(6N(1-S)) has an interior optimum on every curve
  assert.equal(iso.minima.length, 4);
  assert.deepEqual(iso.minima.map((m) => m.sparsity).sort(), [0, 0, 0.75, 0.75]);
});
