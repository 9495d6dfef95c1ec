/**
 * Lazy Adam for row-sparse parameters (PEER's expert tables), with PyTorch SparseAdam semantics.
 *
 * Gradients arrive as `param.sparseGrad` chunks ({ ids, values [n, d] }, ids may repeat within and
 * across chunks, e.g. with gradient accumulation). A step coalesces them (duplicate ids summed)
 * and updates only the touched rows:
 *   m += (1-beta1)(g - m);  v += (1-beta2)(g^2 - v);  p -= lr*sqrt(bc2)/bc1 * m / (sqrt(v) + eps)
 * Rows without a gradient keep their moments and values (no decay of their moments: "lazy").
 *
 * Step count: one global count per parameter, incremented on every step() in which the parameter
 * has a gradient, and used for the bias corrections bc1 = 1 - beta1^step, bc2 = 1 - beta2^step of
 * every row it updates, exactly as torch.optim.SparseAdam (state['step'] per parameter). Note eps is
 * added to sqrt(v) before the bias-correction factor, as SparseAdam does (torch.optim.Adam instead
 * adds eps to sqrt(v/bc2)); the two agree up to eps-sized terms. No weight decay.
 *
 * Memory: moments are [N, d] each, float32 (8 bytes per parameter element for m and v) or, with
 * bf16Moments, bfloat16 bit patterns in Uint16Arrays (4 bytes per element; rounded to nearest
 * even after each update, the update itself in float32). They are zero-initialised typed arrays,
 * which Linux backs with untouched zero pages: resident memory grows only as rows are first
 * updated (4 KiB pages, i.e. 4 rows of d=256 fp32 moments or 8 rows bf16). No [N, d] temporary is
 * ever created: coalescing works on [U, d] buffers of the touched rows. Moments are advised to use
 * transparent huge pages (fewer first-touch faults; then resident memory grows in 2 MiB steps).
 *
 * bf16 caveat: with round-to-nearest, an update smaller than half a bf16 ulp (2^-9..2^-8 of the
 * value) is lost. For beta2 = 0.999 this means v can rise (when g^2 > ~3v) but never decay, so v
 * acts like a running maximum; m (beta1 = 0.9) is fine. Prefer fp32 moments when memory allows, or
 * a smaller beta2 (e.g. 0.99) with bf16.
 *
 * bf16 tables (PEER's bf16Tables: parameters of dtype 'bf16'): the update is computed in float32
 * from the widened weight and stored with stochastic rounding (kernel contract in
 * ../backend/kernels/peer.ts), so a step smaller than half a bf16 ulp still moves the weight in
 * expectation instead of being lost as with round-to-nearest. The random bits are a pure function
 * of (seed, parameter index, step, row, column): seed = mixSeed(mixSeed(opts.seed, index), step),
 * so a resumed run (step restored from the state dict) rounds exactly as the uninterrupted one.
 *
 * Factored gradient chunks (RowSparseGrad.factors, what PEER layers with bf16 tables emit) are
 * never stored as [U, d] rows: the norm and the update form ROW_BLOCK rows at a time into one
 * scratch buffer; scaling multiplies the per-pick coefficients. Several chunks of one table (e.g.
 * gradient accumulation) are formed in full and coalesced as usual.
 *
 * Typical set-up (trainer):
 *   const { sparse, dense } = splitSparseParams(model.namedParameters());   // nn/peer.ts
 *   const opts = [denseAdamW(dense, ...), new SparseAdam(sparse, { bf16Moments: true })];
 *   // each step: clip with sqrt(sum of gradSquaredNorm()), step(lr) both, zeroGrad() both
 */
import type { Tensor, RowSparseGrad } from '../tensor/index.js';
import type { NamedArray, Optimizer } from './optimizer.js';
import { adviseHugePages, coalesceRows, sparseAdamUpdate, sumOfSquares, scaleInPlace, rowGradValues } from '../tensor/index.js';
import { bf16BitsToF32, f32ToBf16Bits } from '../io/safetensors.js';
import { mixSeed } from '../util/random.js';

export interface SparseAdamOptions {
  beta1?: number; // default 0.9
  beta2?: number; // default 0.999
  eps?: number; // default 1e-8
  /** Keep m and v as bfloat16 (halves optimizer memory; see the caveat above). Default false. */
  bf16Moments?: boolean;
  /** Seed of the stochastic rounding of bf16 tables (non-negative integer; the run's seed). Default 0. */
  seed?: number;
}

