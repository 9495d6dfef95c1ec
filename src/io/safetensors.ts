// The safetensors format (https://github.com/huggingface/safetensors), read and written here from
// the format description:
//   [8 bytes: header length N, uint64 little-endian]
//   [N bytes: JSON header, UTF-8, padded with spaces]
//     { "__metadata__": {string: string}?, "<name>": {"dtype": "F32", "shape": [..],
//       "data_offsets": [begin, end]}, ... }        offsets relative to the data section
//   [data section: the tensors' bytes, little-endian, row-major, contiguous, no gaps]
// The writer streams each tensor to disk with its own write calls (no whole-file buffer, files can
// be many GB); the reader validates the whole header before touching data, then reads each tensor
// straight into its own typed array.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { createHash, type Hash } from 'node:crypto';
import { writeAll, writeFileAtomic } from './atomic.js';
import {
  DTYPE_BYTES, DTYPES, SafetensorsError, allocTensor, assertLittleEndian, bytesOf, dtypeOfArray, numel,
  type DType, type TensorData, type TensorLike, type TypedArray,
} from './tensor_dtypes.js';

export * from './tensor_dtypes.js';

/** Largest header accepted (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;
const IO_CHUNK = 1 << 28; // 256 MiB per read call

// ---------------------------------------------------------------------------------------------
// writing

export interface WriteOptions {
  /** Write through writeFileAtomic (default true). */
  atomic?: boolean;
  /** Compute the SHA-256 of the file while writing it (default false). */
  hash?: boolean;
}

export interface WriteResult {
  /** File size in bytes. */
  bytes: number;
  /** Hex SHA-256 of the whole file, when requested. */
  sha256?: string;
}

interface PlannedTensor {
  name: string;
  dtype: DType;
  shape: number[];
  data: TypedArray;
  begin: number;
  end: number;
}

function planTensors(path: string, tensors: Map<string, TensorLike> | Record<string, TensorLike>): PlannedTensor[] {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const out: PlannedTensor[] = [];
  let off = 0;
  for (const [name, t] of entries) {
    if (!name || name === '__metadata__') throw new SafetensorsError(path, `invalid tensor name '${name}'`);
    const dtype = t.dtype ?? dtypeOfArray(t.data);
    if (!DTYPES.includes(dtype)) throw new SafetensorsError(path, `tensor '${name}': unknown dtype '${dtype}'`);
    const shape = [...t.shape];
    if (!shape.every((s) => Number.isSafeInteger(s) && s >= 0)) throw new SafetensorsError(path, `tensor '${name}': invalid shape [${shape}]`);
    if (t.data.BYTES_PER_ELEMENT !== DTYPE_BYTES[dtype]) {
      throw new SafetensorsError(path, `tensor '${name}': dtype ${dtype} needs ${DTYPE_BYTES[dtype]}-byte elements, got a ${t.data.constructor.name}`);
    }
    const n = numel(shape);
    if (t.data.length !== n) throw new SafetensorsError(path, `tensor '${name}': shape [${shape}] has ${n} elements, data has ${t.data.length}`);
    const size = n * DTYPE_BYTES[dtype];
    out.push({ name, dtype, shape, data: t.data, begin: off, end: off + size });
    off += size;
  }
  return out;
}

/** The header bytes (JSON padded with spaces to a multiple of 8) for the planned tensors. */
function encodeHeader(path: string, plan: PlannedTensor[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new SafetensorsError(path, `metadata '${k}' must be a string, got ${typeof v}`);
    }
    header.__metadata__ = metadata;
  }
  for (const t of plan) header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [t.begin, t.end] };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  const out = Buffer.alloc(8 + padded, 0x20);
  out.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(out, 8);
  return out;
}

/**
 * Validate tensors and metadata now and return a writer that streams the file through an fd
 * (for writeFileAtomic / writeTemp). Each tensor's bytes go out with their own write calls,
 * straight from its typed array: no whole-file buffer.
 */
export function safetensorsWriter(
  path: string,
  tensors: Map<string, TensorLike> | Record<string, TensorLike>,
  metadata?: Record<string, string>,
  opts: { hash?: boolean } = {},
): (fd: number) => WriteResult {
  assertLittleEndian();
  const plan = planTensors(path, tensors);
  const head = encodeHeader(path, plan, metadata);
  const total = head.byteLength + (plan.length ? plan[plan.length - 1].end : 0);
  return (fd: number): WriteResult => {
    const hash: Hash | null = opts.hash ? createHash('sha256') : null;
    writeAll(fd, head);
    hash?.update(head);
    for (const t of plan) {
      const b = bytesOf(t.data);
      writeAll(fd, b);
      if (hash) for (let o = 0; o < b.byteLength; o += IO_CHUNK) hash.update(b.subarray(o, Math.min(b.byteLength, o + IO_CHUNK)));
    }
    return { bytes: total, ...(hash ? { sha256: hash.digest('hex') } : {}) };
  };
}

