// The dashboard's sweep plots and evaluation tables, through its HTTP API: the vega-lite specs it
// sends are the study's own (src/study/plot/specs.ts) for the same data, and equal the specs
// `moelab fit` wrote beside its images; eval/*.json become the domain and task tables, unknown or
// broken files are listed without hiding the rest; PEER layers report coverage and evenness.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeMultiplierSpec, loadConfig, lossVsComputeSpec, startDashboard, train, appendEvalLines, domainsLine, taskLine, type Dashboard } from '../src/index.js';
import { PEER } from '../src/nn/peer.js';
import { writeFakeRun } from './dashboard_fixtures.js';
import { writeEvalResults, writeFakeSweep, type FakeSweep } from './dashboard_study_fixtures.js';

let root = '';
let dash: Dashboard;
let sweep: FakeSweep;

async function getJson(path: string): Promise<{ status: number; body: any }> {
  const r = await fetch(new URL(path, dash.url));
  return { status: r.status, body: await r.json() };
}

/** Deep equality with numbers equal to a relative 1e-9 (fit.json keeps the formula's parameters, not the internal vector: exp/log rounding). */
function assertClose(actual: unknown, expected: unknown, path = '$'): void {
  if (typeof expected === 'number' && typeof actual === 'number') {
    assert.ok(Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)), `${path}: ${actual} != ${expected}`);
  } else if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual) && actual.length === expected.length, `${path}: length ${(actual as unknown[])?.length} != ${expected.length}`);
    expected.forEach((e, i) => assertClose((actual as unknown[])[i], e, `${path}[${i}]`));
  } else if (expected && typeof expected === 'object') {
    assert.ok(actual && typeof actual === 'object', `${path}: not an object`);
    assert.deepEqual(Object.keys(actual as object).sort(), Object.keys(expected).sort(), `${path}: keys`);
    for (const k of Object.keys(expected)) assertClose((actual as any)[k], (expected as any)[k], `${path}.${k}`);
  } else assert.equal(actual, expected, path);
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'moelab-dash-results-'));
  sweep = await writeFakeSweep(join(root, 'study'));
  writeFakeRun(root, 'study/runs/a1', { done: 10, steps: 10 });
  writeFakeRun(root, 'evaluated', { done: 10, steps: 10 });
  writeEvalResults(join(root, 'evaluated'));
  writeFakeRun(root, 'plain', { done: 10, steps: 10 });
  writeFakeRun(root, 'half-sweep/runs/b2', { done: 3, steps: 10 });
  writeFileSync(join(root, 'half-sweep', 'sweep.json'), '{}');
  dash = await startDashboard({ runs: root, port: 0 });
});

