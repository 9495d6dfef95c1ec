/**
 * Tensors: a typed-array storage plus shape, strides and offset.
 *
 * Ownership: a tensor owns its storage unless it is a view (reshape/transpose/slice of another
 * tensor), in which case both share it. Ops return contiguous storage of their own from the buffer
 * pool (pool.ts: fresh outside a training step's scope, recycled inside one), except the view ops,
 * which return views. Kernels need contiguous inputs; `contiguous()` copies only views
 * that are not already laid out row-major.
 *
 * Gradients live in `grad` as a contiguous Float32Array-backed tensor of the same logical shape.
 *
 * dtype 'bf16' (Uint16Array of bfloat16 bit patterns) is a storage format only: the PEER expert
 * tables can be kept in it (halving their memory); the PEER kernels and sparse Adam read it, every
 * other op expects float32 and refuses it (`.f32` throws).
 */
import { backend } from '../backend/index.js';
import { bf16BitsToF32 } from '../io/tensor_dtypes.js';
import type { Node } from './autograd.js';
import { isGradEnabled, backward as runBackward } from './autograd.js';
import { alloc, allocZeroed, claim, checkLive, poolDebug } from './pool.js';

export type DType = 'f32' | 'i32' | 'bf16';

/**
 * A row-sparse gradient: values[i*d .. i*d+d) belongs to row ids[i]. A factored chunk (PEER's
 * bf16 tables) leaves values empty and keeps what the rows are made of instead, 4 bytes per pick
 * rather than per weight: row i = sum over p in [offsets[i], offsets[i+1]) of
 * coef[order[p]] * src[floor(order[p] / per)] (the peerRowGrad kernel); ids are then unique and
 * ascending. Consumers form rows with ops/optim.ts rowGradValues, a block at a time.
 */
export interface RowSparseGrad {
  ids: Int32Array;
  values: Float32Array;
  factors?: RowGradFactors;
}

export interface RowGradFactors {
  offsets: Int32Array;
  order: Int32Array;
  coef: Float32Array;
  src: Float32Array;
  per: number;
}
export type Storage = Float32Array | Int32Array | Uint16Array;

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= shape[i];
  }
  return st;
}

function checkShape(shape: readonly number[]): void {
  for (const s of shape) {
    if (!Number.isInteger(s) || s < 0) throw new Error(`invalid shape [${shape.join(', ')}]`);
  }
}

export class Tensor {
  readonly data: Storage;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  readonly dtype: DType;
  requiresGrad: boolean;
  grad: Tensor | null = null;
  /** The op that produced this tensor (null for leaves and when grad is off). */
  node: Node | null = null;
  /**
   * Row-sparse gradient chunks for embedding-like parameters whose layers skip the dense gradient
   * (PEER's expert tables): each chunk adds rows[i*d..] to row ids[i]. Ids may repeat across and
   * within chunks; optimizers coalesce them.
   */
  sparseGrad: RowSparseGrad[] | null = null;
  /** Name used by modules and checkpoints (parameters only). */
  name = '';
  /** Generation of pooled storage when this tensor was built (0: not pooled); see pool.ts. */
  private readonly poolGen: number;

  constructor(data: Storage, shape: readonly number[], opts: { strides?: readonly number[]; offset?: number; requiresGrad?: boolean } = {}) {
    checkShape(shape);
    this.data = data;
    this.shape = shape.slice();
    this.strides = opts.strides ? opts.strides.slice() : contiguousStrides(shape);
    this.offset = opts.offset ?? 0;
    this.dtype = data instanceof Int32Array ? 'i32' : data instanceof Uint16Array ? 'bf16' : 'f32';
    this.requiresGrad = opts.requiresGrad ?? false;
    this.poolGen = data instanceof Uint16Array ? 0 : claim(data, this); // bf16 storage is never pooled
    if (!opts.strides && this.offset + numel(shape) > data.length) {
      throw new Error(`storage of ${data.length} elements too small for shape [${shape.join(', ')}]`);
    }
  }

  get ndim(): number {
    return this.shape.length;
  }

  get size(): number {
    return numel(this.shape);
  }

