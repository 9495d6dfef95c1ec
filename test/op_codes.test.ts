// The op codes TS passes to the addon (src/backend/op_codes.ts) must be exactly the addon's own
// (native/op_codes.h, exported as opCodes()): same families, same names, same numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { loadNative, kernelsFromAddon } from '../src/backend/native.js';
import { packageRoot } from '../src/util/package.js';
import { OP_CODES, UnaryOp, BinaryOp, ReduceOp, PeerAct } from '../src/backend/op_codes.js';
import * as kernels from '../src/backend/kernels.js';

// the raw module (loadNative returns only the contract's kernels, after checking these very codes)
const addon = loadNative() ? (createRequire(import.meta.url)(join(packageRoot(), 'build', 'Release', 'moelab.node')) as { opCodes(): unknown }) : null;

test('addon opCodes() equals the TS op-code tables exactly', { skip: !addon }, () => {
  assert.deepStrictEqual(addon!.opCodes(), JSON.parse(JSON.stringify(OP_CODES)));
});

test('an addon whose op codes differ is refused at load', { skip: !addon }, () => {
  const raw = addon as unknown as Record<string, unknown>;
  const swapped = { ...raw, opCodes: () => ({ ...OP_CODES, binary: { ...OP_CODES.binary, add: 1, sub: 0 } }) };
  assert.throws(() => kernelsFromAddon(swapped, 'test'), /numbers its ops differently/);
  assert.doesNotThrow(() => kernelsFromAddon(raw, 'test'));
});

test('codes are 0..n-1 in each family, and the old import paths give the same objects', () => {
  for (const [family, table] of Object.entries(OP_CODES))
    assert.deepEqual(Object.values(table), Object.keys(table).map((_, i) => i), family);
  assert.equal(kernels.UnaryOp, UnaryOp);
  assert.equal(kernels.BinaryOp, BinaryOp);
  assert.equal(kernels.ReduceOp, ReduceOp);
  assert.equal(kernels.PeerAct, PeerAct);
});

test('the addon refuses a code one past each family', { skip: !addon }, () => {
  const K = addon as unknown as kernels.Kernels & { peerForward: (...a: unknown[]) => void };
  const f = new Float32Array(4);
  assert.throws(() => K.unary(Object.keys(UnaryOp).length, f, new Float32Array(4)), /unknown op code 11/);
  assert.throws(() => K.binaryScalar(Object.keys(BinaryOp).length, f, 1, new Float32Array(4)), /unknown op code 6/);
  assert.throws(() => K.reduce(Object.keys(ReduceOp).length, 1, 4, 1, f, new Float32Array(1), null), /unknown op code 2/);
  assert.throws(() => K.peerForward(1, 1, 1, 1, 1, Object.keys(PeerAct).length, f, null, f, new Int32Array(1), f,
    new Float32Array(1), null, new Float32Array(1)), /unknown activation code 2/);
});