after(async () => {
  await dash?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('dashboard: sweeps', () => {
  test('sweep folders are found by sweep.json or results.json', async () => {
    assert.deepEqual((await getJson('/api/runs')).body.sweeps, ['half-sweep', 'study']);
  });

  test('loss vs compute and compute multipliers are the study specs of the same data', async () => {
    const { status, body } = await getJson('/api/sweep?sweep=study');
    assert.equal(status, 200);
    assert.deepEqual(body.plots.map((p: any) => p.name), ['loss_vs_compute', 'compute_multiplier', 'fit_vs_points', 'isoflop']);
    assert.equal(body.results, sweep.results.length);
    assert.equal(body.missing, 1);
    assert.deepEqual(body.notes, []);
    // one point per config: the two seeds of dense N=3e6 at 1e16 FLOPs are averaged
    const rows = new Map<string, { family: string; compute: number; loss: number[]; params: number }>();
    for (const r of sweep.results) {
      const key = `${r.family} ${r.paramsActive} ${r.trainingFlops}`;
      const row = rows.get(key) ?? { family: r.family, compute: r.trainingFlops, loss: [], params: r.paramsTotal };
      row.loss.push(r.valLoss);
      rows.set(key, row);
    }
    assert.equal(rows.size, sweep.results.length - 1);
    const expected = [...rows.values()].map((r) => ({ family: r.family, compute: r.compute, loss: r.loss.reduce((a, b) => a + b, 0) / r.loss.length, params: r.params }))
      .sort((a, b) => a.family.localeCompare(b.family) || a.compute - b.compute);
    // the dashed dense frontier is the one the multipliers were read from
    assertClose(body.plots[0].spec, lossVsComputeSpec(expected, undefined, sweep.comparison.denseFrontier));
    const ms = sweep.comparison.multipliers.filter((m) => m.multiplier !== null).map((m) => ({ family: m.family, compute: m.compute, multiplier: m.multiplier!, params: m.paramsTotal }));
    assert.equal(ms.length, 9);
    assert.deepEqual(body.plots[1].spec, computeMultiplierSpec(ms));
  });

  test("the fitted law and isoFLOP curves equal the specs moelab fit wrote next to its images", async () => {
    const { body } = await getJson('/api/sweep?sweep=study');
    const byName = new Map(body.plots.map((p: any) => [p.name, p]));
    for (const name of ['fit_vs_points', 'isoflop']) {
      const written = JSON.parse(readFileSync(join(sweep.fitDir, `${name}.vl.json`), 'utf8'));
      assert.equal((byName.get(name) as any).file, 'fit-chinchilla/fit.json');
      assertClose((byName.get(name) as any).spec, written, name);
    }
  });

  test('a sweep without results, a broken compare.json and a user law are notes, not errors', async () => {
    const half = (await getJson('/api/sweep?sweep=half-sweep')).body;
    assert.deepEqual(half.plots, []);
    assert.match(half.notes[0], /no results\.json yet/);
    writeFileSync(join(root, 'half-sweep', 'compare.json'), '{"multipliers": [');
    writeFileSync(join(root, 'half-sweep', 'fit.json'), JSON.stringify({ law: 'mine', params: {}, residuals: [] }));
    const notes = (await getJson('/api/sweep?sweep=half-sweep')).body.notes.join('\n');
    assert.match(notes, /compare\.json: not valid JSON/);
    assert.match(notes, /fit\.json: law 'mine' is not built in/);
  });

  test('only folders found as sweeps are served; escapes are refused', async () => {
    for (const [q, want] of [['plain', 404], ['nope', 404], ['..', 404], ['study%2f..%2f..', 404], ['', 404]] as const) {
      assert.equal((await getJson(`/api/sweep?sweep=${q}`)).status, want, q);
    }
  });
});

describe('dashboard: evaluation results', () => {
  test('domain and task tables from eval/*.json; unknown and broken files listed', async () => {
    const { status, body } = await getJson('/api/evals?run=evaluated');
    assert.equal(status, 200);
    assert.deepEqual(body.domains.map((d: any) => [d.domain, d.loss, d.tokens, d.file]), [['in-domain', 2.5, 4096, 'eval/domains.json'], ['fiction', 3.25, 2048, 'eval/domains.json']]);
    assert.ok(Math.abs(body.domains[0].perplexity - Math.exp(2.5)) < 1e-12);
    assert.deepEqual(body.tasks.map((t: any) => [t.task, t.shots, t.metric, t.value, t.stderr, t.chance]), [
      ['copa-mini', 2, 'acc', 0.625, 0.0766, 0.5], ['copa-mini', 2, 'acc_norm', 0.6, 0.0775, null],
      ['copa-mini', 2, 'acc_bytes', 0.575, 0.0782, null], ['copa-mini', 2, 'gold_ll', -7.25, 0.5, null],
    ]);
    const other = new Map(body.other.map((o: any) => [o.file, o.reason]));
    assert.match(other.get('eval/cut.json') as string, /not valid JSON/);
    assert.match(other.get('eval/notes.json') as string, /not a moelab eval result/);
    assert.deepEqual((await getJson('/api/evals?run=plain')).body, { domains: [], tasks: [], other: [], history: [] });
    assert.equal((await getJson('/api/evals?run=..%2fevaluated')).status, 400);
    assert.equal((await getJson('/api/evals?run=study')).status, 404);
  });

  test("metrics.jsonl's eval lines become the run's evaluation history; its summary is unchanged", async () => {
    const summary = async () => (await getJson('/api/runs')).body.runs.find((r: any) => r.id === 'evaluated');
    const { updatedAt: _u, ...before } = await summary();
    const { domains, task } = writeEvalResults(join(root, 'evaluated'));
    assert.equal(appendEvalLines(join(root, 'evaluated'), [
      domainsLine(6, 'eval/domains.json', 'domains', null, domains, 'T1'), taskLine(6, 'eval/task.json', task, 'T1'), taskLine(10, 'eval/task.json', { ...task, metrics: { ...task.metrics, acc: { ...task.metrics.acc, mean: 0.7 } } }, 'T2'),
    ]), null);
    const { body } = await getJson('/api/evals?run=evaluated');
    assert.deepEqual(body.history.map((h: any) => [h.step, h.kind, h.name, h.shots, h.metric, h.value]), [
      [6, 'domain', 'in-domain', null, 'bits/byte', 3.6067], [6, 'domain', 'in-domain', null, 'nats/token', 2.5],
      [6, 'domain', 'fiction', null, 'bits/byte', 4.6888], [6, 'domain', 'fiction', null, 'nats/token', 3.25],
      [6, 'task', 'copa-mini', 2, 'acc', 0.625], [6, 'task', 'copa-mini', 2, 'acc_norm', 0.6],
      [10, 'task', 'copa-mini', 2, 'acc', 0.7], [10, 'task', 'copa-mini', 2, 'acc_norm', 0.6],
    ]);
    const { updatedAt: _v, ...after } = await summary();
    assert.deepEqual(after, before, 'eval lines are not training: steps, losses, status unchanged');
  });

  test('moelab eval --out FILE (domains and tasks in one file) is read too', async () => {
    writeFileSync(join(root, 'evaluated', 'eval', 'all.json'), JSON.stringify({
      run: 'x', domains: { kind: 'domains', results: [{ domain: 'web', loss: 1, perplexity: Math.E, bpb: 1.4, tokens: 10, bytes: 10 }] },
      tasks: [{ task: 't', shots: 0, trials: 1, chance: 0.25, metrics: { acc: { mean: 0.5, stderr: 0.1 } } }],
    }));
    const { body } = await getJson('/api/evals?run=evaluated');
    assert.ok(body.domains.some((d: any) => d.domain === 'web' && d.file === 'eval/all.json'));
    assert.ok(body.tasks.some((t: any) => t.task === 't' && t.metric === 'acc' && t.value === 0.5 && t.chance === 0.25));
  });
});

describe('PEER statistics: coverage and evenness of expert use', () => {
  const layer = () => new PEER(8, { nSub: 4, heads: 1, k: 2, dKey: 4, bn: false, activation: 'gelu', pkm: false, sparseGrads: false });

  test('a trained PEER run shows them per layer on the dashboard', async () => {
    const corpus = join(root, 'corpus.txt');
    writeFileSync(corpus, 'the experts route the tokens to the model. '.repeat(200));
    const config = loadConfig({
      preset: 'tiny-peer',
      overrides: { 'data.paths': [corpus], 'model.d': 16, 'model.layers': 2, 'model.heads': 2, 'model.seq': 16, 'model.ffn.nSub': 8, 'model.ffn.heads': 2, 'model.ffn.k': 4, 'model.ffn.dKey': 8,
        'train.batch': 2, 'train.steps': 4, 'train.warmup': 1, 'train.logEvery': 1, 'train.evalEvery': 2, 'train.evalBatches': 1 },
    });
    await train({ config, dir: join(root, 'peer-run') });
    const { body } = await getJson('/api/routing?run=peer-run');
    assert.equal(body.kind, 'peer');
    assert.equal(body.load.length, 0); // no heatmap for up to millions of single-neuron experts
    for (const k of ['peerUsedFraction', 'peerUniqueExperts', 'peerUsageEvenness', 'peerUsageKL']) {
      assert.deepEqual(body.scalars[k].map((p: any) => `${p.step} ${p.layer}`), ['2 layer0', '2 layer1', '4 layer0', '4 layer1'], k);
    }
    for (const p of body.scalars.peerUsedFraction) assert.ok(p.value > 0 && p.value <= 1);
    for (const p of body.scalars.peerUsageEvenness) assert.ok(p.value > 0 && p.value <= 1 + 1e-12);
  });

  test('from the ids of the evaluation window', () => {
    const p = layer(); // N = 16 experts
    p.usage.add(Int32Array.from([3, 3, 3, 3]));
    assert.deepEqual([p.stats()!.peerUniqueExperts, p.stats()!.peerUsedFraction, p.stats()!.peerUsageEvenness], [1, 1 / 16, 0]);
    p.resetStats();
    p.usage.add(Int32Array.from([0, 0, 1, 1])); // H = ln 2 of at most ln 4
    assert.ok(Math.abs((p.stats()!.peerUsageEvenness as number) - 0.5) < 1e-12);
    p.resetStats();
    p.usage.add(Int32Array.from({ length: 32 }, (_, i) => i % 16)); // every expert twice
    const even = p.stats()!;
    assert.deepEqual([even.peerUniqueExperts, even.peerUsedFraction], [16, 1]);
    assert.ok(Math.abs((even.peerUsageEvenness as number) - 1) < 1e-12);
  });
});
