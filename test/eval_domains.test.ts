// Domain perplexity: the windowings score every token exactly once, the sliding mode gives each
// token the promised context and matches a direct softmax over the model's logits, the default
// mode matches the training loss's windows, and suites resolve (and refuse) as documented.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GPT } from '../src/nn/gpt.js';
import { tinyModel } from './eval_util.js';
import { Tensor, noGrad } from '../src/tensor/index.js';
import { evalBatches } from '../src/data/loader.js';
import { planWindows, scoreTokens } from '../src/eval/windows.js';
import { headBytes, stripBrownTags, TEXT_DOMAINS, SLICE_BYTES } from '../src/eval/domains.js';
import { resolveSuite } from '../src/eval/suite.js';
import { randint } from './util.js';

/** -log p(tokens[t+1] | tokens[from..t]) for t in [from, to) from full logits and a float64 softmax. */
function directNats(model: GPT, tokens: Int32Array, start: number, len: number, skip: number): number {
  const x = tokens.slice(start, start + len);
  const logits = noGrad(() => model.logits(new Tensor(x, [1, len])).f32);
  const V = model.shape.vocabSize;
  let nats = 0;
  for (let t = skip; t < len; t++) {
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[t * V + v]);
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(logits[t * V + v] - max);
    nats -= logits[t * V + tokens[start + t + 1]] - max - Math.log(z);
  }
  return nats;
}

describe('planWindows', () => {
  test('every target is scored exactly once, with the promised context', () => {
    for (const n of [0, 1, 2, 5, 16, 17, 33, 100]) {
      for (const stride of [undefined, 1, 3, 8, 16]) {
        const seq = 16;
        const hits = new Array(n).fill(0);
        for (const w of planWindows(n, seq, stride)) {
          assert.ok(w.start >= 0 && w.len <= seq && w.start + w.len <= n - 1, `window ${JSON.stringify(w)} n ${n}`);
          for (let t = w.skip; t < w.len; t++) {
            hits[w.start + t + 1]++;
            if (stride !== undefined && w.start > 0) assert.ok(t >= seq - stride, `target ${w.start + t + 1} has context ${t} < seq - stride`);
          }
        }
        assert.deepEqual(hits, Array.from({ length: n }, (_, i) => (i === 0 ? 0 : 1)), `n ${n} stride ${stride}`);
      }
    }
  });

  test('the default is consecutive non-overlapping windows; bad strides are refused', () => {
    assert.deepEqual(planWindows(40, 16), [{ start: 0, len: 16, skip: 0 }, { start: 16, len: 16, skip: 0 }, { start: 32, len: 7, skip: 0 }]);
    assert.deepEqual(planWindows(40, 16, 8), [{ start: 0, len: 16, skip: 0 }, { start: 8, len: 16, skip: 8 }, { start: 16, len: 16, skip: 8 }, { start: 23, len: 16, skip: 9 }]);
    assert.throws(() => planWindows(40, 16, 0), /stride must be an integer in \[1, 16\]/);
    assert.throws(() => planWindows(40, 16, 17), /stride/);
  });
});

describe('scoreTokens', () => {
  const model = tinyModel();
  const tokens = randint(75, 256, 11);

  test('sliding windows equal a direct softmax over each window', () => {
    for (const stride of [1, 5, 16]) {
      const got = scoreTokens(model, tokens, { stride, batch: 3 });
      let want = 0;
      for (const w of planWindows(tokens.length, 16, stride)) want += directNats(model, tokens, w.start, w.len, w.skip);
      assert.equal(got.tokens, 74);
      assert.ok(Math.abs(got.nats - want) <= 1e-4 * Math.abs(want), `stride ${stride}: ${got.nats} vs ${want}`);
    }
  });

  test('the default equals the mean training loss over the same windows; a longer context helps a trained pattern', () => {
    const got = scoreTokens(model, tokens, { batch: 2 });
    let nats = 0, count = 0;
    noGrad(() => {
      for (const b of evalBatches(tokens, 16, 2)) {
        nats += model.forward(new Tensor(b.x, [b.batch, b.seq]), new Tensor(b.y, [b.batch * b.seq])).loss!.item() * b.tokens;
        count += b.tokens;
      }
    });
    assert.equal(got.tokens, count);
    assert.ok(Math.abs(got.nats - nats) <= 1e-4 * nats, `${got.nats} vs ${nats}`);
    // stride 1 and non-overlapping differ (different contexts), so the mode is really applied
    assert.notEqual(scoreTokens(model, tokens, { stride: 1 }).nats.toFixed(6), got.nats.toFixed(6));
  });
});

describe('domains and suites', () => {
  test('slices are cut at line ends within the budget; Brown tags are stripped', () => {
    assert.equal(headBytes('ab\ncd\nef', 7), 'ab\ncd\n');
    assert.equal(headBytes('short', 100), 'short');
    assert.equal(headBytes('é\né\n', 4), 'é\n');
    assert.equal(stripBrownTags('\n\n\tThe/at jury/nn said/vbd ./.\n\tA/at b/c/nn\n'), 'The jury said .\nA b/c\n');
    for (const d of TEXT_DOMAINS) {
      const t = d.text();
      const bytes = Buffer.byteLength(t);
      assert.ok(bytes > 20000 && bytes <= SLICE_BYTES && t.endsWith('\n'), `${d.name}: ${bytes} bytes`);
      assert.equal(d.text(), t, `${d.name} is deterministic`);
      assert.ok(!/\/(at|nn|vbd)\b/.test(t), `${d.name} holds POS tags`);
    }
  });

  test('the built-in suite and a user suite resolve; bad suites are refused with the reason', () => {
    assert.deepEqual(resolveSuite('domains').map((d) => d.name), ['in-domain', 'fiction', 'brown', 'licences', 'udhr', 'typescript']);
    const dir = mkdtempSync(join(tmpdir(), 'moelab-suite-'));
    mkdirSync(join(dir, 'code'));
    writeFileSync(join(dir, 'code', 'a.ts'), 'const x = 1;\n');
    writeFileSync(join(dir, 'notes.txt'), 'hello\n');
    writeFileSync(join(dir, 's.json'), JSON.stringify({ domains: { code: 'code', notes: ['notes.txt'] } }));
    const s = resolveSuite(join(dir, 's.json'));
    assert.deepEqual(s.map((d) => [d.name, d.kind === 'files' ? d.paths : []]), [['code', [join(dir, 'code')]], ['notes', [join(dir, 'notes.txt')]]]);
    assert.throws(() => resolveSuite(join(dir, 'nope.json')), /neither a built-in suite \(domains\) nor an existing JSON file/);
    writeFileSync(join(dir, 'bad1.json'), '{"domains": []}');
    assert.throws(() => resolveSuite(join(dir, 'bad1.json')), /expected \{"domains"/);
    writeFileSync(join(dir, 'bad2.json'), '{"domains": {"a b": "x"}}');
    assert.throws(() => resolveSuite(join(dir, 'bad2.json')), /domain name 'a b'/);
    writeFileSync(join(dir, 'bad3.json'), '{"domains": {"a": []}}');
    assert.throws(() => resolveSuite(join(dir, 'bad3.json')), /domain 'a' must name a path/);
    writeFileSync(join(dir, 'bad4.json'), '{"domains": ');
    assert.throws(() => resolveSuite(join(dir, 'bad4.json')), /not readable JSON/);
  });
});
