// Multiple-choice scoring: log-likelihoods equal a direct softmax over the model's logits, do not
// depend on how requests are packed into forwards, truncate from the left and score long
// continuations in blocks as documented; the metrics match hand computations.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, noGrad } from '../src/tensor/index.js';
import type { GPT } from '../src/nn/gpt.js';
import { getTokenizer } from '../src/data/tokenizer.js';
import { scoreChoices } from '../src/eval/choice.js';
import { itemMetrics, predict, summarize } from '../src/eval/mc_metrics.js';
import { tinyModel } from './eval_util.js';
import { loadConfig, buildModel } from '../src/index.js';

const tok = getTokenizer('bytes');

/** sum_{t in [from, all.length)} log p(all[t] | all[start..t)) from one forward over all[start..end). */
function directLL(model: GPT, all: number[], start: number, from: number, end = all.length): number {
  const x = Int32Array.from(all.slice(start, end - 1));
  const V = model.shape.vocabSize;
  const logits = noGrad(() => model.logits(new Tensor(x, [1, x.length])).f32);
  let ll = 0;
  for (let t = from; t < end; t++) {
    const p = t - 1 - start;
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[p * V + v]);
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(logits[p * V + v] - max);
    ll += logits[p * V + all[t]] - max - Math.log(z);
  }
  return ll;
}

const bytes = (s: string): number[] => Array.from(Buffer.from(s, 'utf8'));

