// Parameter, active-parameter and FLOP counts and the checkpoint's tensor names and shapes, all
// read from the model spec, with the PyTorch reference's conventions (moe_lm.py `LM.counts`):
//   total  = every parameter, the tied embedding once (no lm_head), position embeddings,
//            LayerNorms and biases; BatchNorm running statistics are buffers, not parameters
//   active = total minus the expert parameters a token does not use (per kind: spec/ffn/*.ts)
//   MACs   = V*d (tied head) + per layer: qkv + proj weights (4*d*d) + the feed-forward's MACs
//   FLOPs  = 6 * MACs + 12 * L * d * S            (PaLM convention, no causal discount)
// A layer's parameter count is the sum of its tensors' sizes, so counts and shapes cannot disagree.
// Tensors are named as the reference's state_dict() names them, in its order (a module's own
// parameters before its children's).
import type { ModelConfig } from '../config/schema.js';
import { ffnKind, type FfnType, type FfnTensor, type FfnBuffer } from './ffn/index.js';
import { specOf, type ModelSpec, type LayerSpec } from './model.js';

export interface LayerCount {
  layer: number;
  kind: FfnType;
  /** Parameters of the whole block (LayerNorms, attention, feed-forward). */
  params: number;
  active: number;
  /** Forward MACs per token, non-attention (qkv + proj + ffn weights). */
  macs: number;
  /** Feed-forward share of the above. */
  ffnParams: number;
  ffnActive: number;
  ffnMacs: number;
  /** Routed-expert parameters of this layer and how many of them one token uses. */
  expertParams: number;
  expertActive: number;
}

export interface ModelCount {
  paramsTotal: number;
  paramsActive: number;
  /** Forward multiply-accumulates per token, excluding attention scores (reference convention). */
  fwdMacsPerToken: number;
  /** Training FLOPs per token: 6 * MACs + 12 * L * d * S. */
  flopsPerToken: number;
  /** Fraction of routed-expert parameters a token does not use (0 for dense). */
  sparsity: number;
  /** Token + position embeddings and final LayerNorm. */
  embeddingParams: number;
  expertParamsTotal: number;
  expertParamsActive: number;
  perLayer: LayerCount[];
}

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);
const sumNumel = (ts: readonly { shape: number[] }[]): number => ts.reduce((s, t) => s + numel(t.shape), 0);

/** LayerNorms and attention of one block, relative to `blocks.i`. */
function attentionTensors(d: number): FfnTensor[] {
  return [
    { name: 'ln1.weight', shape: [d] }, { name: 'ln1.bias', shape: [d] },
    { name: 'attn.qkv.weight', shape: [3 * d, d] }, { name: 'attn.qkv.bias', shape: [3 * d] },
    { name: 'attn.proj.weight', shape: [d, d] }, { name: 'attn.proj.bias', shape: [d] },
    { name: 'ln2.weight', shape: [d] }, { name: 'ln2.bias', shape: [d] },
  ];
}

const ffnTensors = (l: LayerSpec, d: number): FfnTensor[] => ffnKind(l.ffn.kind).parameters(l.ffn, d);
const prefixed = <T extends { name: string }>(prefix: string, ts: T[]): T[] => ts.map((t) => ({ ...t, name: `${prefix}.${t.name}` }));

/** Every parameter with its full name, in state_dict() order. */
export function parameterList(model: ModelConfig | ModelSpec): FfnTensor[] {
  const s = specOf(model);
  const out: FfnTensor[] = [{ name: 'tok.weight', shape: [s.vocabSize, s.d] }, { name: 'pos.weight', shape: [s.seq, s.d] }];
  for (const l of s.layers) {
    out.push(...prefixed(`blocks.${l.index}`, attentionTensors(s.d)), ...prefixed(`blocks.${l.index}.ffn`, ffnTensors(l, s.d)));
  }
  out.push({ name: 'ln_f.weight', shape: [s.d] }, { name: 'ln_f.bias', shape: [s.d] });
  return out;
}

/** Every persistent buffer with its full name (PEER query BatchNorm statistics). */
export function bufferList(model: ModelConfig | ModelSpec): FfnBuffer[] {
  return specOf(model).layers.flatMap((l) => prefixed(`blocks.${l.index}.ffn`, ffnKind(l.ffn.kind).buffers(l.ffn)));
}

