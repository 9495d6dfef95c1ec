import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, readdirSync, truncateSync, appendFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  writeSafetensors, readSafetensors, readSafetensorsHeader, SafetensorsReader, SafetensorsError,
  f32ToBf16Bits, bf16BitsToF32, type TensorLike,
} from '../src/io/safetensors.js';
import { writeFileAtomic } from '../src/io/atomic.js';
import { randn } from './util.js';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'moelab-st-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Assemble a file from a header object (or raw header text) and a data section, padding like the spec. */
function buildFile(header: object | string, data: Uint8Array, pad = true): Buffer {
  let json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  if (pad && json.length % 8) json = Buffer.concat([json, Buffer.alloc(8 - (json.length % 8), 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, Buffer.from(data)]);
}

function expectError(path: string, re: RegExp): void {
  assert.throws(() => readSafetensors(path), (e: unknown) => {
    assert.ok(e instanceof SafetensorsError, `SafetensorsError expected, got ${e}`);
    assert.ok((e as Error).message.startsWith(path + ': '), `message names the file: ${(e as Error).message}`);
    assert.match((e as Error).message, re);
    return true;
  });
}

test('round trip: every dtype, scalars, empty tensors, metadata, order, alignment', () => withDir((dir) => {
  const p = join(dir, 'a.safetensors');
  const tensors = new Map<string, TensorLike>([
    ['w', { shape: [3, 4], data: randn(12, 3) }],
    ['scalar.i64', { dtype: 'I64', shape: [], data: BigInt64Array.of(-7n) }],
    ['f64', { shape: [2], data: Float64Array.of(Math.PI, -1e300) }],
    ['bf16', { dtype: 'BF16', shape: [2, 2], data: Uint16Array.of(0x3f80, 0xc000, 0x7f80, 0) }],
    ['f16', { dtype: 'F16', shape: [1], data: Uint16Array.of(0x3c00) }],
    ['i32', { shape: [3], data: Int32Array.of(-1, 0, 2 ** 31 - 1) }],
    ['i16', { shape: [2], data: Int16Array.of(-32768, 5) }],
    ['i8', { shape: [1], data: Int8Array.of(-3) }],
    ['u64', { shape: [1], data: BigUint64Array.of(2n ** 64n - 1n) }],
    ['u32', { shape: [1], data: Uint32Array.of(4e9) }],
    ['u16', { shape: [2], data: Uint16Array.of(65535, 1) }],
    ['u8', { shape: [3], data: Uint8Array.of(0, 128, 255) }],
    ['bool', { dtype: 'BOOL', shape: [2], data: Uint8Array.of(1, 0) }],
    ['empty', { shape: [0, 3], data: new Float32Array(0) }],
  ]);
  const res = writeSafetensors(p, tensors, { format: 'pt', note: 'héllo' }, { hash: true });
  const file = readFileSync(p);
  assert.equal(res.bytes, file.length);
  assert.equal(res.sha256, createHash('sha256').update(file).digest('hex'));
  const n = Number(file.readBigUInt64LE(0));
  assert.equal((8 + n) % 8, 0, 'data section starts 8-aligned');
  assert.deepEqual(readdirSync(dir), ['a.safetensors'], 'no temp files left');
  const r = readSafetensors(p, { hash: true });
  assert.equal(r.sha256, res.sha256);
  assert.deepEqual(r.metadata, { format: 'pt', note: 'héllo' });
  assert.deepEqual([...r.tensors.keys()], [...tensors.keys()], 'header order preserved');
  const expectDtype: Record<string, string> = { w: 'F32', f64: 'F64', i32: 'I32', i16: 'I16', i8: 'I8', u64: 'U64', u32: 'U32', u16: 'U16', u8: 'U8', empty: 'F32' };
  for (const [name, t] of tensors) {
    const got = r.tensors.get(name)!;
    assert.equal(got.dtype, t.dtype ?? expectDtype[name], name);
    assert.deepEqual(got.shape, [...t.shape], name);
    assert.deepEqual(got.data, t.data, name);
    assert.equal(got.data.constructor, t.data.constructor, name);
  }
  // selected tensors, header only, reader API
  const some = readSafetensors(p, { names: ['u8', 'w'] });
  assert.deepEqual([...some.tensors.keys()], ['w', 'u8']);
  assert.throws(() => readSafetensors(p, { names: ['nope'] }), /no tensor 'nope'/);
  assert.throws(() => readSafetensors(p, { names: ['w'], hash: true }), /hash needs every tensor/);
  const h = readSafetensorsHeader(p);
  assert.deepEqual(h.tensors.get('w'), { dtype: 'F32', shape: [3, 4], begin: 0, end: 48 });
  const reader = new SafetensorsReader(p);
  const into = new Float32Array(12);
  reader.read('w', into);
  assert.deepEqual(into, tensors.get('w')!.data);
  assert.throws(() => reader.read('w', new Float32Array(3)), /destination holds 12 bytes, tensor has 48/);
  reader.close();
  // a subarray view is written from its own offset
  const big = randn(100, 5);
  writeSafetensors(p, { v: { shape: [10], data: big.subarray(50, 60) } });
  assert.deepEqual(readSafetensors(p).tensors.get('v')!.data, big.slice(50, 60));
  // no tensors at all
  writeSafetensors(p, new Map());
  assert.equal(readSafetensors(p).tensors.size, 0);
}));

test('large tensor streams to disk and back', () => withDir((dir) => {
  const p = join(dir, 'big.safetensors');
  const a = randn(3_000_000, 9);
  writeSafetensors(p, { a: { shape: [3000, 1000], data: a }, b: { shape: [2], data: Float32Array.of(1, 2) } });
  const r = readSafetensors(p);
  assert.deepEqual(r.tensors.get('a')!.data, a);
  assert.equal(statSync(p).size, r.bytes);
}));

test('writer rejects inconsistent tensors', () => withDir((dir) => {
  const p = join(dir, 'x.safetensors');
  assert.throws(() => writeSafetensors(p, { a: { shape: [3], data: new Float32Array(4) } }), /tensor 'a': shape \[3\] has 3 elements, data has 4/);
  assert.throws(() => writeSafetensors(p, { a: { dtype: 'BF16', shape: [2], data: new Float32Array(2) } }), /dtype BF16 needs 2-byte elements, got a Float32Array/);
  assert.throws(() => writeSafetensors(p, { __metadata__: { shape: [1], data: new Float32Array(1) } }), /invalid tensor name/);
  assert.throws(() => writeSafetensors(p, { a: { shape: [-1], data: new Float32Array(1) } }), /invalid shape/);
  assert.throws(() => writeSafetensors(p, {}, { n: 3 as unknown as string }), /metadata 'n' must be a string/);
  assert.deepEqual(readdirSync(dir), [], 'failed writes leave nothing behind');
}));

test('a python-written file parses (fixture built from the spec)', () => withDir((dir) => {
  // As safetensors.torch.save_file writes it: tensors sorted by dtype size then name in the data
  // section, header keys in a different order, __metadata__ {"format": "pt"}, space padding.
  const w = Float32Array.of(1.5, -2, 0.25, 3);
  const steps = BigInt64Array.of(12345678901n);
  const half = Uint16Array.of(f32ToBf16Bits(1), f32ToBf16Bits(-0.5), f32ToBf16Bits(3.140625));
  const data = Buffer.concat([Buffer.from(steps.buffer), Buffer.from(w.buffer), Buffer.from(half.buffer)]);
  const header = {
    'blocks.0.ffn.keys': { dtype: 'BF16', shape: [3], data_offsets: [24, 30] },
    'tok.weight': { dtype: 'F32', shape: [2, 2], data_offsets: [8, 24] },
    __metadata__: { format: 'pt' },
    'blocks.0.ffn.bn.num_batches_tracked': { dtype: 'I64', shape: [], data_offsets: [0, 8] },
  };
  const p = join(dir, 'torch.safetensors');
  writeFileSync(p, buildFile(header, data));
  const r = readSafetensors(p);
  assert.deepEqual(r.metadata, { format: 'pt' });
  assert.deepEqual([...r.tensors.keys()], ['blocks.0.ffn.keys', 'tok.weight', 'blocks.0.ffn.bn.num_batches_tracked']);
  assert.deepEqual(r.tensors.get('tok.weight'), { dtype: 'F32', shape: [2, 2], data: w });
  assert.deepEqual(r.tensors.get('blocks.0.ffn.bn.num_batches_tracked')!.data, steps);
  assert.deepEqual([...r.tensors.get('blocks.0.ffn.keys')!.data as Uint16Array].map(bf16BitsToF32), [1, -0.5, 3.140625]);
  // unpadded header and no metadata are fine too
  writeFileSync(p, buildFile({ a: { dtype: 'U8', shape: [3], data_offsets: [0, 3] } }, Uint8Array.of(1, 2, 3), false));
  assert.deepEqual(readSafetensors(p).tensors.get('a')!.data, Uint8Array.of(1, 2, 3));
}));

test('every corruption is a clear error naming the file', () => withDir((dir) => {
  const p = join(dir, 'bad.safetensors');
  const f32 = (n: number) => new Uint8Array(n * 4);
  writeFileSync(p, Buffer.from([1, 2, 3, 4, 5]));
  expectError(p, /truncated: expected at least 8 bytes \(header length\), file has 5/);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(1000n);
  writeFileSync(p, Buffer.concat([len, Buffer.from('{}      ')]));
  expectError(p, /truncated: header length 1000 needs 1008 bytes, file has 16/);
  writeFileSync(p, buildFile('{"a": {"dtype": "F32",', new Uint8Array(0)));
  expectError(p, /header is not valid JSON/);
  writeFileSync(p, buildFile('[1, 2]', new Uint8Array(0)));
  expectError(p, /header is not a JSON object/);
  const raw = Buffer.concat([Buffer.from([8, 0, 0, 0, 0, 0, 0, 0]), Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x20, 0x20, 0x20, 0x20])]);
  writeFileSync(p, raw);
  expectError(p, /header is not valid UTF-8/);
  writeFileSync(p, buildFile({ a: { dtype: 'F8', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)));
  expectError(p, /tensor 'a': unknown dtype "F8"/);
  writeFileSync(p, buildFile({ a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, f32(1)));
  expectError(p, /tensor 'a': invalid shape \[1\.5\]/);
  writeFileSync(p, buildFile({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, f32(1)));
  expectError(p, /tensor 'a': invalid data_offsets \[4,0\]/);
  writeFileSync(p, buildFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0] } }, f32(1)));
  expectError(p, /tensor 'a': invalid data_offsets/);
  writeFileSync(p, buildFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32(2)));
  expectError(p, /tensor 'a': data_offsets \[0, 8\] hold 8 bytes, but shape \[3\] of F32 needs 12/);
  writeFileSync(p, buildFile({ a: 5 }, f32(1)));
  expectError(p, /tensor 'a': header entry is not an object/);
  // data section cut short
  const good = buildFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } }, f32(6));
  writeFileSync(p, good);
  assert.doesNotThrow(() => readSafetensors(p));
  truncateSync(p, good.length - 5);
  expectError(p, new RegExp(`truncated: expected ${good.length} bytes \\(tensor 'b' ends at data byte 24\\), file has ${good.length - 5}`));
  // overlap, gap, trailing bytes
  writeFileSync(p, buildFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, f32(3)));
  expectError(p, /tensors 'a' and 'b' overlap/);
  writeFileSync(p, buildFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, f32(3)));
  expectError(p, /gap in the data section: bytes 4\.\.8 before tensor 'b'/);
  writeFileSync(p, buildFile({ b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, f32(2)));
  expectError(p, /gap in the data section: bytes 0\.\.4/);
  writeFileSync(p, good);
  appendFileSync(p, Buffer.from([1, 2, 3]));
  expectError(p, /trailing garbage: 3 bytes after the last tensor/);
  writeFileSync(p, buildFile({ __metadata__: { a: 1 } }, new Uint8Array(0)));
  expectError(p, /__metadata__\['a'\] must be a string/);
  writeFileSync(p, buildFile({ __metadata__: [1] }, new Uint8Array(0)));
  expectError(p, /__metadata__ must be an object of strings/);
  expectError(join(dir, 'nope.safetensors'), /file not found/);
  expectError(dir, /not a regular file|cannot open/);
}));

