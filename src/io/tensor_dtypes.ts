// The tensor side of the safetensors format: dtypes and their sizes, typed arrays, shapes, and
// bf16 bit conversions. No file access here (see safetensors.ts).
import { endianness } from 'node:os';

export type DType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U64' | 'U32' | 'U16' | 'U8' | 'BOOL';

export type TypedArray =
  | Float64Array | Float32Array | Int32Array | Int16Array | Int8Array | BigInt64Array
  | Uint32Array | Uint16Array | Uint8Array | BigUint64Array;

/** A tensor as read from a file. BF16 / F16 data are the raw 16-bit patterns in a Uint16Array. */
export interface TensorData {
  dtype: DType;
  shape: number[];
  data: TypedArray;
}

/** A tensor to write. Without `dtype`, it follows from the array type (Uint16Array -> U16). */
export interface TensorLike {
  dtype?: DType;
  shape: readonly number[];
  data: TypedArray;
}

export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
};

export const DTYPES = Object.keys(DTYPE_BYTES) as DType[];

export class SafetensorsError extends Error {
  constructor(readonly path: string, detail: string) {
    super(`${path}: ${detail}`);
    this.name = 'SafetensorsError';
  }
}

export function assertLittleEndian(): void {
  if (endianness() !== 'LE') throw new Error('safetensors: big-endian hosts are not supported');
}

/** Allocate a typed array that holds `n` elements of `dtype`. */
export function allocTensor(dtype: DType, n: number): TypedArray {
  switch (dtype) {
    case 'F64': return new Float64Array(n);
    case 'F32': return new Float32Array(n);
    case 'F16': case 'BF16': case 'U16': return new Uint16Array(n);
    case 'I64': return new BigInt64Array(n);
    case 'U64': return new BigUint64Array(n);
    case 'I32': return new Int32Array(n);
    case 'U32': return new Uint32Array(n);
    case 'I16': return new Int16Array(n);
    case 'I8': return new Int8Array(n);
    case 'U8': case 'BOOL': return new Uint8Array(n);
  }
}

/** The dtype a typed array stands for when no dtype is given. */
export function dtypeOfArray(a: TypedArray): DType {
  if (a instanceof Float32Array) return 'F32';
  if (a instanceof Float64Array) return 'F64';
  if (a instanceof Int32Array) return 'I32';
  if (a instanceof Uint16Array) return 'U16';
  if (a instanceof Uint8Array) return 'U8';
  if (a instanceof BigInt64Array) return 'I64';
  if (a instanceof Int16Array) return 'I16';
  if (a instanceof Int8Array) return 'I8';
  if (a instanceof Uint32Array) return 'U32';
  if (a instanceof BigUint64Array) return 'U64';
  throw new TypeError('unsupported array type');
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

export function bytesOf(a: TypedArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

// ---------------------------------------------------------------------------------------------
// bf16 helpers (BF16 tensors are stored as raw uint16 bit patterns)

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 -> bf16 bits, round to nearest even (NaN stays NaN). */
export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff; // quiet NaN
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}
