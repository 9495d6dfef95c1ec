// PEER (He 2024): N = nSub^2 single-neuron experts (rows u_i, v_i of two [N, d] tables) retrieved
// per head with product keys, as class PEER of the PyTorch reference. Layers 'all' (default) or a
// list of indices; the others get a dense MLP d -> 4d -> d. pkm: values-only product-key memory
// (Lample et al. 2019): no u table, no activation.
// Counts: params query h*dk*d + BatchNorm 2*h*dk + keys nSub*dk + tables (2 or 1)*N*d;
//         active = params - tables*(N*d - h*k*d); MACs = h*dk*d + h*nSub*dk + h*k*tables*d.
// The u / v tables get row-sparse gradients (h*k rows per token) and optionally bf16 moments.
// bf16Tables stores u / v as bfloat16 (2 bytes per weight instead of 4; kernels accumulate in
// float32, sparse Adam rounds the updated rows stochastically). It changes the parameters (their
// values are bf16-rounded and checkpoints hold them as BF16), so it is part of the model, not a
// training-only field; when false it is left out of the resolved config, so configs and run
// hashes from before the option are unchanged.
import { z } from 'zod';
import { posInt, layerList, checkLayerList, inLayerList, inSchemaOrder, type LayerList } from '../../config/fields.js';
import type { FfnKind, FfnTensor, FfnBuffer } from './kind.js';

const schema = z
  .object({
    type: z.literal('peer'),
    /** Sub-keys per half; N = nSub^2 experts. */
    nSub: posInt,
    /** Retrieval heads h. */
    heads: posInt.default(8),
    /** Experts per head k. */
    k: posInt.default(16),
    /** Query / key width (even: split into two halves). */
    dKey: posInt.default(128),
    /** BatchNorm1d on the queries. */
    bn: z.boolean().default(false),
    /** PEER layers: 'all' or indices; other layers get a dense MLP d -> 4d -> d. */
    layers: layerList.default('all'),
    activation: z.enum(['gelu', 'relu']).default('gelu'),
    /** Values-only product-key memory (Lample et al. 2019) instead of PEER (no u, no activation). */
    pkm: z.boolean().default(false),
    /** Keep the AdamW moments of the expert tables (u, v) in bf16. */
    bf16Moments: z.boolean().default(false),
    /** Store the expert tables (u, v) in bf16 (float32 accumulation, stochastic-rounding updates). */
    bf16Tables: z.boolean().default(false),
  })
  .strict();

export interface PeerFfnConfig {
  type: 'peer';
  nSub: number;
  heads: number;
  k: number;
  dKey: number;
  bn: boolean;
  layers: LayerList;
  activation: 'gelu' | 'relu';
  pkm: boolean;
  bf16Moments: boolean;
  /** Absent when false (see the note at the top). */
  bf16Tables?: boolean;
}

export interface PeerFfnSpec {
  kind: 'peer';
  /** Sub-keys per half; N = nSub^2 experts. */
  nSub: number;
  /** N = nSub^2 experts. */
  experts: number;
  /** Query heads (each retrieves k experts from the shared pool). */
  heads: number;
  /** Experts per head. */
  k: number;
  /** Query size per head (even); each half is scored against its own sub-key table. */
  dKey: number;
  /** BatchNorm1d over the h*dKey query features. */
  bn: boolean;
  activation: 'gelu' | 'relu';
  /** Product-key memory: values only, y = sum g_i v_i (no u table, no activation). */
  pkm: boolean;
  /** AdamW moments of the expert tables in bf16. */
  bf16Moments: boolean;
  /** Expert tables u, v stored in bf16. */
  bf16Tables: boolean;
}

/** Expert tables: u and v, or v only for pkm. */
const tables = (s: PeerFfnSpec): number => (s.pkm ? 1 : 2);

export const peerKind: FfnKind<typeof schema, PeerFfnConfig, PeerFfnSpec> = {
  type: 'peer',
  schema,
  derivable: [],
  trainingOnly: ['bf16Moments'],
  check(f, m, issue) {
    if (f.dKey % 2 !== 0) issue(['dKey'], `dKey (${f.dKey}) must be even (it is split into two sub-key halves)`);
    if (f.k > f.nSub) issue(['k'], `k (${f.k}) must be <= nSub (${f.nSub}): top-k is taken over each sub-key table`);
    checkLayerList(issue, f.layers, m.layers, ['layers']);
  },
  resolve: (f) => inSchemaOrder<PeerFfnConfig>({ ...f, bf16Tables: f.bf16Tables || undefined }, schema),
  inLayer: (cfg, i) => inLayerList(cfg.layers, i),
  layer: (cfg) => ({
    kind: 'peer', nSub: cfg.nSub, experts: cfg.nSub * cfg.nSub, heads: cfg.heads, k: cfg.k, dKey: cfg.dKey, bn: cfg.bn,
    activation: cfg.activation, pkm: cfg.pkm, bf16Moments: cfg.bf16Moments, bf16Tables: cfg.bf16Tables ?? false,
  }),
  parameters(s, d) {
    const q = s.heads * s.dKey;
    const out: FfnTensor[] = [{ name: 'keys', shape: [2, s.nSub, s.dKey / 2] }, { name: 'query.weight', shape: [q, d] }];
    if (s.bn) out.push({ name: 'bn.weight', shape: [q] }, { name: 'bn.bias', shape: [q] });
    const bf16 = s.bf16Tables || undefined;
    if (!s.pkm) out.push({ name: 'u.weight', shape: [s.experts, d], expert: true, sparse: true, bf16 });
    out.push({ name: 'v.weight', shape: [s.experts, d], expert: true, sparse: true, bf16 });
    return out;
  },
  buffers(s): FfnBuffer[] {
    if (!s.bn) return [];
    const q = s.heads * s.dKey;
    return [
      { name: 'bn.running_mean', shape: [q], dtype: 'F32' },
      { name: 'bn.running_var', shape: [q], dtype: 'F32' },
      { name: 'bn.num_batches_tracked', shape: [], dtype: 'I64' },
    ];
  },
  expertActive: (s, d) => s.heads * s.k * tables(s) * d,
  macs: (s, d) => s.heads * s.dKey * d + s.heads * s.nSub * s.dKey + s.heads * s.k * tables(s) * d,
  activationFloats(s, d) {
    const hk = s.heads * s.k;
    // query (+ normalised query), two sub-key score tables per head, k*k candidate sums, top-k
    // scores / gates / ids, u.x and its activation, output
    return s.heads * s.dKey * (s.bn ? 2 : 1) + 2 * s.heads * s.nSub + s.heads * s.k * s.k + 3 * hk + 2 * hk + d;
  },
  sparseLookups: (s) => s.heads * s.k,
  bf16Moments: (s) => s.bf16Moments,
  // bf16 moments first (training only); then bf16 tables (changes the model, so new runs only)
  lighter: (s) =>
    !s.bf16Moments ? { layer: { ...s, bf16Moments: true }, change: 'model.ffn.bf16Moments: true' }
    : !s.bf16Tables ? { layer: { ...s, bf16Tables: true }, change: 'model.ffn.bf16Tables: true' }
    : undefined,
  shrinkHint: (s) => `a smaller expert table (model.ffn.nSub below ${s.nSub}) or fewer PEER layers (model.ffn.layers)`,
};
