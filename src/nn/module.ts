/**
 * Modules: named parameters and buffers in registration order, so `namedParameters()` yields
 * exactly the names and order of the PyTorch reference's state_dict (checkpoints load in torch).
 */
import type { Tensor } from '../tensor/index.js';

export abstract class Module {
  private readonly _params = new Map<string, Tensor>();
  private readonly _buffers = new Map<string, Tensor>();
  private readonly _children = new Map<string, Module>();
  training = true;

  protected param(name: string, t: Tensor): Tensor {
    t.requiresGrad = true;
    this._params.set(name, t);
    return t;
  }

  /** Non-trainable state saved in checkpoints (e.g. BatchNorm running statistics). */
  protected buffer(name: string, t: Tensor): Tensor {
    this._buffers.set(name, t);
    return t;
  }

  protected child<M extends Module>(name: string, m: M): M {
    this._children.set(name, m);
    return m;
  }

  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, p] of this._params) out.push([prefix + n, p]);
    for (const [n, c] of this._children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, b] of this._buffers) out.push([prefix + n, b]);
    for (const [n, c] of this._children) out.push(...c.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  modules(): Module[] {
    return [this, ...[...this._children.values()].flatMap((c) => c.modules())];
  }

  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad = null;
      p.sparseGrad = null;
    }
  }
}

/** An ordered list of modules named 0, 1, ... (torch.nn.ModuleList). */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items;
    items.forEach((m, i) => this.child(String(i), m));
  }
}
