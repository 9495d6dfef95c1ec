// PEER expert use over an evaluation set (He 2024): the fraction of the N experts retrieved at
// least once and KL(usage || uniform) = sum_i p_i ln(p_i N), per layer and per head, equal a
// brute-force count of the retrieved ids; the trainer's eval lines carry them; moelab inspect shows
// them. Also: token labels for display.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { train, inspectRun, tokenLabel, getTokenizer, loadConfig, EXPERT_LOAD, ROUTING_JSON, INSPECT_DIR, type PeerLayerInspection } from '../src/index.js';
import { PEER } from '../src/nn/peer.js';
import { PeerUsage } from '../src/nn/peer_usage.js';
import { Tensor } from '../src/tensor/index.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
let dir = '';

/** Brute force: used fraction and KL(usage || uniform) of a list of expert ids over N experts. */
function usage(ids: number[], N: number): { used: number; kl: number } {
  const c = new Map<number, number>();
  for (const i of ids) c.set(i, (c.get(i) ?? 0) + 1);
  let kl = 0;
  for (const n of c.values()) kl += (n / ids.length) * Math.log((n / ids.length) * N);
  return { used: c.size / N, kl };
}

/** ids [T, heads*k] -> per head (columns j*k .. j*k+k) and all together, brute force. */
function bruteUsage(rows: Int32Array[], heads: number, k: number, N: number) {
  const perHead: number[][] = Array.from({ length: heads }, () => []), all: number[] = [];
  for (const ids of rows) {
    for (let i = 0; i < ids.length; i++) {
      perHead[Math.floor((i % (heads * k)) / k)].push(ids[i]);
      all.push(ids[i]);
    }
  }
  return { layer: usage(all, N), heads: perHead.map((h) => usage(h, N)), retrievals: all.length };
}

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'moelab-inspect-peer-'));
  writeFileSync(join(dir, 'corpus.txt'), 'the experts route the tokens to the model. '.repeat(200));
  const config = loadConfig({
    preset: 'tiny-peer',
    overrides: {
      'data.paths': [join(dir, 'corpus.txt')], 'model.d': 16, 'model.layers': 2, 'model.heads': 2, 'model.seq': 16, 'model.ffn.nSub': 8,
      'model.ffn.heads': 3, 'model.ffn.k': 4, 'model.ffn.dKey': 8, 'train.batch': 2, 'train.steps': 4, 'train.warmup': 1, 'train.logEvery': 1,
      'train.evalEvery': 2, 'train.evalBatches': 2,
    },
  });
  await train({ config, dir: join(dir, 'peer') });
});

