// Parameter, active-parameter and FLOP counts, with the PyTorch reference's conventions
// (moe_lm.py `LM.counts`):
//   total  = every parameter, the tied embedding once (no lm_head), position embeddings,
//            LayerNorms and biases; BatchNorm running statistics are buffers, not parameters
//   active = total minus the expert parameters a token does not use:
//            MoE  -(E - k) * (params of one expert: w1 + b1 + w2 + b2)
//            PEER -(2*N*d - h*k*2*d)          (u and v rows not retrieved)
//   MACs   = V*d (tied head) + per layer: qkv + proj weights + ffn MACs, where
//            dense fc1 + fc2 weights; MoE router E*d + k*2*d*hidden;
//            PEER query h*dk*d + h * keys (2*nSub*dk/2) + h*k*2*d
//   FLOPs  = 6 * MACs + 12 * L * d * S            (PaLM convention, no causal discount)
// Extensions the reference lacks, counted in the same spirit:
//   granularity G  -> E*G experts of hidden/G, k*G per token (same expert parameters, same MACs)
//   shared experts -> always-active MLPs of the fine-grained expert size (params + 2*d*hidden MACs)
//   pkm (values only) -> no u: params N*d, MACs query + h*keys + h*k*d, inactive N*d - h*k*d
// parameterShapes() lists the tensors under the reference's state_dict() names and layouts.
import { denseHidden, effectiveMoe, ffnKindOfLayer, vocabSize, type FfnType, type ModelConfig, type PeerFfnConfig } from '../config/schema.js';

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

interface FfnCount {
  params: number;
  active: number;
  macs: number;
  expertParams: number;
  expertActive: number;
}

const mlpParams = (d: number, h: number): number => d * h + h + h * d + d;

function peerCount(d: number, f: PeerFfnConfig): FfnCount {
  const N = f.nSub * f.nSub;
  const query = f.heads * f.dKey * d;
  const keys = f.nSub * f.dKey; // [2, nSub, dKey/2]
  const bn = f.bn ? 2 * f.heads * f.dKey : 0;
  const tables = f.pkm ? 1 : 2; // u and v, or v only
  const expertParams = tables * N * d;
  const expertActive = f.heads * f.k * tables * d;
  const params = query + bn + keys + expertParams;
  return {
    params,
    active: params - expertParams + expertActive,
    macs: query + f.heads * keys + f.heads * f.k * tables * d,
    expertParams,
    expertActive,
  };
}

function ffnCount(model: ModelConfig, kind: FfnType): FfnCount {
  const d = model.d;
  const f = model.ffn;
  if (kind === 'moe' && f.type === 'moe') {
    const e = effectiveMoe(f);
    const one = mlpParams(d, e.hidden); // w1 + b1 + w2 + b2 of one expert
    const router = e.experts * d;
    const shared = e.shared * mlpParams(d, e.hidden);
    const expertParams = e.experts * one;
    const expertActive = e.topk * one;
    return {
      params: router + expertParams + shared,
      active: router + expertActive + shared,
      macs: router + e.topk * 2 * d * e.hidden + e.shared * 2 * d * e.hidden,
      expertParams,
      expertActive,
    };
  }
  if (kind === 'peer' && f.type === 'peer') return peerCount(d, f);
  const h = denseHidden(model);
  const p = mlpParams(d, h);
  return { params: p, active: p, macs: 2 * d * h, expertParams: 0, expertActive: 0 };
}

