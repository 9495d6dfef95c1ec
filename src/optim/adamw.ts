/**
 * AdamW (Loshchilov & Hutter) with PyTorch's update rule, per-parameter-group hyperparameters,
 * and one fused native pass per parameter (moments, bias correction, decay and update together).
 */
import { adamwUpdate, sumOfSquares, scaleInPlace, type Tensor } from '../tensor/index.js';
import type { NamedArray, Optimizer } from './optimizer.js';

export interface ParamGroup {
  params: [string, Tensor][];
  weightDecay: number;
  /** Multiplies the learning rate the trainer passes to step() (default 1). */
  lrScale?: number;
}

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
}

export class AdamW implements Optimizer {
  private readonly m = new Map<Tensor, Float32Array>();
  private readonly v = new Map<Tensor, Float32Array>();
  step_ = 0;

  constructor(readonly groups: ParamGroup[], readonly opts: AdamWOptions) {
    for (const g of groups) {
      for (const [, p] of g.params) {
        this.m.set(p, new Float32Array(p.size));
        this.v.set(p, new Float32Array(p.size));
      }
    }
  }

  /** The usual split: weight decay on matrices (>= 2-D), none on biases, norms and other vectors. */
  static defaultGroups(named: [string, Tensor][], weightDecay: number): ParamGroup[] {
    return [
      { params: named.filter(([, p]) => p.ndim >= 2), weightDecay },
      { params: named.filter(([, p]) => p.ndim < 2), weightDecay: 0 },
    ];
  }

  step(lr: number): void {
    this.step_++;
    const { beta1, beta2, eps } = this.opts;
    const bc1 = 1 - beta1 ** this.step_, bc2 = 1 - beta2 ** this.step_;
    for (const g of this.groups) {
      const h = { lr: lr * (g.lrScale ?? 1), beta1, beta2, eps, bc1, bc2 };
      for (const [, p] of g.params) {
        // No gradient this step (a parameter outside the graph): torch skips such parameters too.
        if (!p.grad) continue;
        adamwUpdate(p.f32, p.grad.f32, this.m.get(p)!, this.v.get(p)!, h, g.weightDecay);
      }
    }
  }

  gradSquaredNorm(): number {
    let s = 0;
    for (const g of this.groups) for (const [, p] of g.params) if (p.grad) s += sumOfSquares(p.grad.f32);
    return s;
  }

  scaleGrads(s: number): void {
    for (const g of this.groups) for (const [, p] of g.params) if (p.grad) scaleInPlace(p.grad.f32, s);
  }

  zeroGrad(): void {
    for (const g of this.groups) for (const [, p] of g.params) p.grad = null;
  }

  stateDict(): Map<string, NamedArray> {
    const out = new Map<string, NamedArray>();
    out.set('adamw.step', { dtype: 'I32', shape: [1], data: Int32Array.of(this.step_) });
    for (const g of this.groups) {
      for (const [name, p] of g.params) {
        out.set(`${name}.exp_avg`, { dtype: 'F32', shape: [...p.shape], data: this.m.get(p)! });
        out.set(`${name}.exp_avg_sq`, { dtype: 'F32', shape: [...p.shape], data: this.v.get(p)! });
      }
    }
    return out;
  }

  loadStateDict(state: Map<string, NamedArray>): void {
    const step = state.get('adamw.step');
    if (!step) throw new Error('optimizer state: missing adamw.step');
    for (const g of this.groups) {
      for (const [name, p] of g.params) {
        for (const [suffix, dst] of [['exp_avg', this.m.get(p)!], ['exp_avg_sq', this.v.get(p)!]] as const) {
          const e = state.get(`${name}.${suffix}`);
          if (!e) throw new Error(`optimizer state: missing ${name}.${suffix}`);
          if (e.dtype !== 'F32' || e.data.length !== dst.length) throw new Error(`optimizer state: ${name}.${suffix} has shape [${e.shape}] (${e.dtype}), expected [${p.shape}] (F32)`);
          dst.set(e.data as Float32Array);
        }
      }
    }
    this.step_ = (step.data as Int32Array)[0];
  }

  stateBytes(): number {
    let n = 0;
    for (const a of this.m.values()) n += a.byteLength * 2;
    return n;
  }
}
