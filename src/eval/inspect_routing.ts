/**
 * Routing you can see: runs a model in evaluation mode (its evaluation routing: token choice for an
 * expert-choice model unless configured otherwise) over fixed batches and reports, per layer,
 *   MoE:   each expert's load share, utilisation (load / fair share; 0 = dead), dead experts,
 *          imbalance (max / mean load), drop rate, tokens no expert processed, router entropy, the
 *          loss-free balancing bias, and each expert's most assigned tokens (inspect_tokens.ts);
 *   PEER:  the fraction of its N experts retrieved at least once and KL(usage || uniform), per layer
 *          and per head (nn/peer_usage.ts);
 *   dense: nothing routes.
 * The statistics are the layers' own evaluation windows (FeedForward.stats(), the numbers the
 * trainer writes to metrics.jsonl eval lines); the token counts come from MoE.observeRouting, i.e.
 * the routes the layers dispatched, never a second computation of routing.
 */
import type { GPT } from '../nn/gpt.js';
import { MoE } from '../nn/moe.js';
import { PEER } from '../nn/peer.js';
import type { FfnStats } from '../nn/ffn.js';
import type { MoeGate, MoeRouting } from '../spec/ffn/moe.js';
import type { Tokenizer } from '../data/tokenizer.js';
import type { Batch } from '../data/loader.js';
import { Tensor, noGrad } from '../tensor/index.js';
import { TokenExpertCounts, TokenOccurrences, type TokenPreference } from './inspect_tokens.js';

export interface ExpertInspection {
  expert: number;
  /** Routing assignments (before capacity drops). */
  assignments: number;
  /** assignments / all assignments of the layer. */
  load: number;
  /** load * experts: 1 = its fair share, 0 = dead. */
  utilisation: number;
  /** Loss-free balancing bias of the expert (routers with a bias only). */
  bias?: number;
  /** The expert's most assigned tokens. */
  topTokens: TokenPreference[];
}

export interface MoeLayerInspection {
  layer: number;
  kind: 'moe';
  experts: number;
  topk: number;
  gate: MoeGate;
  /** The routing evaluated (the layer's evalRouting). */
  routing: MoeRouting;
  tokens: number;
  assignments: number;
  deadExperts: number;
  /** Ids of the dead experts. */
  dead: number[];
  /** Max / mean load (= the largest utilisation). */
  imbalance: number;
  /** Fraction of assignments dropped by capacity. */
  dropRate: number;
  /** Fraction of tokens no expert processed. */
  unroutedTokens: number;
  /** Mean per-token entropy of the routing distribution (nats) and its maximum ln E. */
  routerEntropy: number;
  maxRouterEntropy: number;
  /** Loss-free balancing bias: range, mean and standard deviation over experts (null: no bias). */
  bias: { min: number; max: number; mean: number; std: number } | null;
  perExpert: ExpertInspection[];
}

export interface PeerLayerInspection {
  layer: number;
  kind: 'peer';
  /** N experts, retrieval heads and experts per head. */
  experts: number;
  heads: number;
  k: number;
  retrievals: number;
  uniqueExperts: number;
  /** Experts retrieved at least once / N. */
  usedFraction: number;
  /** KL(usage || uniform) = sum_i p_i ln(p_i N) in nats (0 = even, ln N = one expert). */
  usageKL: number;
  /** Entropy of usage / ln min(N, retrievals) (1 = even). */
  usageEvenness: number;
  perHead: { head: number; usedFraction: number; usageKL: number }[];
}

export interface DenseLayerInspection {
  layer: number;
  kind: 'dense';
}

export type LayerInspection = MoeLayerInspection | PeerLayerInspection | DenseLayerInspection;

export interface RoutingInspection {
  batches: number;
  /** Tokens run through the model (each MoE layer routes all of them). */
  tokens: number;
  layers: LayerInspection[];
}

export interface InspectRoutingOptions {
  /** Top tokens listed per expert (default 10; 0 lists none). */
  top?: number;
}

/**
 * Runs `batches` through the model in evaluation mode without a graph and inspects every layer's
 * routing (see the file comment). The model's mode, statistics windows and observers are left as
 * a validation pass leaves them: mode restored, windows holding these batches.
 */
