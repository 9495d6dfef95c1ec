// Finite-difference gradient checking for tensor ops.
//
// For an op f and fixed random weights R, checks d/dx sum(f(x) * R) from backward() against
// central differences (f(x+eps) - f(x-eps)) / 2eps, on a sample of elements of every input.
import assert from 'node:assert/strict';
import { Tensor, noGrad } from '../src/tensor/index.js';
import { randn, rng } from './util.js';

export interface GradcheckOpts {
  eps?: number;
  rtol?: number;
  atol?: number;
  samples?: number; // elements checked per input (all if the input is smaller)
  seed?: number;
}

function weightedSum(out: Tensor, R: Float32Array): number {
  const v = out.contiguous().f32;
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * R[i];
  return s;
}

/** inputs: float tensors to differentiate (requiresGrad is set here); fn builds the output from them. */
export function gradcheck(name: string, fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: GradcheckOpts = {}): void {
  const eps = opts.eps ?? 1e-2, rtol = opts.rtol ?? 3e-3, atol = opts.atol ?? 3e-3, samples = opts.samples ?? 24;
  for (const x of inputs) {
    x.requiresGrad = true;
    x.grad = null;
  }
  const out = fn(...inputs);
  const R = randn(out.size, (opts.seed ?? 7) + 1);
  out.backward(R.slice());
  const pick = rng(opts.seed ?? 11);
  inputs.forEach((x, xi) => {
    const data = x.data as Float32Array;
    const analytic = x.grad ? x.grad.f32 : new Float32Array(x.size);
    const n = x.size;
    const idx = n <= samples ? [...Array(n).keys()] : Array.from({ length: samples }, () => Math.floor(pick() * n));
    let scaleRef = 0;
    for (let i = 0; i < analytic.length; i++) scaleRef = Math.max(scaleRef, Math.abs(analytic[i]));
    for (const i of idx) {
      const pos = x.offset + i; // inputs are contiguous leaves
      const orig = data[pos];
      data[pos] = orig + eps;
      const fp = noGrad(() => weightedSum(fn(...inputs), R));
      data[pos] = orig - eps;
      const fm = noGrad(() => weightedSum(fn(...inputs), R));
      data[pos] = orig;
      const numeric = (fp - fm) / (2 * eps);
      const err = Math.abs(numeric - analytic[i]);
      const tol = atol * Math.max(1, scaleRef) + rtol * Math.abs(numeric);
      assert.ok(err <= tol, `${name}: input ${xi} element ${i}: analytic ${analytic[i]} vs numeric ${numeric} (err ${err.toExponential(2)} > tol ${tol.toExponential(2)})`);
    }
  });
}