interface ParamState {
  name: string;
  p: Tensor;
  rows: number;
  d: number;
  m: Float32Array | Uint16Array;
  v: Float32Array | Uint16Array;
  step: number;
  /** Position in the parameter list (keys the rounding bits). */
  index: number;
}

/** Rows of a factored gradient formed at once (x d floats of scratch: 8 MiB at d = 256). */
const ROW_BLOCK = 8192;

function isCoalesced(c: RowSparseGrad): boolean {
  const ids = c.ids;
  for (let i = 1; i < ids.length; i++) if (ids[i] <= ids[i - 1]) return false;
  return true;
}

export class SparseAdam implements Optimizer {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly bf16Moments: boolean;
  readonly seed: number;
  private readonly states: ParamState[];
  private scratch = new Float32Array(0);

  constructor(params: [string, Tensor][], opts: SparseAdamOptions = {}) {
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.bf16Moments = opts.bf16Moments ?? false;
    this.seed = opts.seed ?? 0;
    if (!(Number.isSafeInteger(this.seed) && this.seed >= 0)) throw new Error(`SparseAdam: seed must be a non-negative integer, got ${this.seed}`);
    if (!(this.beta1 >= 0 && this.beta1 < 1 && this.beta2 >= 0 && this.beta2 < 1)) throw new Error(`SparseAdam: betas must be in [0, 1), got ${this.beta1}, ${this.beta2}`);
    if (!(this.eps >= 0)) throw new Error(`SparseAdam: eps must be >= 0, got ${this.eps}`);
    const names = new Set<string>();
    this.states = params.map(([name, p], index) => {
      if (p.ndim !== 2 || p.dtype === 'i32' || !p.isContiguous) throw new Error(`SparseAdam: parameter '${name}' must be a contiguous float32 or bf16 [rows, d] table, got ${p}`);
      if (names.has(name)) throw new Error(`SparseAdam: duplicate parameter name '${name}'`);
      names.add(name);
      const n = p.size;
      const alloc = () => {
        const a = this.bf16Moments ? new Uint16Array(n) : new Float32Array(n);
        adviseHugePages(a); // untouched zero pages so far
        return a;
      };
      return { name, p, rows: p.shape[0], d: p.shape[1], m: alloc(), v: alloc(), step: 0, index };
    });
  }

  /** Replaces p.sparseGrad by a single coalesced chunk (ids strictly increasing); returns it or null. */
  private coalesce(s: ParamState): RowSparseGrad | null {
    const { p, d, rows } = s;
    if (p.grad) throw new Error(`SparseAdam: parameter '${s.name}' has a dense gradient; give it to the dense optimizer (or build its layer with sparseGrads)`);
    const chunks = p.sparseGrad;
    if (!chunks || chunks.length === 0) return null;
    for (const c of chunks) {
      if (!c.factors && c.values.length !== c.ids.length * d) throw new Error(`SparseAdam: '${s.name}': chunk of ${c.ids.length} ids has ${c.values.length} values, expected ${c.ids.length * d}`);
    }
    if (chunks.length === 1 && isCoalesced(chunks[0])) return chunks[0];
    const merged = coalesceRows(chunks.map((c) => (c.factors ? { ids: c.ids, values: rowGradValues(c, d) } : c)), rows, d);
    p.sparseGrad = [merged];
    return merged;
  }

  step(lr: number): void {
    const { beta1, beta2, eps } = this;
    for (const s of this.states) {
      const g = this.coalesce(s);
      if (!g) continue;
      s.step++;
      const bc1 = 1 - Math.pow(beta1, s.step), bc2 = 1 - Math.pow(beta2, s.step);
      const h = { lr, beta1, beta2, eps, bc1, bc2, seed: s.p.dtype === 'bf16' ? mixSeed(mixSeed(this.seed, s.index), s.step) : undefined };
      const p = s.p.dtype === 'bf16' ? s.p.bf16 : s.p.f32;
      this.blocks(g, s.d, (ids, values) => sparseAdamUpdate(p, s.d, { ids, values }, s.m, s.v, h));
    }
  }

  gradSquaredNorm(): number {
    let total = 0;
    for (const s of this.states) {
      const g = this.coalesce(s); // duplicates must be summed before squaring
      if (g) this.blocks(g, s.d, (_, values) => (total += sumOfSquares(values)));
    }
    return total;
  }