export function countModel(model: ModelConfig): ModelCount {
  const { d, layers: L, seq: S } = model;
  const V = vocabSize(model);
  const embeddingParams = V * d + S * d + 2 * d; // tok, pos, ln_f
  const attnParams = 3 * d * d + 3 * d + d * d + d;
  const attnMacs = 4 * d * d;
  const perLayer: LayerCount[] = [];
  let total = embeddingParams;
  let active = embeddingParams;
  let macs = V * d; // tied lm head
  let expertTotal = 0;
  let expertActive = 0;
  for (let i = 0; i < L; i++) {
    const kind = ffnKindOfLayer(model, i);
    const f = ffnCount(model, kind);
    const norms = 4 * d; // ln1, ln2
    const lc: LayerCount = {
      layer: i,
      kind,
      params: norms + attnParams + f.params,
      active: norms + attnParams + f.active,
      macs: attnMacs + f.macs,
      ffnParams: f.params,
      ffnActive: f.active,
      ffnMacs: f.macs,
      expertParams: f.expertParams,
      expertActive: f.expertActive,
    };
    perLayer.push(lc);
    total += lc.params;
    active += lc.active;
    macs += lc.macs;
    expertTotal += f.expertParams;
    expertActive += f.expertActive;
  }
  return {
    paramsTotal: total,
    paramsActive: active,
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

/**
 * Parameters under the reference's `state_dict()` names, in its order (a module's own parameters
 * before its children's). Linear weights are [out, in]; MoE expert weights are [E, in, out].
 */
export function parameterShapes(model: ModelConfig): Map<string, number[]> {
  const { d, layers: L, seq: S } = model;
  const out = new Map<string, number[]>();
  const mlp = (prefix: string, h: number): void => {
    out.set(`${prefix}.fc1.weight`, [h, d]);
    out.set(`${prefix}.fc1.bias`, [h]);
    out.set(`${prefix}.fc2.weight`, [d, h]);
    out.set(`${prefix}.fc2.bias`, [d]);
  };
  out.set('tok.weight', [vocabSize(model), d]);
  out.set('pos.weight', [S, d]);
  for (let i = 0; i < L; i++) {
    const b = `blocks.${i}`;
    out.set(`${b}.ln1.weight`, [d]);
    out.set(`${b}.ln1.bias`, [d]);
    out.set(`${b}.attn.qkv.weight`, [3 * d, d]);
    out.set(`${b}.attn.qkv.bias`, [3 * d]);
    out.set(`${b}.attn.proj.weight`, [d, d]);
    out.set(`${b}.attn.proj.bias`, [d]);
    out.set(`${b}.ln2.weight`, [d]);
    out.set(`${b}.ln2.bias`, [d]);
    const kind = ffnKindOfLayer(model, i);
    const f = model.ffn;
    if (kind === 'moe' && f.type === 'moe') {
      const e = effectiveMoe(f);
      out.set(`${b}.ffn.w1`, [e.experts, d, e.hidden]);
      out.set(`${b}.ffn.b1`, [e.experts, e.hidden]);
      out.set(`${b}.ffn.w2`, [e.experts, e.hidden, d]);
      out.set(`${b}.ffn.b2`, [e.experts, d]);
      out.set(`${b}.ffn.router.weight`, [e.experts, d]);
      for (let j = 0; j < e.shared; j++) mlp(`${b}.ffn.shared.${j}`, e.hidden);
    } else if (kind === 'peer' && f.type === 'peer') {
      const N = f.nSub * f.nSub;
      out.set(`${b}.ffn.keys`, [2, f.nSub, f.dKey / 2]);
      out.set(`${b}.ffn.query.weight`, [f.heads * f.dKey, d]);
      if (f.bn) {
        out.set(`${b}.ffn.bn.weight`, [f.heads * f.dKey]);
        out.set(`${b}.ffn.bn.bias`, [f.heads * f.dKey]);
      }
      if (!f.pkm) out.set(`${b}.ffn.u.weight`, [N, d]);
      out.set(`${b}.ffn.v.weight`, [N, d]);
    } else {
      mlp(`${b}.ffn`, denseHidden(model));
    }
  }
  out.set('ln_f.weight', [d]);
  out.set('ln_f.bias', [d]);
  return out;
}

export interface BufferSpec {
  shape: number[];
  dtype: 'F32' | 'I64';
}

/** Persistent buffers (PEER query BatchNorm running statistics), as in state_dict(). */
export function bufferShapes(model: ModelConfig): Map<string, BufferSpec> {
  const out = new Map<string, BufferSpec>();
  const f = model.ffn;
  if (f.type !== 'peer' || !f.bn) return out;
  for (let i = 0; i < model.layers; i++) {
    if (ffnKindOfLayer(model, i) !== 'peer') continue;
    const b = `blocks.${i}.ffn.bn`;
    out.set(`${b}.running_mean`, { shape: [f.heads * f.dKey], dtype: 'F32' });
    out.set(`${b}.running_var`, { shape: [f.heads * f.dKey], dtype: 'F32' });
    out.set(`${b}.num_batches_tracked`, { shape: [], dtype: 'I64' });
  }
  return out;
}

/** Every tensor of a model checkpoint (parameters, then buffers) -> shape. */
export function modelTensorShapes(model: ModelConfig): Map<string, number[]> {
  const out = parameterShapes(model);
  for (const [k, v] of bufferShapes(model)) out.set(k, v.shape);
  return out;
}

/** The PEER expert tables (u, v) of a model: row-sparse gradients, optional bf16 moments. */
export function peerTableNames(model: ModelConfig): string[] {
  return [...parameterShapes(model).keys()].filter((n) => /\.ffn\.(u|v)\.weight$/.test(n) && model.ffn.type === 'peer');
}

/** 1234567 -> '1.23M' (as the reference's tables print them). */
export function formatCount(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}
