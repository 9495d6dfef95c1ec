/** Causal multi-head self-attention: one fused QKV projection, fused attention kernel, output projection. */
import { Tensor, causalAttention } from '../tensor/index.js';
import { Module } from './module.js';
import { Linear } from './layers.js';

export class CausalSelfAttention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  constructor(readonly d: number, readonly heads: number) {
    super();
    if (d % heads !== 0) throw new Error(`attention: d=${d} is not divisible by heads=${heads}`);
    this.qkv = this.child('qkv', new Linear(d, 3 * d));
    this.proj = this.child('proj', new Linear(d, d));
  }
  /** x: [B, S, d] -> [B, S, d]. qkv's output is [B, S, 3, H, hd], the layout the kernel reads. */
  forward(x: Tensor): Tensor {
    return this.proj.forward(causalAttention(this.qkv.forward(x), this.heads));
  }
}