describe('PEER expert use over an evaluation set', () => {
  test('PeerUsage equals brute force per layer and per head; the extremes are 0 and ln N', () => {
    const N = 16, heads = 3, k = 2;
    const u = new PeerUsage(N, heads, k);
    assert.equal(u.summary(), null, 'no forward counted yet');
    let s = 7;
    const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 8) % 1000;
    const rows = [0, 1, 2].map((f) => Int32Array.from({ length: (5 + f) * heads * k }, () => (rnd() < 600 ? rnd() % 4 : rnd() % N)));
    for (const r of rows) u.add(r);
    const b = bruteUsage(rows, heads, k, N), st = u.summary()!;
    close(st.peerUsedFraction as number, b.layer.used, 'layer used');
    close(st.peerUsageKL as number, b.layer.kl, 'layer KL');
    assert.equal(st.peerRetrievals, b.retrievals);
    (st.peerHeadUsedFraction as number[]).forEach((v, j) => close(v, b.heads[j].used, `head ${j} used`));
    (st.peerHeadUsageKL as number[]).forEach((v, j) => close(v, b.heads[j].kl, `head ${j} KL`));
    assert.ok((st.peerHeadUsageKL as number[]).some((v, j) => Math.abs(v - (st.peerHeadUsageKL as number[])[(j + 1) % heads]) > 1e-3), 'heads differ');
    u.reset();
    assert.equal(u.summary(), null, 'reset starts a new window');
    u.add(new Int32Array(4 * heads * k).fill(5)); // one expert takes everything
    close(u.summary()!.peerUsageKL as number, Math.log(N), 'one expert: KL = ln N');
    assert.equal(u.summary()!.peerUsedFraction, 1 / N);
    u.reset();
    u.add(Int32Array.from({ length: 2 * N * heads }, (_, i) => i % N)); // rows of 6 ids: every expert equally often
    close(u.summary()!.peerUsageKL as number, 0, 'even use: KL = 0');
    assert.throws(() => u.add(new Int32Array(5)), /not whole rows/);
  });

  test('a PEER layer counts evaluation forwards only, from resetStats on', () => {
    const p = new PEER(8, { nSub: 4, heads: 2, k: 2, dKey: 4, bn: false, activation: 'gelu', pkm: false, sparseGrads: false });
    const x = new Tensor(Float32Array.from({ length: 24 }, (_, i) => Math.sin(i)), [3, 8]);
    p.forward(x);
    assert.equal(p.stats(), null, 'a training forward is not counted');
    p.eval();
    p.forward(x);
    p.forward(x);
    assert.equal(p.stats()!.peerRetrievals, 2 * 3 * 2 * 2, 'two forwards of 3 tokens x 2 heads x k 2');
    p.resetStats();
    assert.equal(p.stats(), null);
  });

  test('eval lines and moelab inspect report coverage and KL per layer and head, equal to brute force', () => {
    const run = join(dir, 'peer');
    const evals = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.type === 'eval');
    assert.equal(evals.length, 2);
    for (const e of evals) {
      for (const l of ['layer0', 'layer1']) {
        const st = e.ffn[l];
        assert.equal(st.peerHeadUsedFraction.length, 3);
        assert.equal(st.peerHeadUsageKL.length, 3);
        assert.ok(st.peerUsageKL >= 0 && st.peerUsageKL <= Math.log(64));
        assert.equal(st.peerRetrievals, 2 * 2 * 16 * 3 * 4, 'evalBatches x batch x seq x heads x k: the whole evaluation set, not one forward');
      }
    }
    // brute force over the ids the layers retrieved during the inspection (layers 0, 1 alternate)
    const seen: Int32Array[][] = [[], []];
    let calls = 0;
    const orig = PEER.prototype.forward;
    PEER.prototype.forward = function (this: PEER, x: Tensor) {
      const y = orig.call(this, x);
      seen[calls++ % 2].push(this.lastIds!.slice());
      return y;
    };
    let r;
    try {
      r = inspectRun(run);
    } finally {
      PEER.prototype.forward = orig;
    }
    assert.equal(r.batches, 2);
    const last = evals.at(-1).ffn;
    for (const layer of r.layers) {
      assert.equal(layer.kind, 'peer');
      const l = layer as PeerLayerInspection;
      assert.deepEqual([l.experts, l.heads, l.k], [64, 3, 4]);
      const b = bruteUsage(seen[l.layer], 3, 4, 64);
      assert.equal(l.retrievals, b.retrievals);
      close(l.usedFraction, b.layer.used, 'layer used');
      close(l.usageKL, b.layer.kl, 'layer KL');
      l.perHead.forEach((h, j) => {
        close(h.usedFraction, b.heads[j].used, `head ${j} used`);
        close(h.usageKL, b.heads[j].kl, `head ${j} KL`);
      });
      // the trainer's last evaluation ran the same batches through the same weights
      const st = last[`layer${l.layer}`];
      assert.deepEqual([st.peerUsedFraction, st.peerUsageKL, st.peerHeadUsedFraction, st.peerHeadUsageKL], [l.usedFraction, l.usageKL, l.perHead.map((h) => h.usedFraction), l.perHead.map((h) => h.usageKL)]);
    }
    const cli = spawnSync(process.execPath, [CLI, 'inspect', '--run', run], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(cli.status, 0, cli.stderr);
    assert.match(cli.stdout, /layer 0: PEER, N = 64 experts, 3 heads x top-4, 768 retrievals/);
    assert.match(cli.stdout, /experts used [\d.]+ \(\d+ of 64\); KL\(usage \|\| uniform\) [\d.]+ nats/);
    assert.match(cli.stdout, /\| head \| experts used \| KL \(nats\) \|/);
    assert.ok(existsSync(join(run, INSPECT_DIR, ROUTING_JSON)));
    assert.ok(!existsSync(join(run, INSPECT_DIR, `${EXPERT_LOAD}.svg`)), 'no heatmap of single-neuron experts');
  });
});

describe('token labels', () => {
  test('bytes: printable ASCII as is, backslash doubled, control and non-ASCII bytes escaped', () => {
    const b = getTokenizer('bytes');
    assert.deepEqual([97, 32, 92, 10, 9, 13, 0, 127, 0xe2].map((id) => tokenLabel(b, id)), ['a', ' ', '\\\\', '\\n', '\\t', '\\r', '\\x00', '\\x7f', '\\xe2']);
  });

  test('gpt2: the BPE string with its leading space; newlines escaped', () => {
    const g = getTokenizer('gpt2');
    const the = g.encode(' the');
    assert.equal(the.length, 1);
    assert.equal(tokenLabel(g, the[0]), ' the');
    const nl = g.encode('\n\n');
    assert.equal(nl.length, 1);
    assert.equal(tokenLabel(g, nl[0]), '\\n\\n');
  });
});