  /** True when elements are laid out row-major without gaps (offset may be nonzero). */
  get isContiguous(): boolean {
    let acc = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      if (this.shape[i] !== 1 && this.strides[i] !== acc) return false;
      acc *= this.shape[i];
    }
    return true;
  }

  /** The contiguous element range as a typed-array view (throws for non-contiguous views). */
  get f32(): Float32Array {
    if (this.dtype !== 'f32') throw new Error('expected a float32 tensor');
    if (this.poolGen && poolDebug()) checkLive(this.data as Float32Array | Int32Array, this.poolGen);
    if (!this.isContiguous) throw new Error('tensor is not contiguous; call contiguous() first');
    const d = this.data as Float32Array;
    return this.offset === 0 && d.length === this.size ? d : d.subarray(this.offset, this.offset + this.size);
  }

  /** bfloat16 bit patterns of a contiguous 'bf16' tensor. */
  get bf16(): Uint16Array {
    if (this.dtype !== 'bf16') throw new Error('expected a bfloat16 tensor');
    if (!this.isContiguous) throw new Error('tensor is not contiguous; call contiguous() first');
    const d = this.data as Uint16Array;
    return this.offset === 0 && d.length === this.size ? d : d.subarray(this.offset, this.offset + this.size);
  }

  get i32(): Int32Array {
    if (this.dtype !== 'i32') throw new Error('expected an int32 tensor');
    if (!this.isContiguous) throw new Error('tensor is not contiguous; call contiguous() first');
    const d = this.data as Int32Array;
    return this.offset === 0 && d.length === this.size ? d : d.subarray(this.offset, this.offset + this.size);
  }

  /** Scalar value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new Error(`item() needs one element, tensor has shape [${this.shape.join(', ')}]`);
    if (this.poolGen && poolDebug()) checkLive(this.data as Float32Array | Int32Array, this.poolGen);
    return this.data[this.offset];
  }

  /** Copy of the elements in row-major order. */
  toArray(): number[] {
    const c = this.contiguous();
    if (c.dtype === 'bf16') return Array.from(c.bf16, bf16BitsToF32);
    return Array.from(c.dtype === 'f32' ? c.f32 : c.i32);
  }

  /** Backpropagates from this tensor (a scalar loss, or any tensor given a seed gradient). */
  backward(seed?: Float32Array): void {
    runBackward(this, seed);
  }

  /** A tensor sharing storage but cut off from the graph. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape, { strides: this.strides, offset: this.offset });
  }

  contiguous(): Tensor {
    return this.isContiguous ? this : copyToContiguous(this);
  }

  reshape(...shape: number[]): Tensor {
    return reshape(this, shape);
  }

  transpose(a: number, b: number): Tensor {
    const perm = this.shape.map((_, i) => i);
    perm[a < 0 ? a + this.ndim : a] = b < 0 ? b + this.ndim : b;
    perm[b < 0 ? b + this.ndim : b] = a < 0 ? a + this.ndim : a;
    return permute(this, perm);
  }

  permute(...perm: number[]): Tensor {
    return permute(this, perm);
  }

  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(', ')}]${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

// ------------------------------------------------------------------------------------- creation

export function zeros(shape: readonly number[], opts: { requiresGrad?: boolean } = {}): Tensor {
  return new Tensor(new Float32Array(numel(shape)), shape, opts);
}

export function full(shape: readonly number[], value: number): Tensor {
  const t = new Float32Array(numel(shape));
  t.fill(value);
  return new Tensor(t, shape);
}

export function tensor(data: ArrayLike<number> | Float32Array, shape?: readonly number[], opts: { requiresGrad?: boolean } = {}): Tensor {
  const arr = data instanceof Float32Array ? data : Float32Array.from(data);
  return new Tensor(arr, shape ?? [arr.length], opts);
}

export function intTensor(data: ArrayLike<number> | Int32Array, shape?: readonly number[]): Tensor {
  const arr = data instanceof Int32Array ? data : Int32Array.from(data);
  return new Tensor(arr, shape ?? [arr.length]);
}

/** Fresh float32 leaf with the given contents; requiresGrad marks it as a parameter. */
export function parameter(data: Float32Array, shape: readonly number[], name = ''): Tensor {
  const t = new Tensor(data, shape, { requiresGrad: true });
  t.name = name;
  return t;
}