describe('scoreChoices', () => {
  const model = tinyModel(16);

  test('short requests: ll equals a direct softmax, whatever the packing', () => {
    const reqs = [
      { context: 'The cat', continuations: [' sat', ' ran away', ' é'] },
      { context: 'ab', continuations: [' c'] },
      { context: 'xyz q', continuations: [' 1', ' 22', ' 333', ' 4444'] },
    ];
    const a = scoreChoices(model, tok, reqs, { batchTokens: 1, kvCache: false });
    const b = scoreChoices(model, tok, reqs); // the context shared through a KV cache
    reqs.forEach((r, i) => r.continuations.forEach((c, k) => {
      const all = bytes(r.context + c);
      const want = directLL(model, all, 0, bytes(r.context).length);
      assert.ok(Math.abs(a[i][k].logLik - want) <= 1e-5 * Math.abs(want) + 1e-6, `req ${i} choice ${k}: ${a[i][k].logLik} vs ${want}`);
      assert.ok(Math.abs(b[i][k].logLik - a[i][k].logLik) <= 1e-5 * Math.abs(want), `the KV cache changes the score: ${b[i][k].logLik} vs ${a[i][k].logLik}`);
      assert.equal(a[i][k].tokens, bytes(c).length);
      assert.equal(a[i][k].truncated, false);
    }));
  });

  test('long inputs are cut from the left; long continuations are scored in blocks of seq', () => {
    const ctx = 'a long context that does not fit';
    const [[s]] = scoreChoices(model, tok, [{ context: ctx, continuations: [' yes', ' no'] }]);
    const all = bytes(ctx + ' yes');
    assert.equal(s.truncated, true);
    const want = directLL(model, all, all.length - 1 - 16, all.length - 4);
    assert.ok(Math.abs(s.logLik - want) <= 1e-5 * Math.abs(want), `${s.logLik} vs ${want}`);

    const cont = ' a continuation of forty bytes or so....';
    const [[l]] = scoreChoices(model, tok, [{ context: 'Q:', continuations: [cont] }]);
    const whole = bytes('Q:' + cont);
    let blocks = 0;
    for (let f = 2; f < whole.length; f += 16) {
      const e = Math.min(f + 16, whole.length) - 1;
      blocks += directLL(model, whole, Math.max(0, e - 16), f, e + 1);
    }
    assert.equal(l.tokens, whole.length - 2);
    assert.ok(Math.abs(l.logLik - blocks) <= 1e-5 * Math.abs(blocks), `${l.logLik} vs ${blocks}`);
  });

  test('shared context: all choices in one cached forward equal one row per choice (nothing cut)', () => {
    const reqs = [
      { context: 'Q: é?', continuations: [' a', ' bb', ' ccc', 'd', ' e f g h', ' é'] }, // 'd': one token, no branch
      { context: 'x', continuations: ['y', 'z'] },
      { context: 'same same', continuations: [' tie', ' tie'] },
    ];
    const rows = scoreChoices(model, tok, reqs, { kvCache: false });
    const shared = scoreChoices(model, tok, reqs); // all three requests in one prefill and one branch forward
    const alone = scoreChoices(model, tok, reqs, { batchTokens: 1 }); // one request per forward
    reqs.forEach((r, i) => r.continuations.forEach((_, k) => {
      const a = rows[i][k];
      for (const b of [shared[i][k], alone[i][k]]) {
        assert.ok(Math.abs(a.logLik - b.logLik) <= 1e-5 * Math.max(1, Math.abs(a.logLik)), `req ${i} choice ${k}: ${b.logLik} vs ${a.logLik}`);
        assert.deepEqual({ ...b, logLik: 0 }, { ...a, logLik: 0 });
      }
    }));
    assert.equal(shared[2][0].logLik, shared[2][1].logLik, 'identical choices tie exactly');
  });

  test('shared context cut once for the longest choice equals brute force on (cut context + choice)', () => {
    // 21 context bytes, longest continuation 6 tokens: 16 + 1 - 6 = 11 context bytes are read by every
    // choice; 'é' (2 bytes) straddles that cut, so it moves one byte right (10 bytes read)
    const ctx = 'abcdefghéjklmnopqrs';
    const conts = [' s', ' tu', ' vwxyz', ' é'];
    const [got] = scoreChoices(model, tok, [{ context: ctx, continuations: conts }]);
    const cut = 'jklmnopqrs';
    assert.equal(Buffer.byteLength(cut), 10);
    got.forEach((s, k) => {
      assert.equal(s.context, cut, 'every choice reports the one cut context it read');
      assert.equal(s.truncated, true);
      const [[brute]] = scoreChoices(model, tok, [{ context: cut, continuations: [conts[k]] }], { kvCache: false });
      const direct = directLL(model, bytes(cut + conts[k]), 0, Buffer.byteLength(cut));
      assert.equal(brute.truncated, false);
      assert.ok(Math.abs(s.logLik - brute.logLik) <= 1e-5 * Math.abs(brute.logLik), `choice ${k}: ${s.logLik} vs brute ${brute.logLik}`);
      assert.ok(Math.abs(s.logLik - direct) <= 1e-5 * Math.abs(direct), `choice ${k}: ${s.logLik} vs direct ${direct}`);
    });
    // without the split character the cut keeps exactly seq + 1 - n_max bytes; kvCache: false cuts per choice
    const [plain] = scoreChoices(model, tok, [{ context: 'abcdefghijklmnopqrst', continuations: [' s', ' vwxyz'] }]);
    assert.equal(plain[0].context, 'jklmnopqrst');
    const [harness] = scoreChoices(model, tok, [{ context: 'abcdefghijklmnopqrst', continuations: [' s', ' vwxyz'] }], { kvCache: false });
    assert.ok(Math.abs(harness[1].logLik - plain[1].logLik) <= 1e-5 * Math.abs(plain[1].logLik), 'the longest choice reads the same context either way');
    const perChoice = directLL(model, bytes('abcdefghijklmnopqrst s'), 22 - 1 - 16, 20);
    assert.ok(Math.abs(harness[0].logLik - perChoice) <= 1e-5 * Math.abs(perChoice), 'kvCache: false keeps the harness per-choice cut');
  });

  test('many long branches (attention in several groups) equal one row per choice', () => {
    const wide = tinyModel(320);
    const conts = Array.from({ length: 30 }, (_, k) => ` choice number ${k} ${'x'.repeat(k % 5)}`);
    // the second request's branches are long (>= 32 tokens on average): attention runs branch by branch
    const long = [' the first of three rather long continuations here', ' a second, equally long continuation of the context', ' and a third one, the longest continuation of all three'];
    const reqs = [{ context: 'Pick one of these choices:', continuations: conts }, { context: 'Long ones:', continuations: long }];
    const rows = scoreChoices(wide, tok, reqs, { kvCache: false });
    assert.ok(conts.reduce((a, c) => a + Buffer.byteLength(c) - 1, 0) > 2 * 256, 'more branch tokens than two attention groups');
    assert.ok(long.every((c) => Buffer.byteLength(c) > 40));
    for (const batchTokens of [undefined, 64]) { // 64: several branch forwards per batch
      const shared = scoreChoices(wide, tok, reqs, { batchTokens });
      rows.forEach((r, i) => r.forEach((a, k) => assert.ok(Math.abs(a.logLik - shared[i][k].logLik) <= 1e-5 * Math.abs(a.logLik), `req ${i} choice ${k}: ${shared[i][k].logLik} vs ${a.logLik}`)));
    }
  });

  test('an MoE (token choice, no capacity limit at eval) scores the same shared or row by row', () => {
    const config = loadConfig({ preset: 'tiny-moe', overrides: { 'model.d': 32, 'model.layers': 2, 'model.heads': 2, 'model.seq': 32 } });
    const moe = buildModel(config.model, 4);
    const reqs = [
      { context: 'A context long enough to be cut once for these choices.', continuations: [' one', ' two words', ' three more words'] },
      { context: 'Short:', continuations: [' a', ' bb'] },
    ];
    const rows = scoreChoices(moe, tok, reqs, { kvCache: false });
    const shared = scoreChoices(moe, tok, reqs);
    const brute = shared.map((r, i) => r.map((s, k) => scoreChoices(moe, tok, [{ context: s.context, continuations: [reqs[i].continuations[k]] }], { kvCache: false })[0][0]));
    shared.forEach((r, i) => r.forEach((s, k) => {
      const want = s.truncated ? brute[i][k] : rows[i][k];
      assert.ok(Math.abs(s.logLik - want.logLik) <= 1e-5 * Math.abs(want.logLik), `req ${i} choice ${k}: ${s.logLik} vs ${want.logLik}`);
    }));
    assert.ok(shared[0][0].truncated && !shared[1][0].truncated);
  });

  test('trailing context whitespace moves to the continuation; an empty context reads "\\n"', () => {
    const [[m]] = scoreChoices(model, tok, [{ context: 'Answer: ', continuations: ['x'] }]);
    assert.equal(m.context, 'Answer:');
    assert.equal(m.continuation, ' x');
    assert.equal(m.tokens, 2);
    const [[e]] = scoreChoices(model, tok, [{ context: '', continuations: ['hi'] }]);
    assert.equal(e.context, '\n');
    const want = directLL(model, bytes('\nhi'), 0, 1);
    assert.ok(Math.abs(e.logLik - want) <= 1e-5 * Math.abs(want));
    assert.throws(() => scoreChoices(model, tok, [{ context: 'a', continuations: [''] }]), /request 0, choice 0: the continuation "" encodes to no tokens/);
    assert.throws(() => scoreChoices(model, tok, [{ context: 'a', continuations: [] }]), /no continuations/);
  });
});

