/**
 * Decoder-only transformer (GPT-2 layout, as ../shared/peers/torch/moe_lm.py defines it):
 * token + learned position embeddings, pre-LayerNorm blocks of causal attention and a pluggable
 * feed-forward (dense, MoE or PEER per layer), final LayerNorm, LM head tied to the token embedding.
 *
 * Randomness (dropout masks, MoE router jitter) is keyed, never stateful: the caller sets the key
 * (step, micro-batch) with setRandomKey() before a training forward, and the draw at site s of
 * that forward uses the seed hash(model seed, step, micro, s) with
 *   s = 0 for the embedding dropout, and for layer l: 1 + 3l attention dropout,
 *   2 + 3l the feed-forward's own noise (router jitter), 3 + 3l feed-forward dropout.
 * Nothing random survives a forward except the key, so replaying (step, micro) replays the noise.
 */
import {
  Tensor, add, crossEntropy, tokenLogProbs, dropout, linear, noGrad, isGradEnabled, slice, reshape, cachedAttention,
  fillNormal, branchAttention, causalAttention,
} from '../tensor/index.js';
import { Module, ModuleList } from './module.js';
import { Embedding, LayerNorm } from './layers.js';
import { CausalSelfAttention } from './attention.js';
import { FeedForward } from './ffn.js';
import type { Rng } from '../util/random.js';

export interface GPTShape {
  vocabSize: number;
  d: number;
  layers: number;
  heads: number;
  seq: number; // maximum context (size of the position table)
  dropout: number;
  lnEps: number;
}

export class Block extends Module {
  readonly ln1: LayerNorm;
  readonly attn: CausalSelfAttention;
  readonly ln2: LayerNorm;
  readonly ffn: FeedForward;
  constructor(shape: GPTShape, ffn: FeedForward) {
    super();
    this.ln1 = this.child('ln1', new LayerNorm(shape.d, shape.lnEps));
    this.attn = this.child('attn', new CausalSelfAttention(shape.d, shape.heads));
    this.ln2 = this.child('ln2', new LayerNorm(shape.d, shape.lnEps));
    this.ffn = this.child('ffn', ffn);
  }
}

export interface ForwardResult {
  logits: Tensor; // [B, S, V]
  loss: Tensor | null; // mean cross-entropy (nats/token)
  aux: Tensor | null; // sum of the feed-forward layers' auxiliary losses (already weighted)
}

/** Per-layer key/value cache for incremental decoding: [maxLen, H, hd] per layer. */
export interface KVCache {
  k: Float32Array[];
  v: Float32Array[];
  len: number;
  maxLen: number;
}

/** A continuation of a cached prefix: its tokens, their next tokens, and the cache holding the prefix. */
export interface CachedBranch {
  ids: Int32Array;
  targets: Int32Array;
  cache: KVCache;
}

/** The random key of one forward: training step and micro-batch within it. */
export interface RandomKey {
  step: number;
  micro: number;
}