// ------------------------------------------------------------------------------------- views

/** Attaches an autograd node to `out` if any input needs gradients and grad mode is on. */
export function attach(out: Tensor, inputs: Tensor[], backward: Node['backward'], name: string): Tensor {
  if (!isGradEnabled()) return out;
  let need = false;
  for (const t of inputs) if (t.requiresGrad) need = true;
  if (!need) return out;
  out.requiresGrad = true;
  out.node = { name, inputs, backward };
  return out;
}

function copyToContiguous(x: Tensor): Tensor {
  if (x.dtype === 'bf16') throw new Error('a strided view of a bfloat16 tensor cannot be copied (bf16 is a storage format for whole tables)');
  if (x.dtype === 'i32') {
    const out = new Int32Array(x.size);
    const idx = new Array<number>(x.ndim).fill(0);
    for (let i = 0; i < out.length; i++) {
      let off = x.offset;
      for (let d = 0; d < x.ndim; d++) off += idx[d] * x.strides[d];
      out[i] = x.data[off];
      for (let d = x.ndim - 1; d >= 0; d--) {
        if (++idx[d] < x.shape[d]) break;
        idx[d] = 0;
      }
    }
    return new Tensor(out, x.shape);
  }
  const out = alloc(x.size);
  backend().copyStrided(Int32Array.from(x.shape), x.data as Float32Array, x.offset, Int32Array.from(x.strides),
    out, 0, Int32Array.from(contiguousStrides(x.shape)));
  // The gradient of a copy is the gradient itself: both are contiguous in the same logical shape.
  return attach(new Tensor(out, x.shape), [x], (g) => [g], 'contiguous');
}

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const s = shape.slice();
  const neg = s.indexOf(-1);
  if (neg >= 0) s[neg] = x.size / numel(s.filter((_, i) => i !== neg));
  if (numel(s) !== x.size || !s.every(Number.isInteger)) {
    throw new Error(`cannot reshape [${x.shape.join(', ')}] to [${shape.join(', ')}]`);
  }
  const src = x.contiguous();
  const out = new Tensor(src.data, s, { offset: src.offset, strides: contiguousStrides(s) });
  return attach(out, [src], (g) => [g], 'reshape');
}

export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.ndim || new Set(perm).size !== perm.length || perm.some((p) => p < 0 || p >= x.ndim)) {
    throw new Error(`invalid permutation [${perm.join(', ')}] for a ${x.ndim}-d tensor`);
  }
  const out = new Tensor(x.data, perm.map((p) => x.shape[p]), { strides: perm.map((p) => x.strides[p]), offset: x.offset });
  return attach(out, [x], (g) => {
    // g is contiguous in the permuted shape; lay it out contiguously in x's shape.
    const inv = new Array<number>(perm.length);
    perm.forEach((p, i) => (inv[p] = i));
    const gs = contiguousStrides(out.shape);
    const gx = alloc(x.size);
    backend().copyStrided(Int32Array.from(x.shape), g, 0, Int32Array.from(inv.map((i) => gs[i])),
      gx, 0, Int32Array.from(contiguousStrides(x.shape)));
    return [gx];
  }, 'permute');
}

/** View of x restricted to [start, end) along `axis`. */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  if (axis < 0) axis += x.ndim;
  if (!(axis >= 0 && axis < x.ndim) || start < 0 || end > x.shape[axis] || start > end) {
    throw new Error(`slice [${start}, ${end}) out of range for axis ${axis} of [${x.shape.join(', ')}]`);
  }
  const shape = x.shape.slice();
  shape[axis] = end - start;
  const out = new Tensor(x.data, shape, { strides: x.strides, offset: x.offset + start * x.strides[axis] });
  // the whole axis: g is already x's gradient (no zero-fill and copy)
  if (start === 0 && end === x.shape[axis]) return attach(out, [x], (g) => [g], 'slice');
  return attach(out, [x], (g) => {
    const gx = allocZeroed(x.size); // only the slice's window is written
    const xs = contiguousStrides(x.shape);
    backend().copyStrided(Int32Array.from(shape), g, 0, Int32Array.from(contiguousStrides(shape)),
      gx, start * xs[axis], Int32Array.from(xs));
    return [gx];
  }, 'slice');
}