/** Write tensors (in the given order) and optional string metadata to `path`. */
export function writeSafetensors(
  path: string,
  tensors: Map<string, TensorLike> | Record<string, TensorLike>,
  metadata?: Record<string, string>,
  opts: WriteOptions = {},
): WriteResult {
  const write = safetensorsWriter(path, tensors, metadata, opts);
  if (opts.atomic !== false) return writeFileAtomic(path, write)!;
  const fd = openSync(path, 'w');
  try {
    return write(fd);
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// reading

export interface TensorInfo {
  dtype: DType;
  shape: number[];
  /** Offsets relative to the start of the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Length of the JSON header (N). */
  headerBytes: number;
  /** Absolute file offset of the data section (8 + N). */
  dataOffset: number;
  fileBytes: number;
  metadata: Record<string, string>;
  /** In header order. */
  tensors: Map<string, TensorInfo>;
}

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? s.slice(0, 60) + '...' : s;
}

function parseHeader(path: string, text: string, fileBytes: number, dataOffset: number): SafetensorsHeader {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(path, `header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SafetensorsError(path, 'header is not a JSON object');
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  const dataBytes = fileBytes - dataOffset;
  for (const [name, entry] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new SafetensorsError(path, '__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new SafetensorsError(path, `__metadata__['${k}'] must be a string, got ${describe(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    const where = `tensor '${name}'`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new SafetensorsError(path, `${where}: header entry is not an object`);
    const e = entry as Record<string, unknown>;
    if (typeof e.dtype !== 'string' || !DTYPES.includes(e.dtype as DType)) {
      throw new SafetensorsError(path, `${where}: unknown dtype ${describe(e.dtype)} (expected one of ${DTYPES.join(', ')})`);
    }
    const dtype = e.dtype as DType;
    if (!Array.isArray(e.shape) || !e.shape.every((s) => Number.isSafeInteger(s) && s >= 0)) {
      throw new SafetensorsError(path, `${where}: invalid shape ${describe(e.shape)}`);
    }
    const shape = e.shape as number[];
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isSafeInteger(o) && o >= 0) || off[0] > off[1]) {
      throw new SafetensorsError(path, `${where}: invalid data_offsets ${describe(off)} (expected [begin, end] with 0 <= begin <= end)`);
    }
    const [begin, end] = off as [number, number];
    const need = numel(shape) * DTYPE_BYTES[dtype];
    if (end - begin !== need) {
      throw new SafetensorsError(path, `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but shape [${shape}] of ${dtype} needs ${need}`);
    }
    tensors.set(name, { dtype, shape, begin, end });
  }
  // bounds, overlaps, gaps and trailing bytes
  const sorted = [...tensors.entries()].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  const maxEnd = sorted.reduce((m, [, t]) => Math.max(m, t.end), 0);
  if (maxEnd > dataBytes) {
    const [name] = sorted.find(([, t]) => t.end === maxEnd)!;
    throw new SafetensorsError(path, `truncated: expected ${dataOffset + maxEnd} bytes (tensor '${name}' ends at data byte ${maxEnd}), file has ${fileBytes}`);
  }
  let prevEnd = 0;
  let prevName = '';
  for (const [name, t] of sorted) {
    if (t.begin < prevEnd) throw new SafetensorsError(path, `tensors '${prevName}' and '${name}' overlap (data bytes ${t.begin}..${Math.min(prevEnd, t.end)})`);
    if (t.begin > prevEnd) {
      throw new SafetensorsError(path, `gap in the data section: bytes ${prevEnd}..${t.begin} before tensor '${name}' belong to no tensor`);
    }
    prevEnd = t.end;
    prevName = name;
  }
  if (prevEnd < dataBytes) throw new SafetensorsError(path, `trailing garbage: ${dataBytes - prevEnd} bytes after the last tensor (data section is ${prevEnd} bytes, file has ${fileBytes})`);
  return { headerBytes: dataOffset - 8, dataOffset, fileBytes, metadata, tensors };
}

function readExactly(path: string, fd: number, dst: Uint8Array, position: number, fileBytes: number): void {
  let off = 0;
  while (off < dst.byteLength) {
    const n = readSync(fd, dst, off, Math.min(IO_CHUNK, dst.byteLength - off), position + off);
    if (n <= 0) throw new SafetensorsError(path, `truncated: expected ${position + dst.byteLength} bytes, could read only ${position + off} (file has ${fileBytes}; changed while reading?)`);
    off += n;
  }
}

/**
 * An open safetensors file with a validated header; tensors are read on demand. Close it when
 * done (or use readSafetensors).
 */
export class SafetensorsReader {
  readonly header: SafetensorsHeader;
  private fd: number;

  /** Opens `path`, or adopts `fd` (already open for reading; closed by close()). */
  constructor(readonly path: string, fd?: number) {
    assertLittleEndian();
    try {
      this.fd = fd ?? openSync(path, 'r');
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new SafetensorsError(path, err.code === 'ENOENT' ? 'file not found' : `cannot open: ${err.message}`);
    }
    try {
      this.header = this.readHeader();
    } catch (e) {
      this.close();
      throw e;
    }
  }

  private readHeader(): SafetensorsHeader {
    const { path, fd } = this;
    const st = fstatSync(fd);
    if (!st.isFile()) throw new SafetensorsError(path, 'not a regular file');
    const size = st.size;
    if (size < 8) throw new SafetensorsError(path, `truncated: expected at least 8 bytes (header length), file has ${size}`);
    const lenBuf = Buffer.alloc(8);
    readExactly(path, fd, lenBuf, 0, size);
    const n = lenBuf.readBigUInt64LE(0);
    if (n > BigInt(size - 8)) throw new SafetensorsError(path, `truncated: header length ${n} needs ${BigInt(8) + n} bytes, file has ${size}`);
    if (n > BigInt(MAX_HEADER_BYTES)) throw new SafetensorsError(path, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
    const hb = Buffer.alloc(Number(n));
    readExactly(path, fd, hb, 8, size);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(hb);
    } catch {
      throw new SafetensorsError(path, 'header is not valid UTF-8');
    }
    if (!text.trimStart().startsWith('{')) throw new SafetensorsError(path, 'header is not a JSON object');
    return parseHeader(path, text, size, 8 + Number(n));
  }

  get names(): string[] {
    return [...this.header.tensors.keys()];
  }

  get metadata(): Record<string, string> {
    return this.header.metadata;
  }

  info(name: string): TensorInfo {
    const t = this.header.tensors.get(name);
    if (!t) throw new SafetensorsError(this.path, `no tensor '${name}'`);
    return t;
  }

  /** Read one tensor into a freshly allocated typed array (or into `into`, of the right size). */
  read(name: string, into?: TypedArray): TensorData {
    const t = this.info(name);
    const n = numel(t.shape);
    const data = into ?? allocTensor(t.dtype, n);
    if (data.byteLength !== t.end - t.begin) throw new SafetensorsError(this.path, `tensor '${name}': destination holds ${data.byteLength} bytes, tensor has ${t.end - t.begin}`);
    readExactly(this.path, this.fd, bytesOf(data), this.header.dataOffset + t.begin, this.header.fileBytes);
    return { dtype: t.dtype, shape: [...t.shape], data };
  }

  /** Raw header bytes (length prefix + JSON), e.g. for hashing. */
  readHeaderBytes(): Uint8Array {
    const b = Buffer.alloc(this.header.dataOffset);
    readExactly(this.path, this.fd, b, 0, this.header.fileBytes);
    return b;
  }

  close(): void {
    if (this.fd >= 0) {
      closeSync(this.fd);
      this.fd = -1;
    }
  }
}

export interface ReadOptions {
  /** Only these tensors (default: all). */
  names?: Iterable<string> | ((name: string) => boolean);
  /** Compute the SHA-256 of the whole file while reading (requires reading every tensor). */
  hash?: boolean;
}

export interface ReadResult {
  /** In header order. */
  tensors: Map<string, TensorData>;
  metadata: Record<string, string>;
  bytes: number;
  sha256?: string;
}

/** Read and validate a safetensors file; each tensor gets its own typed array. */
export function readSafetensors(path: string, opts: ReadOptions = {}): ReadResult {
  const r = new SafetensorsReader(path);
  try {
    return readTensorsFrom(r, opts);
  } finally {
    r.close();
  }
}

/** readSafetensors on an open reader (which stays open). */
export function readTensorsFrom(r: SafetensorsReader, opts: ReadOptions = {}): ReadResult {
  const path = r.path;
  const all = r.names;
  let want: Set<string>;
  if (opts.names === undefined) want = new Set(all);
  else if (typeof opts.names === 'function') want = new Set(all.filter(opts.names));
  else {
    want = new Set(opts.names);
    for (const n of want) if (!r.header.tensors.has(n)) throw new SafetensorsError(path, `no tensor '${n}'`);
  }
  if (opts.hash && want.size !== all.length) throw new SafetensorsError(path, 'hash needs every tensor to be read');
  const hash = opts.hash ? createHash('sha256') : null;
  hash?.update(r.readHeaderBytes());
  // read in file order (sequential I/O; the hash covers the file front to back)
  const order = all.filter((n) => want.has(n)).sort((a, b) => r.info(a).begin - r.info(b).begin);
  const got = new Map<string, TensorData>();
  for (const name of order) {
    const t = r.read(name);
    if (hash) {
      const b = bytesOf(t.data);
      for (let o = 0; o < b.byteLength; o += IO_CHUNK) hash.update(b.subarray(o, Math.min(b.byteLength, o + IO_CHUNK)));
    }
    got.set(name, t);
  }
  const tensors = new Map<string, TensorData>();
  for (const name of all) if (got.has(name)) tensors.set(name, got.get(name)!);
  return { tensors, metadata: { ...r.metadata }, bytes: r.header.fileBytes, ...(hash ? { sha256: hash.digest('hex') } : {}) };
}

/** Validate a file's header and layout without reading tensor data. */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  const r = new SafetensorsReader(path);
  r.close();
  return r.header;
}
