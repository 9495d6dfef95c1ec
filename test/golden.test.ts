// The dense GPT against PyTorch: the reference model of ../shared/peers/torch/moe_lm.py, its
// weights, one batch, and its loss, logits and parameter gradients (fixtures/golden/dense.safetensors,
// made by scripts/make_goldens.py). Same weights must give the same numbers on both backends.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readSafetensors } from '../src/io/safetensors.js';
import { ref, nativeKernels, setBackend, type Kernels } from '../src/backend/index.js';
import { Tensor, noGrad } from '../src/tensor/index.js';
import { GPT } from '../src/nn/gpt.js';
import { MLP } from '../src/nn/mlp.js';

const FIXTURE = join(process.cwd(), 'fixtures', 'golden', 'dense.safetensors');

function loadGolden() {
  const { tensors, metadata } = readSafetensors(FIXTURE);
  const cfg = JSON.parse(metadata.config) as { d: number; layers: number; heads: number; seq: number; batch: number };
  const model = new GPT({ vocabSize: 256, d: cfg.d, layers: cfg.layers, heads: cfg.heads, seq: cfg.seq, dropout: 0, lnEps: 1e-5 },
    () => new MLP(cfg.d, 4 * cfg.d));
  for (const [name, p] of model.namedParameters()) {
    const t = tensors.get(name);
    assert.ok(t, `golden lacks ${name}`);
    assert.deepEqual(t.shape, [...p.shape], `shape of ${name}`);
    p.f32.set(t.data as Float32Array);
  }
  const x = new Tensor(tensors.get('input.x')!.data as Int32Array, [cfg.batch, cfg.seq]);
  const y = new Tensor(tensors.get('input.y')!.data as Int32Array, [cfg.batch * cfg.seq]);
  return { model, x, y, tensors };
}

for (const [bname, kern] of [['ref', ref], ['native', nativeKernels()]] as [string, Kernels][]) {
  describe(`dense GPT vs PyTorch (${bname})`, () => {
    test('loss, logits and every parameter gradient', () => {
      setBackend(kern);
      const { model, x, y, tensors } = loadGolden();
      // the parameter set and order are exactly torch's state_dict
      const names = model.namedParameters().map(([n]) => n);
      const torchNames = [...tensors.keys()].filter((k) => !/^(input|out|grad)\./.test(k));
      assert.deepEqual(names, torchNames);

      const { loss } = model.forward(x, y);
      const want = (tensors.get('out.loss')!.data as Float32Array)[0];
      assert.ok(Math.abs(loss!.item() - want) <= 1e-5 * Math.abs(want), `loss ${loss!.item()} vs torch ${want}`);
      loss!.backward();
      for (const [name, p] of model.namedParameters()) {
        const g = tensors.get(`grad.${name}`)!.data as Float32Array;
        let scale = 0;
        for (const v of g) scale = Math.max(scale, Math.abs(v));
        const got = p.grad!.f32;
        for (let i = 0; i < g.length; i++) {
          assert.ok(Math.abs(got[i] - g[i]) <= 1e-4 * Math.max(scale, 1e-3), `grad ${name}[${i}]: ${got[i]} vs torch ${g[i]} (max |g| ${scale})`);
        }
      }

      model.eval();
      const logits = noGrad(() => model.forward(x).logits.f32);
      const wantLogits = tensors.get('out.logits')!.data as Float32Array;
      for (let i = 0; i < wantLogits.length; i++) {
        assert.ok(Math.abs(logits[i] - wantLogits[i]) <= 1e-4, `logit ${i}: ${logits[i]} vs torch ${wantLogits[i]}`);
      }
    });
  });
}
