// The one kernel registry: KERNEL_NAMES matches the reference implementation and the built addon,
// an addon lacking a kernel is refused with the missing names, and the profiler wraps every kernel
// (PEER ones included, which a PEER layer's forward and backward must reach through backend()).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OP_CODES } from '../src/backend/op_codes.js';
import { KERNEL_NAMES, ref, profiled, kernelsFromAddon, IncompleteAddonError, setBackend, type KernelStats, type Kernels } from '../src/backend/index.js';
import { loadNative } from '../src/backend/native.js';
import { tensor } from '../src/tensor/index.js';
import { PEER } from '../src/nn/peer.js';
import { setPeerDispatch } from '../src/tensor/ops/peer_union.js';
import { Rng } from '../src/util/random.js';
import { randn } from './util.js';

const PEER_NAMES = ['peerRetrieve', 'peerRetrieveBackward', 'peerForward', 'peerBackward', 'peerBackwardRows', 'peerUnionForward', 'peerUnionBackward', 'peerCoalesce',
  'peerRowGrad', 'peerBatchNorm', 'peerBatchNormBackward', 'sparseAdam', 'peerAdviseHugePages'];

test('KERNEL_NAMES is every reference kernel, once, PEER included', () => {
  assert.equal(new Set(KERNEL_NAMES).size, KERNEL_NAMES.length, 'duplicate names');
  const refNames = Object.keys(ref).filter((n) => n !== 'name').sort();
  assert.deepEqual([...KERNEL_NAMES].sort(), refNames);
  for (const n of PEER_NAMES) assert.ok(KERNEL_NAMES.includes(n as never), `${n} missing from KERNEL_NAMES`);
  for (const n of KERNEL_NAMES) assert.equal(typeof ref[n], 'function', `ref.${n}`);
});

test('the built addon exports every kernel of the contract', { skip: !loadNative() && 'native addon not built' }, () => {
  const nat = loadNative()!;
  assert.equal(nat.name, 'native');
  for (const n of KERNEL_NAMES) assert.equal(typeof nat[n], 'function', `native ${n}`);
});

test('an addon lacking kernels is refused, naming them', () => {
  const fake: Record<string, unknown> = { opCodes: () => OP_CODES };
  for (const n of KERNEL_NAMES) fake[n] = ref[n];
  delete fake.peerRowGrad;
  delete fake.gemm;
  fake.gemmGroupedK = 42; // present but not a function
  assert.throws(() => kernelsFromAddon(fake, '/tmp/fake.node'), (e: Error) => {
    assert.ok(e instanceof IncompleteAddonError);
    assert.deepEqual([...(e as IncompleteAddonError).missing].sort(), ['gemm', 'gemmGroupedK', 'peerRowGrad']);
    assert.match(e.message, /\/tmp\/fake\.node/);
    assert.match(e.message, /gemm, gemmGroupedK, peerRowGrad|peerRowGrad/);
    assert.match(e.message, /rebuild/);
    return true;
  });
  fake.peerRowGrad = ref.peerRowGrad;
  fake.gemm = ref.gemm;
  fake.gemmGroupedK = ref.gemmGroupedK;
  fake.somethingExtra = () => 0;
  const k = kernelsFromAddon(fake, 'fake');
  assert.equal(k.name, 'native');
  assert.deepEqual(Object.keys(k).filter((n) => n !== 'name').sort(), [...KERNEL_NAMES].sort(), 'exactly the contract');
});

test('the profiler wraps every kernel, and a PEER layer runs all its kernels through it', () => {
  const stats: KernelStats = new Map();
  const p = profiled(ref, stats);
  assert.deepEqual([...stats.keys()].sort(), [...KERNEL_NAMES].sort());
  for (const n of KERNEL_NAMES) assert.notEqual(p[n], ref[n], `${n} not wrapped`);
  assert.equal(p.name, 'ref');
  // a wrapped kernel still returns its value and throws its errors, and both count
  const uniq = new Int32Array(3), off = new Int32Array(4), ord = new Int32Array(3);
  assert.equal(p.peerCoalesce(3, 5, Int32Array.of(4, 1, 4), uniq, off, ord), 2);
  assert.throws(() => p.peerCoalesce(3, 2, Int32Array.of(4, 1, 4), uniq, off, ord), RangeError);
  assert.equal(stats.get('peerCoalesce')!.calls, 2);

  setBackend(p as Kernels);
  try {
    for (const [training, sparseGrads, path] of [[true, true, 'rows'], [true, false, 'rows'], [true, true, 'union']] as const) {
      setPeerDispatch(path);
      const layer = new PEER(8, { nSub: 4, heads: 2, k: 2, dKey: 4, bn: true, activation: 'gelu', pkm: false, sparseGrads }, new Rng(1));
      layer.train(training);
      const x = tensor(randn(6 * 8, 3), [6, 8], { requiresGrad: true });
      layer.forward(x).backward(randn(6 * 8, 4));
    }
  } finally {
    setBackend(ref);
    setPeerDispatch('auto');
  }
  for (const n of ['peerRetrieve', 'peerRetrieveBackward', 'peerForward', 'peerUnionForward', 'peerUnionBackward', 'peerBatchNorm', 'peerBatchNormBackward', 'gemm']) {
    assert.ok(stats.get(n)!.calls >= 1, `${n} did not go through the profiled backend`);
  }
  assert.ok(stats.get('peerCoalesce')!.calls >= 5, `backward coalescing not profiled (${stats.get('peerCoalesce')!.calls} calls)`);
  assert.ok(stats.get('peerBackwardRows')!.calls + stats.get('peerBackward')!.calls >= 2, 'expert backward not profiled');
});