export function countModel(model: ModelConfig | ModelSpec): ModelCount {
  const s = specOf(model);
  const { d, seq: S } = s;
  const L = s.layers.length;
  const embeddingParams = s.vocabSize * d + S * d + 2 * d; // tok, pos, ln_f
  const attnParams = sumNumel(attentionTensors(d));
  const attnMacs = 4 * d * d;
  const perLayer: LayerCount[] = s.layers.map((l) => {
    const kind = ffnKind(l.ffn.kind);
    const tensors = ffnTensors(l, d);
    const ffnParams = sumNumel(tensors);
    const expertParams = sumNumel(tensors.filter((t) => t.expert));
    const expertActive = kind.expertActive(l.ffn, d);
    const ffnActive = ffnParams - expertParams + expertActive;
    const ffnMacs = kind.macs(l.ffn, d);
    return {
      layer: l.index, kind: l.ffn.kind, params: attnParams + ffnParams, active: attnParams + ffnActive, macs: attnMacs + ffnMacs,
      ffnParams, ffnActive, ffnMacs, expertParams, expertActive,
    };
  });
  const sum = (f: (l: LayerCount) => number): number => perLayer.reduce((a, l) => a + f(l), 0);
  const macs = s.vocabSize * d /* tied lm head */ + sum((l) => l.macs);
  const expertTotal = sum((l) => l.expertParams);
  const expertActive = sum((l) => l.expertActive);
  return {
    paramsTotal: embeddingParams + sum((l) => l.params),
    paramsActive: embeddingParams + sum((l) => l.active),
    fwdMacsPerToken: macs,
    flopsPerToken: 6 * macs + 12 * L * d * S,
    sparsity: expertTotal > 0 ? Math.max(0, 1 - expertActive / expertTotal) : 0,
    embeddingParams,
    expertParamsTotal: expertTotal,
    expertParamsActive: expertActive,
    perLayer,
  };
}

// ---------------------------------------------------------------------------------------------
// tensor names and shapes

/** Parameters under the reference's state_dict() names, in its order -> shape. */
export function parameterShapes(model: ModelConfig | ModelSpec): Map<string, number[]> {
  return new Map(parameterList(model).map((t) => [t.name, t.shape]));
}

export interface BufferSpec {
  shape: number[];
  dtype: 'F32' | 'I64';
}

/** Persistent buffers (PEER query BatchNorm running statistics), as in state_dict(). */
export function bufferShapes(model: ModelConfig | ModelSpec): Map<string, BufferSpec> {
  return new Map(bufferList(model).map((b) => [b.name, { shape: b.shape, dtype: b.dtype }]));
}

/** Every tensor of a model checkpoint (parameters, then buffers) -> shape. */
export function modelTensorShapes(model: ModelConfig | ModelSpec): Map<string, number[]> {
  const out = parameterShapes(model);
  for (const b of bufferList(model)) out.set(b.name, b.shape);
  return out;
}

/** A parameter with row-sparse gradients (a PEER expert table u or v), for sparse Adam. */
export interface SparseTable {
  name: string;
  shape: number[];
  /** Rows one token looks up. */
  lookupsPerToken: number;
  /** Optimizer moments in bf16 (else fp32). */
  bf16Moments: boolean;
  /** The table itself stored in bf16 (else fp32). */
  bf16: boolean;
}

export function sparseTables(model: ModelConfig | ModelSpec): SparseTable[] {
  const s = specOf(model);
  return s.layers.flatMap((l) => {
    const kind = ffnKind(l.ffn.kind);
    const lookupsPerToken = kind.sparseLookups?.(l.ffn) ?? 0;
    const bf16Moments = kind.bf16Moments?.(l.ffn) ?? false;
    return prefixed(`blocks.${l.index}.ffn`, ffnTensors(l, s.d).filter((t) => t.sparse)).map((t) => ({ name: t.name, shape: t.shape, lookupsPerToken, bf16Moments, bf16: !!t.bf16 }));
  });
}

/** The names of the parameters with row-sparse gradients (the PEER expert tables u, v). */
export function peerTableNames(model: ModelConfig | ModelSpec): string[] {
  return sparseTables(model).map((t) => t.name);
}

/** 1234567 -> '1.23M' (as the reference's tables print them). */
export function formatCount(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}
