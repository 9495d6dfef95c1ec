// Sampling: a sliding window past the context, validated options, determinism.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../src/config/load.js';
import { buildModel } from '../src/nn/build.js';
import { getTokenizer } from '../src/data/tokenizer.js';
import { generate, generateIds, sampleToken, slideKeep, validateSampling } from '../src/eval/generate.js';
import { Tensor } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/random.js';

const SEQ = 8;
const model = buildModel(validateConfig({ model: { d: 16, layers: 2, heads: 2, seq: SEQ } }).model, 1);
const tok = getTokenizer('bytes');

/** Greedy next token from a full (uncached) forward over `ctx`. */
function argmaxFull(ctx: number[]): number {
  const { logits } = model.forward(new Tensor(Int32Array.from(ctx), [1, ctx.length]));
  const V = model.shape.vocabSize;
  const last = logits.f32.subarray((ctx.length - 1) * V, ctx.length * V);
  let best = 0;
  for (let i = 1; i < V; i++) if (last[i] > last[best]) best = i;
  return best;
}

test('generate: more tokens than the context are all produced, each from the documented window', () => {
  model.eval();
  for (const prompt of [[65], [65, 66, 67, 68, 69, 70, 71, 72], Array.from({ length: 20 }, (_, i) => 40 + i)]) {
    const n = 3 * SEQ + 5;
    const notices: string[] = [];
    const ids = generateIds(model, prompt, { maxTokens: n, temperature: 0, onNotice: (m) => notices.push(m) });
    assert.equal(ids.length, n);
    // reference: the window is the last L tokens; L grows to SEQ, then drops to slideKeep(SEQ)
    const hist = [...prompt];
    let L = Math.min(prompt.length, SEQ);
    for (let i = 0; i < n; i++) {
      if (L > SEQ) L = slideKeep(SEQ);
      const want = argmaxFull(hist.slice(hist.length - L));
      assert.equal(ids[i], want, `token ${i} of prompt length ${prompt.length}`);
      hist.push(want);
      L++;
    }
    assert.ok(notices.some((m) => /reached the context of 8 tokens: continuing with a sliding window \(the last 4 tokens/.test(m)), notices.join('\n'));
    assert.equal(notices.some((m) => /the prompt has 20 tokens but the model's context is 8: only its last 8 tokens are used/.test(m)), prompt.length === 20);
    assert.equal(notices.length, prompt.length === 20 ? 2 : 1, 'each notice once');
  }
  assert.equal(slideKeep(8), 4);
  assert.equal(slideKeep(7), 4);
  assert.equal(slideKeep(1), 1);
});

test('generate: deterministic for a seed, different across seeds, exact count through the text API', () => {
  model.train(true);
  const o = { prompt: 'hello world, this prompt is longer than eight bytes', maxTokens: 40, temperature: 1, topK: 0, seed: 3 };
  const a = generateIds(model, tok.encode(o.prompt), o);
  assert.deepEqual(generateIds(model, tok.encode(o.prompt), o), a);
  assert.notDeepEqual(generateIds(model, tok.encode(o.prompt), { ...o, seed: 4 }), a);
  assert.equal(generate(model, tok, o), tok.decode(a));
  assert.equal(generateIds(model, [1], { maxTokens: 0, temperature: 1 }).length, 0);
  assert.equal(generate(model, tok, { prompt: '', maxTokens: 0, temperature: 0 }), '');
  assert.equal(model.training, true, 'training mode restored');
});

test('sampling options are validated with clear errors; temperature 0 is greedy', () => {
  const bad = (o: object, re: RegExp) => assert.throws(() => generate(model, tok, { prompt: 'a', maxTokens: 5, temperature: 1, ...o }), (e: unknown) => e instanceof RangeError && re.test((e as Error).message));
  bad({ temperature: -0.5 }, /temperature must be a finite number >= 0 \(0 = greedy\), got -0\.5/);
  bad({ temperature: NaN }, /temperature must be .* got NaN/);
  bad({ temperature: Infinity }, /temperature must be/);
  bad({ topP: 0 }, /top-p must be a number in \(0, 1\] \(1 = off\), got 0/);
  bad({ topP: -0.1 }, /top-p must be/);
  bad({ topP: 1.5 }, /top-p must be .* got 1\.5/);
  bad({ topK: -1 }, /top-k must be an integer >= 0 \(0 = all tokens\), got -1/);
  bad({ topK: 2.5 }, /top-k must be an integer/);
  bad({ maxTokens: -1 }, /max tokens must be an integer >= 0, got -1/);
  bad({ maxTokens: 1.5 }, /max tokens must be an integer/);
  bad({ seed: -1 }, /seed must be an integer >= 0, got -1/);
  assert.throws(() => sampleToken(new Float32Array(4), { temperature: -1 }, new Rng(0)), /temperature must be/);
  assert.doesNotThrow(() => validateSampling({ temperature: 0, topK: 0, topP: 1 }));
  // temperature 0: the arg-max whatever the seed; top-k 1 and tiny top-p agree with it
  const logits = Float32Array.from([0.1, 2, -1, 1.9]);
  for (let s = 0; s < 5; s++) {
    assert.equal(sampleToken(logits, { temperature: 0 }, new Rng(s)), 1);
    assert.equal(sampleToken(logits, { temperature: 1, topK: 1 }, new Rng(s)), 1);
    assert.equal(sampleToken(logits, { temperature: 1, topP: 1e-6 }, new Rng(s)), 1);
  }
  // a positive temperature samples: several tokens show up
  const seen = new Set<number>();
  const rng = new Rng(9);
  for (let i = 0; i < 200; i++) seen.add(sampleToken(logits, { temperature: 1 }, rng));
  assert.ok(seen.size >= 3, `sampled ${[...seen]}`);
});
