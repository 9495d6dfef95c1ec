/**
 * Decoder-only transformer (GPT-2 layout, as ../shared/peers/torch/moe_lm.py defines it):
 * token + learned position embeddings, pre-LayerNorm blocks of causal attention and a pluggable
 * feed-forward (dense, MoE or PEER per layer), final LayerNorm, LM head tied to the token embedding.
 */
import { Tensor, add, crossEntropy, dropout, linear, noGrad, slice, reshape } from '../tensor/index.js';
import { backend } from '../backend/index.js';
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

export class GPT extends Module {
  readonly tok: Embedding;
  readonly pos: Embedding;
  readonly blocks: ModuleList<Block>;
  readonly ln_f: LayerNorm;
  private dropoutCalls = 0;
  /** Training step, set by the trainer: dropout masks depend on (seed, step, call), so resumed runs repeat them. */
  step = 0;

  constructor(readonly shape: GPTShape, makeFfn: (layer: number) => FeedForward, readonly dropoutSeed = 0) {
    super();
    this.tok = this.child('tok', new Embedding(shape.vocabSize, shape.d));
    this.pos = this.child('pos', new Embedding(shape.seq, shape.d));
    const blocks: Block[] = [];
    for (let i = 0; i < shape.layers; i++) blocks.push(new Block(shape, makeFfn(i)));
    this.blocks = this.child('blocks', new ModuleList(blocks));
    this.ln_f = this.child('ln_f', new LayerNorm(shape.d, shape.lnEps));
  }

  /** TEMPORARY (lead branch): replaced by the moe helper's explicit keys. */
  setRandomKey(step: number, micro: number): void {
    this.step = step * 1024 + micro;
  }

  private drop(x: Tensor): Tensor {
    if (!this.training || this.shape.dropout === 0) return x;
    const seed = (Math.imul(this.dropoutSeed + 1, 0x9e3779b1) ^ Math.imul(this.step + 1, 0x85ebca6b) ^ ++this.dropoutCalls) >>> 0;
    return dropout(x, this.shape.dropout, seed);
  }

  /** idx, targets: int32 [B, S]. Returns logits [B, S, V] and, with targets, the mean loss. */
  forward(idx: Tensor, targets?: Tensor): ForwardResult {
    const [B, S] = idx.shape;
    const { d, vocabSize: V } = this.shape;
    if (S > this.shape.seq) throw new Error(`sequence of ${S} tokens exceeds the model's context of ${this.shape.seq}`);
    this.dropoutCalls = 0;
    let x = add(this.tok.forward(idx), slice(this.pos.weight, 0, 0, S)); // [B, S, d]
    x = this.drop(x);
    let aux: Tensor | null = null;
    for (const b of this.blocks.items) {
      x = add(x, this.drop(b.attn.forward(b.ln1.forward(x))));
      const h = b.ffn.forward(reshape(b.ln2.forward(x), [B * S, d])); // [B*S, d]
      x = add(x, this.drop(reshape(h, [B, S, d])));
      const a = b.ffn.auxLoss();
      if (a) aux = aux ? add(aux, a) : a;
    }
    const logits = linear(this.ln_f.forward(x), this.tok.weight, null); // tied head: [B, S, V]
    const loss = targets ? crossEntropy(reshape(logits, [B * S, V]), targets) : null;
    return { logits, loss, aux };
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
   * Incremental forward for generation: processes `ids` (one sequence) at positions cache.len ..,
   * appends their keys/values to the cache and returns logits of the last position [V].
   */
  forwardCached(ids: Int32Array, cache: KVCache): Float32Array {
    return noGrad(() => {
      const { d, heads } = this.shape;
      const hd = d / heads;
      const n = ids.length, pos0 = cache.len;
      if (pos0 + n > cache.maxLen) throw new Error(`KV cache full: ${pos0 + n} > ${cache.maxLen} positions`);
      const k = backend();
      let x = add(this.tok.forward(new Tensor(ids, [1, n])), slice(this.pos.weight, 0, pos0, pos0 + n)); // [1, n, d]
      this.blocks.items.forEach((b, li) => {
        const qkv = b.attn.qkv.forward(b.ln1.forward(x)).f32; // [n, 3, H, hd]
        const q = new Float32Array(n * d);
        for (let t = 0; t < n; t++) {
          q.set(qkv.subarray(t * 3 * d, t * 3 * d + d), t * d);
          cache.k[li].set(qkv.subarray(t * 3 * d + d, t * 3 * d + 2 * d), (pos0 + t) * d);
          cache.v[li].set(qkv.subarray(t * 3 * d + 2 * d, t * 3 * d + 3 * d), (pos0 + t) * d);
        }
        const att = new Float32Array(n * d);
        k.attentionKV(n, heads, hd, pos0, 1 / Math.sqrt(hd), q, cache.k[li], cache.v[li], att);
        x = add(x, b.attn.proj.forward(new Tensor(att, [1, n, d])));
        const h = b.ffn.forward(reshape(b.ln2.forward(x), [n, d]));
        x = add(x, reshape(h, [1, n, d]));
      });
      cache.len += n;
      const last = slice(x, 1, n - 1, n).contiguous(); // [1, 1, d]
      return linear(this.ln_f.forward(last), this.tok.weight, null).f32.slice();
    });
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
      backend().randn(p.f32, rng.nextU32(), 0, std); // native and threaded: PEER tables hold billions of weights
    } else if (leaf === 'bias' || leaf === 'b1' || leaf === 'b2') {
      p.f32.fill(0);
    }
  }
}