  scaleGrads(f: number): void {
    for (const s of this.states) for (const c of s.p.sparseGrad ?? []) scaleInPlace(c.factors ? c.factors.coef : c.values, f);
  }

  /** Calls fn on the chunk's rows: all at once, or ROW_BLOCK at a time formed from its factors. */
  private blocks(g: RowSparseGrad, d: number, fn: (ids: Int32Array, values: Float32Array) => void): void {
    if (!g.factors) return fn(g.ids, g.values);
    const U = g.ids.length;
    if (this.scratch.length < Math.min(U, ROW_BLOCK) * d) this.scratch = new Float32Array(Math.min(U, ROW_BLOCK) * d);
    for (let i0 = 0; i0 < U; i0 += ROW_BLOCK) {
      const i1 = Math.min(U, i0 + ROW_BLOCK);
      fn(g.ids.subarray(i0, i1), rowGradValues(g, d, i0, i1, this.scratch));
    }
  }

  zeroGrad(): void {
    for (const s of this.states) {
      s.p.sparseGrad = null;
      s.p.grad = null;
    }
  }

  stateDict(): Map<string, NamedArray> {
    const out = new Map<string, NamedArray>();
    const dt = this.bf16Moments ? 'BF16' : 'F32';
    for (const s of this.states) {
      out.set(`${s.name}.exp_avg`, { dtype: dt, shape: [s.rows, s.d], data: s.m });
      out.set(`${s.name}.exp_avg_sq`, { dtype: dt, shape: [s.rows, s.d], data: s.v });
      out.set(`${s.name}.step`, { dtype: 'I32', shape: [], data: Int32Array.of(s.step) });
    }
    return out;
  }

  loadStateDict(state: Map<string, NamedArray>): void {
    // validate everything before changing anything
    const get = (key: string, shape: number[]): NamedArray => {
      const e = state.get(key);
      if (!e) throw new Error(`SparseAdam.loadStateDict: missing '${key}'`);
      const n = shape.reduce((a, b) => a * b, 1);
      if (e.shape.length !== shape.length || e.shape.some((x, i) => x !== shape[i]) || e.data.length !== n) {
        throw new Error(`SparseAdam.loadStateDict: '${key}' has shape [${e.shape.join(', ')}] (${e.data.length} values), expected [${shape.join(', ')}]`);
      }
      const okType = (e.dtype === 'F32' && e.data instanceof Float32Array) || (e.dtype === 'BF16' && e.data instanceof Uint16Array) ||
        (e.dtype === 'I32' && e.data instanceof Int32Array);
      if (!okType) throw new Error(`SparseAdam.loadStateDict: '${key}' has dtype ${e.dtype} with a mismatched array`);
      return e;
    };
    const plan = this.states.map((s) => {
      const m = get(`${s.name}.exp_avg`, [s.rows, s.d]), v = get(`${s.name}.exp_avg_sq`, [s.rows, s.d]);
      const st = get(`${s.name}.step`, []);
      if (m.dtype === 'I32' || v.dtype === 'I32') throw new Error(`SparseAdam.loadStateDict: moments of '${s.name}' must be F32 or BF16`);
      if (st.dtype !== 'I32' || !(st.data[0] >= 0)) throw new Error(`SparseAdam.loadStateDict: '${s.name}.step' must be a non-negative I32`);
      return { s, m, v, step: st.data[0] as number };
    });
    for (const { s, m, v, step } of plan) {
      copyMoment(m, s.m);
      copyMoment(v, s.v);
      s.step = step;
    }
  }

  stateBytes(): number {
    let b = 0;
    for (const s of this.states) b += s.m.byteLength + s.v.byteLength;
    return b;
  }
}

function copyMoment(src: NamedArray, dst: Float32Array | Uint16Array): void {
  const s = src.data;
  if ((s instanceof Float32Array && dst instanceof Float32Array) || (s instanceof Uint16Array && dst instanceof Uint16Array)) dst.set(s);
  else if (s instanceof Uint16Array && dst instanceof Float32Array) for (let i = 0; i < s.length; i++) dst[i] = bf16BitsToF32(s[i]);
  else if (s instanceof Float32Array && dst instanceof Uint16Array) for (let i = 0; i < s.length; i++) dst[i] = f32ToBf16Bits(s[i]);
}