export function inspectRouting(model: GPT, tokenizer: Tokenizer, batches: readonly Batch[], o: InspectRoutingOptions = {}): RoutingInspection {
  const top = o.top ?? 10;
  if (!(Number.isInteger(top) && top >= 0)) throw new Error(`inspectRouting: top must be an integer >= 0, got ${top}`);
  if (!batches.length) throw new Error('inspectRouting: no batches to run: give at least one batch of tokens');
  const blocks = model.blocks.items;
  const counts = blocks.map((b) => (b.ffn instanceof MoE ? new TokenExpertCounts(b.ffn.experts) : null));
  const occ = new TokenOccurrences();
  let ids: Int32Array = new Int32Array(0); // the running batch's token ids, row b*S + s
  blocks.forEach((b, l) => {
    if (b.ffn instanceof MoE) b.ffn.observeRouting((c) => counts[l]!.add(ids, c.tok, c.expert));
    b.ffn.resetStats();
  });
  const wasTraining = model.training;
  model.eval();
  let tokens = 0;
  try {
    noGrad(() => {
      for (const batch of batches) {
        ids = batch.x;
        occ.add(ids);
        tokens += batch.x.length;
        model.hiddenStates(new Tensor(batch.x, [batch.batch, batch.seq]));
      }
    });
  } finally {
    model.train(wasTraining);
    for (const b of blocks) if (b.ffn instanceof MoE) b.ffn.observeRouting(null);
  }
  const layers = blocks.map((b, l): LayerInspection => {
    const f = b.ffn;
    if (f instanceof MoE) return moeLayer(l, f, f.stats()!, counts[l]!, occ, tokenizer, top);
    if (f instanceof PEER) return peerLayer(l, f, f.stats()!);
    return { layer: l, kind: 'dense' };
  });
  return { batches: batches.length, tokens, layers };
}

function moeLayer(layer: number, m: MoE, s: FfnStats, c: TokenExpertCounts, occ: TokenOccurrences, tokenizer: Tokenizer, top: number): MoeLayerInspection {
  const E = m.experts, load = s.load as number[], utilisation = s.utilisation as number[];
  const bias = s.bias as number[] | undefined;
  const tops = c.top(top, occ, tokenizer);
  const perExpert = load.map((l, e): ExpertInspection => ({
    expert: e, assignments: c.perExpert[e], load: l, utilisation: utilisation[e], ...(bias ? { bias: bias[e] } : {}), topTokens: tops[e],
  }));
  let biasStats: MoeLayerInspection['bias'] = null;
  if (bias) {
    const mean = bias.reduce((a, b) => a + b, 0) / E;
    biasStats = { min: s.biasMin as number, max: s.biasMax as number, mean, std: Math.sqrt(bias.reduce((a, b) => a + (b - mean) ** 2, 0) / E) };
  }
  return {
    layer, kind: 'moe', experts: E, topk: m.topk, gate: m.routing.gate, routing: m.routing.evalRouting,
    tokens: s.tokens as number, assignments: c.perExpert.reduce((a, b) => a + b, 0),
    deadExperts: s.deadExperts as number, dead: utilisation.flatMap((u, e) => (u === 0 ? [e] : [])),
    imbalance: s.imbalance as number, dropRate: s.dropRate as number, unroutedTokens: s.unroutedTokens as number,
    routerEntropy: s.routerEntropy as number, maxRouterEntropy: Math.log(E), bias: biasStats, perExpert,
  };
}

function peerLayer(layer: number, p: PEER, s: FfnStats): PeerLayerInspection {
  const used = s.peerHeadUsedFraction as number[], kl = s.peerHeadUsageKL as number[];
  return {
    layer, kind: 'peer', experts: p.N, heads: p.o.heads, k: p.o.k, retrievals: s.peerRetrievals as number,
    uniqueExperts: s.peerUniqueExperts as number, usedFraction: s.peerUsedFraction as number,
    usageKL: s.peerUsageKL as number, usageEvenness: s.peerUsageEvenness as number,
    perHead: used.map((u, head) => ({ head, usedFraction: u, usageKL: kl[head] })),
  };
}
