/**
 * The optimizers of one model: dense AdamW over ordinary parameters (decay on >= 2-D weights only)
 * and lazy sparse Adam over parameters whose layer produces row-sparse gradients (PEER's u and v).
 */
import type { Config } from '../config/schema.js';
import type { GPT } from '../nn/gpt.js';
import type { Tensor } from '../tensor/index.js';
import { AdamW } from '../optim/adamw.js';
import type { NamedArray, Optimizer } from '../optim/optimizer.js';
import { SparseAdam } from '../optim/sparse_adam.js';
import { sparseTables } from '../spec/count.js';

/** A module whose parameters get row-sparse gradients declares them with this method. */
interface HasSparseParams {
  sparseParameters(): Tensor[];
}

function hasSparse(m: unknown): m is HasSparseParams {
  return typeof (m as HasSparseParams).sparseParameters === 'function';
}

export class OptimizerSet implements Optimizer {
  constructor(readonly parts: { name: string; opt: Optimizer }[]) {}

  step(lr: number): void {
    for (const p of this.parts) p.opt.step(lr);
  }
  gradSquaredNorm(): number {
    return this.parts.reduce((s, p) => s + p.opt.gradSquaredNorm(), 0);
  }
  scaleGrads(s: number): void {
    for (const p of this.parts) p.opt.scaleGrads(s);
  }
  zeroGrad(): void {
    for (const p of this.parts) p.opt.zeroGrad();
  }
  stateDict(): Map<string, NamedArray> {
    const out = new Map<string, NamedArray>();
    for (const p of this.parts) for (const [k, v] of p.opt.stateDict()) out.set(`${p.name}/${k}`, v);
    return out;
  }
  loadStateDict(state: Map<string, NamedArray>): void {
    for (const p of this.parts) {
      const sub = new Map<string, NamedArray>();
      for (const [k, v] of state) if (k.startsWith(`${p.name}/`)) sub.set(k.slice(p.name.length + 1), v);
      p.opt.loadStateDict(sub);
    }
  }
  stateBytes(): number {
    return this.parts.reduce((s, p) => s + p.opt.stateBytes(), 0);
  }
}

export function buildOptimizers(model: GPT, cfg: Config): OptimizerSet {
  const tc = cfg.train;
  const sparse = new Set<Tensor>();
  for (const m of model.modules()) if (hasSparse(m)) for (const p of m.sparseParameters()) sparse.add(p);
  const named = model.namedParameters();
  const dense = named.filter(([, p]) => !sparse.has(p));
  const parts: { name: string; opt: Optimizer }[] = [
    { name: 'adamw', opt: new AdamW(AdamW.defaultGroups(dense, tc.weightDecay), { beta1: tc.beta1, beta2: tc.beta2, eps: tc.eps }) },
  ];
  if (sparse.size) {
    const bf16 = sparseTables(cfg.model).some((t) => t.bf16Moments);
    parts.push({
      name: 'sparse_adam',
      opt: new SparseAdam(named.filter(([, p]) => sparse.has(p)), { beta1: tc.beta1, beta2: tc.beta2, eps: tc.eps, bf16Moments: bf16, seed: tc.seed }),
    });
  }
  return new OptimizerSet(parts);
}
