/** Basic layers with PyTorch's parameter names and layouts. */
import { Module } from './module.js';
import { Tensor, zeros, full, linear, layerNorm, embedding } from '../tensor/index.js';

/** y = x W^T + b, W: [out, in] (torch.nn.Linear). */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, bias = true) {
    super();
    this.weight = this.param('weight', zeros([outFeatures, inFeatures]));
    this.bias = bias ? this.param('bias', zeros([outFeatures])) : null;
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

/** LayerNorm over the last axis with affine weight (ones) and bias (zeros). */
export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(readonly dim: number, readonly eps = 1e-5) {
    super();
    this.weight = this.param('weight', full([dim], 1));
    this.bias = this.param('bias', zeros([dim]));
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

/** Lookup table [num, dim] (torch.nn.Embedding). */
export class Embedding extends Module {
  readonly weight: Tensor;
  constructor(readonly num: number, readonly dim: number) {
    super();
    this.weight = this.param('weight', zeros([num, dim]));
  }
  forward(ids: Tensor): Tensor {
    return embedding(this.weight, ids);
  }
}