/** uint32 seed of random site `site` under (model seed, step, micro): a murmur3-style mix of the five words. */
function siteSeed(seed: number, key: RandomKey, site: number): number {
  let h = 0x243f6a88;
  for (const v of [seed % 2 ** 32, Math.floor(seed / 2 ** 32), key.step, key.micro, site]) {
    h = Math.imul(h ^ v, 0xcc9e2d51);
    h = Math.imul((h << 15) | (h >>> 17), 0x1b873593);
    h = (h ^ (h >>> 13)) >>> 0;
  }
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Branch tokens per branchAttention call in cachedBranchLogProbs (its scores are [tokens, prefix + tokens] per head). */
const BRANCH_GROUP_TOKENS = 256;

/**
 * Mean branch length from which a group's attention runs branch by branch through the fused
 * cachedAttention kernel rather than one branchAttention call (whose small GEMMs and N^2 own part
 * lose to it on long branches). Measured (d256, 4 heads, prefix 150-250): 8- and 16-token branches
 * 1.4x faster batched, 32 even, 64 1.1x and 100 1.3x faster branch by branch.
 */
const LONG_BRANCH = 32;

/** Rows of logits per chunk when log-probs are computed without a graph (bounds the [rows, V] temporary). */
const LOGIT_CHUNK_ELEMS = 2 ** 22;

export class GPT extends Module {
  readonly tok: Embedding;
  readonly pos: Embedding;
  readonly blocks: ModuleList<Block>;
  readonly ln_f: LayerNorm;
  private key: RandomKey | null = null;

  /** `seed` (a non-negative safe integer) is the model's random seed: dropout and jitter derive from it. */
  constructor(readonly shape: GPTShape, makeFfn: (layer: number) => FeedForward, readonly seed = 0) {
    super();
    if (!(Number.isSafeInteger(seed) && seed >= 0)) throw new Error(`GPT: seed must be a non-negative safe integer, got ${seed}`);
    this.tok = this.child('tok', new Embedding(shape.vocabSize, shape.d));
    this.pos = this.child('pos', new Embedding(shape.seq, shape.d));
    const blocks: Block[] = [];
    for (let i = 0; i < shape.layers; i++) blocks.push(new Block(shape, makeFfn(i)));
    this.blocks = this.child('blocks', new ModuleList(blocks));
    this.ln_f = this.child('ln_f', new LayerNorm(shape.d, shape.lnEps));
  }

  /**
   * Keys the random numbers of the following forwards (dropout masks, router jitter) to
   * (model seed, step, micro): two forwards under the same key draw the same noise. A training
   * forward that draws noise throws until a key is set; the trainer sets one per micro-batch.
   */
  setRandomKey(step: number, micro: number): void {
    if (!(Number.isSafeInteger(step) && step >= 0 && step < 2 ** 32) || !(Number.isSafeInteger(micro) && micro >= 0 && micro < 2 ** 32)) {
      throw new Error(`GPT.setRandomKey: step and micro must be integers in [0, 2^32), got (${step}, ${micro})`);
    }
    this.key = { step, micro };
  }

  /** The key set by setRandomKey (null before the first call). */
  randomKey(): RandomKey | null {
    return this.key ? { ...this.key } : null;
  }

  private seedOf(site: number): number {
    if (!this.key) throw new Error('GPT: this training forward draws random numbers (dropout or router jitter): call model.setRandomKey(step, micro) first');
    return siteSeed(this.seed, this.key, site);
  }

  private drop(x: Tensor, site: number): Tensor {
    if (!this.training || this.shape.dropout === 0) return x;
    return dropout(x, this.shape.dropout, this.seedOf(site));
  }

  /** Blocks and final LayerNorm: idx int32 [B, S] -> hidden [B, S, d] and the summed aux loss. */
  private trunk(idx: Tensor): { hidden: Tensor; aux: Tensor | null } {
    if (idx.dtype !== 'i32' || idx.ndim !== 2) throw new Error(`GPT: idx must be int32 [B, S], got ${idx.dtype} [${idx.shape.join(', ')}]`);
    const [B, S] = idx.shape;
    const d = this.shape.d;
    if (S > this.shape.seq) throw new Error(`sequence of ${S} tokens exceeds the model's context of ${this.shape.seq}`);
    let x = add(this.tok.forward(idx), slice(this.pos.weight, 0, 0, S)); // [B, S, d]
    x = this.drop(x, 0);
    let aux: Tensor | null = null;
    for (let l = 0; l < this.blocks.items.length; l++) {
      const b = this.blocks.items[l];
      x = add(x, this.drop(b.attn.forward(b.ln1.forward(x)), 1 + 3 * l));
      const noisy = this.training && this.key !== null;
      const h = b.ffn.forward(reshape(b.ln2.forward(x), [B * S, d]), noisy ? this.seedOf(2 + 3 * l) : undefined, S); // [B*S, d]
      x = add(x, this.drop(reshape(h, [B, S, d]), 3 + 3 * l));
      const a = b.ffn.auxLoss();
      if (a) aux = aux ? add(aux, a) : a;
    }
    return { hidden: this.ln_f.forward(x), aux };
  }

  /** The tied LM head: hidden [..., d] -> logits [..., V]. */
  head(hidden: Tensor): Tensor {
    return linear(hidden, this.tok.weight, null);
  }

  /**
   * Training forward. idx int32 [B, S]; targets int32 [B, S] or [B*S] (< 0: ignored). Returns the
   * logits [B, S, V], the mean cross-entropy when targets are given, and the summed aux loss.
   */
  forward(idx: Tensor, targets?: Tensor): ForwardResult {
    const { hidden, aux } = this.trunk(idx);
    const logits = this.head(hidden); // [B, S, V]
    const loss = targets ? crossEntropy(logits, targets) : null;
    return { logits, loss, aux };
  }

  /** Final hidden states (after ln_f): idx int32 [B, S] -> [B, S, d]. No loss is computed. */
  hiddenStates(idx: Tensor): Tensor {
    return this.trunk(idx).hidden;
  }

  /** Logits of every position: idx int32 [B, S] -> [B, S, V]. No loss is computed. */
  logits(idx: Tensor): Tensor {
    return this.head(this.trunk(idx).hidden);
  }

  /**
   * log p(targets[b, s] | idx[b, ..s]) for every position: idx, targets int32 [B, S] -> [B, S].
   * Positions with mask 0 (mask: 0/1 per position, [B*S] Float32Array or Tensor) or a target < 0
   * are 0. Without a graph (noGrad) the logits are formed a chunk of rows at a time, so no
   * [B, S, V] array exists; with a graph the result is differentiable (fine-tuning objectives).
   */
  tokenLogProbs(idx: Tensor, targets: Tensor, mask?: Float32Array | Tensor): Tensor {
    const { hidden } = this.trunk(idx); // validates idx
    const [B, S] = idx.shape;
    if (targets.dtype !== 'i32' || targets.size !== B * S) throw new Error(`GPT.tokenLogProbs: targets must be int32 with ${B * S} elements (idx is [${B}, ${S}])`);
    if (isGradEnabled()) return reshape(tokenLogProbs(this.head(hidden), targets, mask), [B, S]);
    const m = mask instanceof Tensor ? mask.contiguous().f32 : mask;
    if (m && m.length !== B * S) throw new Error(`GPT.tokenLogProbs: mask has ${m.length} entries, expected ${B * S}`);
    return new Tensor(this.chunkedLogProbs(reshape(hidden, [B * S, this.shape.d]), targets.contiguous().i32, m), [B, S]);
  }

  /** log p(t[i] | row i) from final hidden states [N, d], the logits formed a chunk of rows at a time (no graph). */
  private chunkedLogProbs(h: Tensor, t: Int32Array, m?: Float32Array): Float32Array {
    const N = h.shape[0], V = this.shape.vocabSize;
    const out = new Float32Array(N);
    const rows = Math.max(1, Math.floor(LOGIT_CHUNK_ELEMS / V));
    for (let r0 = 0; r0 < N; r0 += rows) {
      const r1 = Math.min(N, r0 + rows);
      const lp = tokenLogProbs(this.head(slice(h, 0, r0, r1)), new Tensor(t.subarray(r0, r1), [r1 - r0]), m?.subarray(r0, r1));
      out.set(lp.f32, r0);
    }
    return out;
  }

  newCache(maxLen = this.shape.seq): KVCache {
    const n = maxLen * this.shape.d;
    return {
      k: this.blocks.items.map(() => new Float32Array(n)),
      v: this.blocks.items.map(() => new Float32Array(n)),
      len: 0,
      maxLen,
    };
  }

  /**
   * The blocks without a graph, attention supplied by the caller: x [..., d] (R rows in all) ->
   * [..., d] before ln_f. attend(qkv [R, 3d] or [B, S, 3d], layer) returns the attention output
   * (any shape with R x d elements). seqLen goes to the feed-forward (per-sequence routing).
   */
  private blocksWith(x: Tensor, attend: (qkv: Tensor, layer: number) => Tensor, seqLen?: number): Tensor {
    const shape = x.shape, d = this.shape.d, R = x.size / d;
    this.blocks.items.forEach((b, li) => {
      const att = attend(b.attn.qkv.forward(b.ln1.forward(x)), li);
      x = add(x, reshape(b.attn.proj.forward(att), shape));
      x = add(x, reshape(b.ffn.forward(reshape(b.ln2.forward(x), [R, d]), undefined, seqLen), shape));
    });
    return x;
  }

  /** Blocks over `ids` (one sequence) at positions cache.len.., appending their keys/values: [1, n, d] before ln_f. */
  private cachedTrunk(ids: Int32Array, cache: KVCache): Tensor {
    const n = ids.length, pos0 = cache.len;
    if (pos0 + n > cache.maxLen) throw new Error(`KV cache full: ${pos0 + n} > ${cache.maxLen} positions`);
    const x = add(this.tok.forward(new Tensor(ids, [1, n])), slice(this.pos.weight, 0, pos0, pos0 + n)); // [1, n, d]
    const out = this.blocksWith(x, (qkv, li) => cachedAttention(qkv, this.shape.heads, cache.k[li], cache.v[li], pos0)); // attention [n, d]
    cache.len += n;
    return out;
  }

  /**
   * Incremental forward for generation: processes `ids` (one sequence) at positions cache.len ..,
   * appends their keys/values to the cache and returns logits of the last position [V].
   */
  forwardCached(ids: Int32Array, cache: KVCache): Float32Array {
    return noGrad(() => {
      const x = this.cachedTrunk(ids, cache);
      const n = ids.length;
      const last = slice(x, 1, n - 1, n).contiguous(); // [1, 1, d]
      return this.head(this.ln_f.forward(last)).f32.slice();
    });
  }

  /**
   * Prefill: B sequences (lengths may differ; right-padded to the longest) in one forward from
   * position 0, each one's keys/values written into its own cache (cache.len = its length); returns
   * each one's last-position logits [V]. Padding follows every real token, so causal attention keeps
   * it out of the real positions' results (an MoE's capacity limit at evaluation would count it).
   */
  forwardCachedBatch(seqs: Int32Array[], caches: KVCache[]): Float32Array[] {
    const { d, heads } = this.shape, B = seqs.length;
    if (caches.length !== B) throw new Error(`GPT.forwardCachedBatch: ${caches.length} caches for ${B} sequences`);
    if (B === 0) return [];
    const S = Math.max(...seqs.map((q) => q.length));
    seqs.forEach((q, g) => {
      if (q.length === 0) throw new Error(`GPT.forwardCachedBatch: sequence ${g} is empty`);
      if (q.length > caches[g].maxLen) throw new Error(`KV cache full: ${q.length} > ${caches[g].maxLen} positions`);
    });
    const ids = new Int32Array(B * S);
    seqs.forEach((q, g) => ids.set(q, g * S));
    return noGrad(() => {
      const x0 = add(this.tok.forward(new Tensor(ids, [B, S])), slice(this.pos.weight, 0, 0, S)); // [B, S, d]; validates S
      const x = this.blocksWith(x0, (qkv, li) => { // qkv [B, S, 3d]
        const rows = qkv.contiguous().f32;
        seqs.forEach((q, g) => {
          for (let t = 0; t < q.length; t++) {
            const r = (g * S + t) * 3 * d;
            caches[g].k[li].set(rows.subarray(r + d, r + 2 * d), t * d);
            caches[g].v[li].set(rows.subarray(r + 2 * d, r + 3 * d), t * d);
          }
        });
        return causalAttention(qkv, heads);
      }, S);
      const h = x.contiguous().f32, last = new Float32Array(B * d);
      seqs.forEach((q, g) => {
        last.set(h.subarray((g * S + q.length - 1) * d, (g * S + q.length) * d), g * d);
        caches[g].len = q.length;
      });
      const logits = this.head(this.ln_f.forward(new Tensor(last, [B, d]))).f32;
      return seqs.map((_, g) => logits.slice(g * this.shape.vocabSize, (g + 1) * this.shape.vocabSize));
    });
  }

  /**
   * Scores continuations ("branches") of cached prefixes in one forward. Branch r's tokens ids_r sit
   * at positions P .. P+n_r-1 (P = its cache's len) and attend to the P cached positions and to
   * their own earlier tokens, never to another branch's, so each result equals scoring the branch
   * alone after its prefix:  out_r[i] = log p(targets_r[i] | prefix, ids_r[0..i]).
   * All branches' tokens are packed (no padding) through every per-token layer; attention
   * (branchAttention) takes consecutive branches of one cache at once. Caches are read only.
   */
  cachedBranchLogProbs(branches: CachedBranch[]): Float32Array[] {
    const { d, heads } = this.shape;
    let N = 0;
    branches.forEach((b, r) => {
      if (b.targets.length !== b.ids.length) throw new Error(`GPT.cachedBranchLogProbs: branch ${r} has ${b.targets.length} targets for ${b.ids.length} ids`);
      if (b.cache.len + b.ids.length > b.cache.maxLen) throw new Error(`KV cache full: ${b.cache.len + b.ids.length} > ${b.cache.maxLen} positions`);
      N += b.ids.length;
    });
    if (N === 0) return branches.map(() => new Float32Array(0));
    const ids = new Int32Array(N), pos = new Int32Array(N), tg = new Int32Array(N), off: number[] = [];
    let o = 0;
    for (const b of branches) {
      off.push(o);
      ids.set(b.ids, o);
      tg.set(b.targets, o);
      for (let i = 0; i < b.ids.length; i++) pos[o + i] = b.cache.len + i;
      o += b.ids.length;
    }
    off.push(N);
    // attention groups: consecutive branches of one cache, at most BRANCH_GROUP_TOKENS tokens (the cost has an N^2 part)
    const groups: [number, number][] = [];
    for (let r = 0; r < branches.length; r++) {
      const g = groups[groups.length - 1];
      if (g && branches[g[0]].cache === branches[r].cache && off[r + 1] - off[g[0]] <= BRANCH_GROUP_TOKENS) g[1] = r + 1;
      else groups.push([r, r + 1]);
    }
    const out = noGrad(() => {
      const x0 = add(this.tok.forward(new Tensor(ids, [N])), this.pos.forward(new Tensor(pos, [N]))); // [N, d]
      const x = this.blocksWith(x0, (qkv, li) => { // qkv [N, 3d]
        const att = new Float32Array(N * d);
        for (const [r0, r1] of groups) {
          const { cache } = branches[r0];
          if (off[r1] - off[r0] >= LONG_BRANCH * (r1 - r0)) {
            // long branches: the fused kernel per branch (it writes the branch's keys past cache.len: scratch)
            for (let r = r0; r < r1; r++) {
              att.set(cachedAttention(slice(qkv, 0, off[r], off[r + 1]), heads, cache.k[li], cache.v[li], cache.len).f32, off[r] * d);
            }
          } else {
            const starts = Int32Array.from(off.slice(r0, r1 + 1), (v) => v - off[r0]);
            att.set(branchAttention(slice(qkv, 0, off[r0], off[r1]), heads, cache.k[li], cache.v[li], cache.len, starts).f32, off[r0] * d);
          }
        }
        return new Tensor(att, [N, d]);
      });
      return this.chunkedLogProbs(this.ln_f.forward(x), tg);
    });
    return branches.map((_, r) => out.slice(off[r], off[r + 1]));
  }
}

const RESIDUAL_OUT = ['proj.weight', 'fc2.weight', 'w2', '.v.weight'];

/**
 * GPT-2 style initialisation, as the reference: weights N(0, 0.02); residual-branch output
 * projections N(0, 0.02/sqrt(2L)); PEER's u N(0, d^-1/2) so u.x ~ N(0,1) for LayerNorm-ed x;
 * biases zero; LayerNorm (1, 0); product keys are initialised by their layer.
 */
export function initGPT(model: GPT, rng: Rng): void {
  const L = model.shape.layers, d = model.shape.d;
  for (const [name, p] of model.namedParameters()) {
    const leaf = name.split('.').pop()!;
    if (p.ndim >= 2 && (leaf === 'weight' || leaf === 'w1' || leaf === 'w2') && !name.includes('keys')) {
      let std = RESIDUAL_OUT.some((s) => name.endsWith(s)) ? 0.02 / Math.sqrt(2 * L) : 0.02;
      if (name.endsWith('.u.weight')) std = 1 / Math.sqrt(d);
      fillNormal(p, rng.nextU32(), 0, std); // native and threaded: PEER tables hold billions of weights
    } else if (leaf === 'bias' || leaf === 'b1' || leaf === 'b2') {
      p.f32.fill(0);
    }
  }
}