test('bf16 conversion rounds to nearest even', () => {
  assert.equal(f32ToBf16Bits(1), 0x3f80);
  assert.equal(f32ToBf16Bits(-2), 0xc000);
  assert.equal(bf16BitsToF32(f32ToBf16Bits(3.140625)), 3.140625);
  assert.equal(bf16BitsToF32(f32ToBf16Bits(1 + 2 ** -8)), 1); // tie -> even
  assert.equal(bf16BitsToF32(f32ToBf16Bits(1 + 3 * 2 ** -8)), 1 + 2 ** -6); // tie -> even (up)
  assert.ok(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(NaN))));
  assert.equal(bf16BitsToF32(f32ToBf16Bits(Infinity)), Infinity);
});

test('writeFileAtomic: replaces whole files, cleans up on failure', () => withDir((dir) => {
  const p = join(dir, 'f.json');
  writeFileAtomic(p, 'one');
  writeFileAtomic(p, new Uint8Array([50, 51]));
  assert.equal(readFileSync(p, 'utf8'), '23');
  assert.equal(writeFileAtomic(p, (fd) => { writeFileSync(fd, 'via fd'); return 7; }), 7);
  assert.equal(readFileSync(p, 'utf8'), 'via fd');
  assert.throws(() => writeFileAtomic(p, () => { throw new Error('boom'); }), /boom/);
  assert.equal(readFileSync(p, 'utf8'), 'via fd', 'old content survives a failed write');
  assert.deepEqual(readdirSync(dir), ['f.json']);
}));
