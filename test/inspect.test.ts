// moelab inspect on tiny MoE runs trained in the test: loads and (token, expert) counts equal a
// brute-force top-k over the router's logits recomputed here from each layer's captured input (with
// the loss-free bias; token choice for an expert-choice model's evaluation), they equal the
// trainer's own eval line, the heatmap has one cell per (layer, expert) and its PNG decodes, a
// locked run is read but never written, and bad input is refused with a clear message.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import {
  train, openRun, loadTrainingData, inspectRouting, inspectRun, inspectOutDir, writeInspection, expertLoadCells, expertLoadHeatmapSpec,
  specToSvg, pngSize, InspectOutError, INSPECT_DIR, EXPERT_LOAD, ROUTING_JSON, type MoeLayerInspection, type GPT,
} from '../src/index.js';
import { fixedValBatches, type Batch } from '../src/data/loader.js';
import { MoE } from '../src/nn/moe.js';
import { acquireRunLock } from '../src/io/lock.js';
import type { Tensor } from '../src/tensor/index.js';
import { tinyTrainConfig } from './train_util.js';
import { makeMoE, bruteForce } from './moe_brute.js';
import { randn } from './util.js';
import type { RoutingChoices } from '../src/index.js';
import { Tensor as T32 } from '../src/tensor/index.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
let dir = '';
let corpus = '';

const cli = (args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

const MOE = { type: 'moe', experts: 8, topk: 2, every: 1, expertBias: true, biasRate: 0.01 };
const EC = { type: 'moe', experts: 4, topk: 2, every: 1, routing: 'expert-choice', capacityFactor: 1 };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'moelab-inspect-'));
  corpus = join(dir, 'corpus.txt');
  const words = ['alpha', 'beta', 'gamma', 'delta', 'experts', 'route', 'tokens', 'to', 'the', 'model', 'choice', 'bias'];
  let text = '';
  for (let i = 0; i < 4000; i++) text += words[(i * 7 + (i >> 2)) % words.length] + (i % 9 === 8 ? '.\n' : ' ');
  writeFileSync(corpus, text);
  await train({ config: tinyTrainConfig(corpus, { 'model.ffn': MOE }), dir: join(dir, 'moe') });
  await train({ config: tinyTrainConfig(corpus, { 'model.ffn': EC, 'train.steps': 4 }), dir: join(dir, 'ec') });
  await train({ config: tinyTrainConfig(corpus, { 'train.steps': 2 }), dir: join(dir, 'dense') });
});

/** The run's validation batches, as its trainer evaluates them. */
function valBatches(run: string, count?: number): Batch[] {
  const { config } = openRun(run);
  return fixedValBatches(loadTrainingData(config).val, config.train.batch, config.model.seq, count ?? config.train.evalBatches);
}

interface BruteLayer { counts: number[]; pairs: Map<string, number> }

/**
 * Runs inspectRouting while recording every MoE layer's input, then routes each recorded token in
 * float64: logits = x Wr^T, p = softmax, the k experts of largest p + bias. Returns the brute-force
 * counts next to the inspection.
 */