describe('metrics', () => {
  test('acc, acc_norm and acc_bytes by hand', () => {
    // acc: max ll is choice 2; per char: -3, -1, -1.25 -> choice 1
    assert.deepEqual(predict([-3, -4, -2.5], ['a', 'bbbb', 'cc']), { acc: 2, acc_norm: 1, acc_bytes: 1 });
    // 'éé' is 2 characters but 4 bytes: per char -1 vs -0.9 -> 1; per byte -0.5 vs -0.9 -> 0
    assert.deepEqual(predict([-2, -2.7], ['éé', 'abc']), { acc: 0, acc_norm: 1, acc_bytes: 0 });
    assert.deepEqual(itemMetrics([-2, -2.7], ['éé', 'abc'], 1), { acc: 0, acc_norm: 1, acc_bytes: 0, gold_ll: -2.7 });
    // ties go to the first choice, as argmax does
    assert.equal(predict([-1, -1], ['a', 'b']).acc, 0);
  });

  test('mean, std, 95% interval over trials and stderr over items by hand', () => {
    const s = summarize([[1, 0, 1, 1], [0, 0, 1, 1]]);
    assert.ok(Math.abs(s.mean - 0.625) < 1e-12);
    assert.ok(Math.abs(s.std - Math.sqrt(2 * 0.125 ** 2)) < 1e-12);
    const half = (1.96 * s.std) / Math.sqrt(2);
    assert.ok(Math.abs(s.ci95[0] - (0.625 - half)) < 1e-12 && Math.abs(s.ci95[1] - (0.625 + half)) < 1e-12);
    assert.ok(Math.abs(s.stderr - (0.5 / 2 + Math.sqrt(1 / 3) / 2) / 2) < 1e-12);
    const one = summarize([[1, 0]]);
    assert.deepEqual([one.mean, one.std, one.ci95], [0.5, 0, [0.5, 0.5]]);
  });
});