function inspectWithBrute(model: GPT, tokenizer: Parameters<typeof inspectRouting>[1], batches: Batch[]) {
  const inputs = new Map<number, Float32Array[]>();
  model.blocks.items.forEach((b, l) => {
    if (!(b.ffn instanceof MoE)) return;
    const m = b.ffn, orig = m.forward.bind(m);
    inputs.set(l, []);
    m.forward = (x: Tensor, ...rest: [number?, number?]) => {
      inputs.get(l)!.push(x.contiguous().f32.slice());
      return orig(x, ...rest);
    };
  });
  const r = inspectRouting(model, tokenizer, batches, { top: 1000 });
  const brute = new Map<number, BruteLayer>();
  let minMargin = Infinity;
  for (const [l, xs] of inputs) {
    const m = model.blocks.items[l].ffn as MoE;
    const E = m.experts, k = m.topk, d = m.d, W = m.router.weight.f32, bias = m.bias?.f32;
    const counts = new Array<number>(E).fill(0), pairs = new Map<string, number>();
    xs.forEach((x, bi) => {
      const ids = batches[bi].x;
      for (let t = 0; t < ids.length; t++) {
        const logit = Array.from({ length: E }, (_, e) => {
          let s = 0;
          for (let i = 0; i < d; i++) s += x[t * d + i] * W[e * d + i];
          return s;
        });
        const mx = Math.max(...logit), z = logit.reduce((a, v) => a + Math.exp(v - mx), 0);
        const sel = logit.map((v, e) => Math.exp(v - mx) / z + (bias ? bias[e] : 0));
        const order = sel.map((s, e) => [s, e]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
        minMargin = Math.min(minMargin, order[k - 1][0] - order[k][0]);
        for (let j = 0; j < k; j++) {
          const e = order[j][1];
          counts[e]++;
          pairs.set(`${ids[t]},${e}`, (pairs.get(`${ids[t]},${e}`) ?? 0) + 1);
        }
      }
    });
    brute.set(l, { counts, pairs });
  }
  assert.ok(minMargin > 1e-6, `a near tie (margin ${minMargin}) would make float64 and float32 choices differ`);
  return { r, brute };
}

function checkAgainstBrute(layer: MoeLayerInspection, b: BruteLayer, occurrences: Map<number, number>, T: number): void {
  const A = T * layer.topk;
  assert.equal(layer.assignments, A);
  assert.deepEqual(layer.perExpert.map((x) => x.assignments), b.counts, `layer ${layer.layer}: assignments per expert`);
  layer.perExpert.forEach((x, e) => {
    assert.ok(Math.abs(x.load - b.counts[e] / A) < 1e-12, 'load share');
    assert.ok(Math.abs(x.utilisation - (b.counts[e] / A) * layer.experts) < 1e-12, 'utilisation');
  });
  assert.deepEqual(layer.dead, b.counts.flatMap((c, e) => (c === 0 ? [e] : [])));
  assert.equal(layer.imbalance, Math.max(...b.counts) / (A / layer.experts));
  // every (token, expert) pair with its count, occurrences and share; sorted by count
  for (const x of layer.perExpert) {
    const want = [...b.pairs].filter(([key]) => Number(key.split(',')[1]) === x.expert).length;
    assert.equal(x.topTokens.length, want, `expert ${x.expert}: all its tokens listed with top 1000`);
    for (let i = 0; i < x.topTokens.length; i++) {
      const t = x.topTokens[i];
      assert.equal(t.count, b.pairs.get(`${t.id},${x.expert}`), `count of token ${t.id} at expert ${x.expert}`);
      assert.equal(t.occurrences, occurrences.get(t.id));
      assert.equal(t.share, t.count / t.occurrences);
      if (i) assert.ok(x.topTokens[i - 1].count >= t.count, 'sorted by count');
    }
  }
}

function occurrencesOf(batches: Batch[]): Map<number, number> {
  const occ = new Map<number, number>();
  for (const b of batches) for (const id of b.x) occ.set(id, (occ.get(id) ?? 0) + 1);
  return occ;
}

describe('moelab inspect: MoE routing', () => {
  test('loads and top-token counts equal a brute-force routing of the router logits (with the balancing bias)', () => {
    const run = join(dir, 'moe');
    const { model, tokenizer } = openRun(run);
    assert.ok((model.blocks.items[0].ffn as MoE).bias!.f32.some((v) => v !== 0), 'the trained bias is non-zero');
    const batches = valBatches(run);
    const { r, brute } = inspectWithBrute(model, tokenizer, batches);
    const T = batches.reduce((n, b) => n + b.x.length, 0);
    assert.equal(r.tokens, T);
    assert.equal(r.layers.length, 2);
    for (const layer of r.layers) {
      assert.equal(layer.kind, 'moe');
      const l = layer as MoeLayerInspection;
      assert.equal(l.routing, 'token-choice');
      assert.ok(l.bias && l.bias.max > l.bias.min);
      checkAgainstBrute(l, brute.get(l.layer)!, occurrencesOf(batches), T);
    }
    // the library call on the run folder gives the same numbers, and so did the trainer's last eval line
    const viaRun = inspectRun(run, { top: 1000 });
    assert.deepEqual(viaRun.layers, r.layers);
    assert.equal(viaRun.source.kind, 'validation');
    const evals = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((s) => JSON.parse(s)).filter((e) => e.type === 'eval');
    const last = evals.at(-1).ffn;
    for (const l of r.layers as MoeLayerInspection[]) assert.deepEqual(l.perExpert.map((x) => x.load), last[`layer${l.layer}`].load);
  });

  test('an expert-choice model is inspected with its evaluation routing (token choice)', () => {
    const run = join(dir, 'ec');
    const { model, tokenizer } = openRun(run);
    const batches = valBatches(run);
    const { r, brute } = inspectWithBrute(model, tokenizer, batches);
    const T = batches.reduce((n, b) => n + b.x.length, 0);
    for (const l of r.layers as MoeLayerInspection[]) {
      assert.equal(l.routing, 'token-choice');
      assert.equal(l.unroutedTokens, 0);
      checkAgainstBrute(l, brute.get(l.layer)!, occurrencesOf(batches), T);
    }
  });

  test('--batches and --data pick the batches; top tokens are capped', () => {
    const run = join(dir, 'moe');
    const one = inspectRun(run, { batches: 1, top: 3 });
    assert.equal(one.batches, 1);
    for (const l of one.layers as MoeLayerInspection[]) for (const x of l.perExpert) assert.ok(x.topTokens.length <= 3);
    const text = join(dir, 'other.txt');
    writeFileSync(text, 'the model routes tokens to experts. '.repeat(20));
    const files = inspectRun(run, { data: [text], batches: 2 });
    assert.equal(files.source.kind, 'files');
    assert.equal(files.batches, 2);
    assert.equal(files.tokens, 2 * 4 * 32);
  });

  test('heatmap: one cell per (layer, expert), dead experts red, and the PNG decodes', async () => {
    const run = join(dir, 'moe');
    const r = inspectRun(run, { batches: 1 });
    const out = join(dir, 'heat');
    const files = await writeInspection(out, r);
    assert.deepEqual(files.map((f) => f.slice(out.length + 1)), [`${EXPERT_LOAD}.vl.json`, `${EXPERT_LOAD}.svg`, `${EXPERT_LOAD}.png`, ROUTING_JSON]);
    const svg = readFileSync(join(out, `${EXPERT_LOAD}.svg`), 'utf8');
    const cells = (s: string) => (s.split('class="mark-rect role-mark')[1].split('</g>')[0].match(/<path\b/g) ?? []).length;
    assert.equal(cells(svg), 2 * 8, 'layers x experts cells');
    assert.ok(svg.includes('layer 0') && svg.includes('layer 1'));
    const png = readFileSync(join(out, `${EXPERT_LOAD}.png`));
    const { width, height } = pngSize(png);
    const back = new Resvg(`<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${width}" height="${height}"><image width="${width}" height="${height}" xlink:href="data:image/png;base64,${png.toString('base64')}"/></svg>`).render();
    assert.equal(back.width, width);
    assert.ok(back.pixels.some((v, i) => i % 4 !== 3 && v < 64), 'the decoded image has dark pixels');
    assert.deepEqual(JSON.parse(readFileSync(join(out, ROUTING_JSON), 'utf8')).layers, JSON.parse(JSON.stringify(r.layers)));
    assert.equal(expertLoadCells(r).length, 16);
    // colour: a dead expert is red, a balanced one white, an overloaded one blue
    const fills = [...(await specToSvg(expertLoadHeatmapSpec([
      { layer: 'layer 1', expert: 0, utilisation: 0 }, { layer: 'layer 1', expert: 1, utilisation: 1 }, { layer: 'layer 1', expert: 2, utilisation: 2 },
    ]))).matchAll(/aria-roledescription="rect mark"[^>]*fill="rgb\((\d+), (\d+), (\d+)\)"/g)].map((m) => m.slice(1).map(Number));
    assert.equal(fills.length, 3);
    assert.ok(fills[0][0] > 100 && fills[0][0] > 2 * fills[0][2] && fills[0][0] > 2 * fills[0][1], `dead = red, got ${fills[0]}`);
    assert.ok(fills[1].every((c) => c > 230), `balanced = white, got ${fills[1]}`);
    assert.ok(fills[2][2] > 100 && fills[2][0] < 100, `overloaded = blue, got ${fills[2]}`);
  });
});

describe('moelab inspect: locked runs and bad input', () => {
  test('a locked run is inspected but not written: --out is required and may not point inside it', () => {
    const run = join(dir, 'moe');
    const outside = join(dir, 'outside');
    const lock = acquireRunLock(run, { command: 'test trainer' });
    try {
      assert.throws(() => inspectOutDir(run), (e: Error) => e instanceof InspectOutError && /trainer holds its lock/.test(e.message) && /--out/.test(e.message));
      assert.throws(() => inspectOutDir(run, join(run, 'mine')), /inside/);
      assert.throws(() => inspectOutDir(run, run), /inside/);
      assert.equal(inspectOutDir(run, outside), outside);
      const refused = cli(['inspect', '--run', 'moe']);
      assert.equal(refused.code, 1);
      assert.match(refused.err, /--out DIR/);
      assert.ok(!existsSync(join(run, INSPECT_DIR)), 'nothing written into the locked run');
      const ok = cli(['inspect', '--run', 'moe', '--out', 'outside', '--batches', '1']);
      assert.equal(ok.code, 0, ok.err);
      assert.match(ok.out, /layer 0: MoE, 8 experts, top-2/);
      assert.ok(existsSync(join(outside, `${EXPERT_LOAD}.png`)) && existsSync(join(outside, ROUTING_JSON)));
      const noSave = cli(['inspect', '--run', 'moe', '--no-save', '--batches', '1', '--json']);
      assert.equal(noSave.code, 0, noSave.err);
      assert.equal(JSON.parse(noSave.out).layers.length, 2);
      assert.ok(!existsSync(join(run, INSPECT_DIR)));
    } finally {
      lock.release();
    }
    assert.equal(inspectOutDir(run), join(run, INSPECT_DIR), 'unlocked: the default is <run>/inspect');
    const r = cli(['inspect', '--run', 'moe', '--top', '2']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /dead experts \d+( \([\d, ]+\))?; imbalance \(max\/mean load\) [\d.]+; drop rate 0\.000/);
    assert.match(r.out, /balancing bias: min/);
    assert.ok(existsSync(join(run, INSPECT_DIR, `${EXPERT_LOAD}.svg`)));
  });

  test('while a trainer runs: inspect reads its checkpoint, is refused the run folder, writes to --out', async () => {
    const args = ['train', '--data', corpus, '--out', 'live', '--steps', '100000', '--no-progress', '--no-sample', '--set', 'model.d=32', '--set', 'model.layers=2',
      '--set', 'model.heads=2', '--set', 'model.seq=32', '--set', 'train.batch=4', '--set', 'train.evalEvery=0', '--set', 'train.saveEvery=5',
      '--set', `model.ffn=${JSON.stringify(MOE)}`];
    const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, stdio: 'ignore' });
    try {
      await new Promise<void>((resolve, reject) => {
        const poll = setInterval(() => {
          if (existsSync(join(dir, 'live', 'state.json')) || child.exitCode !== null) {
            clearInterval(poll);
            if (child.exitCode !== null) reject(new Error(`the trainer exited with ${child.exitCode}`));
            else resolve();
          }
        }, 20);
      });
      const refused = cli(['inspect', '--run', 'live', '--batches', '1']);
      assert.equal(refused.code, 1);
      assert.match(refused.err, new RegExp(`a trainer holds its lock \\(pid ${child.pid} `));
      const ok = cli(['inspect', '--run', 'live', '--batches', '1', '--out', 'live-inspect']);
      assert.equal(ok.code, 0, ok.err);
      assert.match(ok.out, /layer 1: MoE, 8 experts/);
      assert.ok(existsSync(join(dir, 'live-inspect', ROUTING_JSON)));
      assert.ok(!readdirSync(join(dir, 'live')).includes(INSPECT_DIR));
      assert.equal(child.exitCode, null, 'the trainer is still training');
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
    }
  });

  test('no such run, a folder without a checkpoint, a dense run, --batches 0, an empty data file', () => {
    assert.throws(() => inspectRun(join(dir, 'nope')), /no run at .*nope: the folder does not exist/);
    mkdirSync(join(dir, 'empty'));
    assert.throws(() => inspectRun(join(dir, 'empty')), /holds no checkpoint/);
    assert.throws(() => inspectRun(join(dir, 'dense')), /is a dense model \(2 dense feed-forward layers\): nothing routes/);
    assert.throws(() => inspectRun(join(dir, 'moe'), { batches: 0 }), /batches must be a positive integer, got 0/);
    const empty = join(dir, 'empty.txt');
    writeFileSync(empty, '');
    assert.throws(() => inspectRun(join(dir, 'moe'), { data: [empty] }), /data file is empty/);
    const { model, tokenizer } = openRun(join(dir, 'moe'));
    assert.throws(() => inspectRouting(model, tokenizer, []), /no batches/);
  });

  test('a run whose data changed since training is inspected with a notice', async () => {
    const own = join(dir, 'own.txt');
    writeFileSync(own, readFileSync(corpus, 'utf8'));
    await train({ config: tinyTrainConfig(own, { 'model.ffn': MOE, 'train.steps': 2 }), dir: join(dir, 'moved') });
    const quiet: string[] = [];
    inspectRun(join(dir, 'moved'), { batches: 1, onNotice: (m) => quiet.push(m) });
    assert.deepEqual(quiet, []);
    writeFileSync(own, readFileSync(corpus, 'utf8') + 'more text\n');
    const notices: string[] = [];
    inspectRun(join(dir, 'moved'), { batches: 1, onNotice: (m) => notices.push(m) });
    assert.equal(notices.length, 1);
    assert.match(notices[0], /the data differs from the run's: 1 file\(s\) changed .*not the ones the run was evaluated on/);
    for (const [args, msg] of [
      [['inspect', '--run', 'nope'], /does not exist/],
      [['inspect', '--run', 'dense', '--no-save'], /dense model/],
      [['inspect', '--run', 'moe', '--batches', '0'], /--batches must be a positive integer, got '0'/],
    ] as const) {
      const r = cli([...args]);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.out}`);
      assert.match(r.err, msg);
    }
  });
});

describe('MoE.observeRouting: the assignments the layer dispatched, in the routing in effect', () => {
  const pairs = (tok: ArrayLike<number>, expert: ArrayLike<number>) => Array.from(tok, (t, a) => `${t},${expert[a]}`).sort();

  for (const [label, over, train] of [
    ['token choice with the bias', { expertBias: true }, false],
    ['uniform', { routing: 'uniform' }, true],
    ['expert choice (training)', { routing: 'expert-choice', capacityFactor: 1, balance: 'none' }, true],
    ['expert choice evaluated by expert choice', { routing: 'expert-choice', evalRouting: 'expert-choice', capacityFactor: 1, evalCapacityFactor: 1.5, balance: 'none' }, false],
    ['expert choice evaluated by token choice', { routing: 'expert-choice', capacityFactor: 1, balance: 'none' }, false],
  ] as const) {
    test(label, () => {
      const T = 24, d = 6;
      const m = makeMoE(d, over as never, 3);
      if (m.bias) m.bias.f32.set(randn(m.experts, 9, 0.2));
      m.train(train);
      const seen: RoutingChoices[] = [];
      m.observeRouting((c) => seen.push({ ...c, tok: c.tok.slice(), expert: c.expert.slice() }));
      const x = randn(T * d, 5);
      m.forward(new T32(x, [T, d]), 1);
      m.observeRouting(null);
      m.forward(new T32(x, [T, d]), 1);
      assert.equal(seen.length, 1, 'one call per forward while observed');
      const c = seen[0];
      assert.equal(c.routing, m.routingMode);
      assert.equal(c.T, T);
      const b = bruteForce(m, x, T);
      assert.deepEqual(pairs(c.tok, c.expert), pairs(b.kept.map((a) => a.t), b.kept.map((a) => a.e)));
    });
  }

  test('token choice with capacity: every choice, dropped ones included (counted like load)', () => {
    const T = 40, d = 6;
    const m = makeMoE(d, { capacityFactor: 0.5, evalCapacityFactor: 0.5 }, 4);
    m.eval();
    let c: RoutingChoices | null = null;
    m.observeRouting((r) => (c = { ...r, tok: r.tok.slice(), expert: r.expert.slice() }));
    const x = randn(T * d, 6);
    m.forward(new T32(x, [T, d]));
    const b = bruteForce(m, x, T);
    assert.ok(b.dropped > 0, 'the capacity drops some');
    const got = c! as RoutingChoices;
    assert.equal(got.tok.length, T * m.topk);
    const perExpert = new Array<number>(m.experts).fill(0);
    for (const e of got.expert) perExpert[e]++;
    assert.deepEqual(perExpert, b.counts);
    const all = new Set(pairs(got.tok, got.expert));
    for (const a of b.kept) assert.ok(all.has(`${a.t},${a.e}`));
  });
});
