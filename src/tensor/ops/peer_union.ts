/**
 * The PEER expert mixture computed densely over the union of the picked experts. When the T*hk
 * picks of a batch fall on few distinct experts (U of them: a router that concentrated, as the
 * d256 presets' do within a dozen steps on real text, or a small table), every product becomes a
 * GEMM against the U gathered rows instead of T*hk gathered row products. Each token is also
 * scored against the union experts it did not pick (T*U*d multiply-adds per product instead of
 * T*hk*d, those entries ignored), but a GEMM runs several times faster than gathered rows, so the
 * path wins while U stays within a few times hk (unionWins; bench/peer_union.ts measures it).
 * With Us = u[uniq], Vs = v[uniq] ([U, d]) and, for a coefficient c per pick, the [T, U] matrix
 * whose entry (t, i) sums c over token t's picks of expert uniq[i] (a token may pick one expert in
 * two heads):
 *   A = x Us^T,  a[t,j] = A[t, col(t,j)],  y = W Vs                 (W from c = g act(a))
 *   gw[t,j] = (gy Vs^T)[t, col(t,j)],  gx = C Us,  gu rows = C^T x,  gv rows = W^T gy
 *                                                                    (C from c = gw g act'(a))
 * which are, term for term, the sums the row kernels (peerForward, peerBackwardRows) form; only the
 * summation order differs. The per-pick gathers and scatters are peerUnionForward/Backward.
 * Float32 tables only (bf16 tables keep the row kernels).
 */
import { backend } from '../../backend/index.js';
import { alloc, release, scratch } from '../pool.js';

/** peerCoalesce's index of the T*hk picks: uniq[0..U) ascending, occurrence lists order[offsets[i] .. offsets[i+1]). */
export interface PickIndex {
  U: number;
  uniq: Int32Array;
  offsets: Int32Array;
  order: Int32Array;
}

/**
 * Whether the dense union path is expected to be faster: its six GEMMs cost T*U*d each against
 * T*hk*d per pass of gathered row products. Measured forward + backward at T 2048, d 256, hk 128
 * (bench/peer_union.ts, Zen 4): union 3.9-4.6x faster at U <= 2 hk, 2.5x at 4 hk, 1.27x at 8 hk,
 * 0.65x at 16 hk (avx2 tier: 3.2-3.8x, 2.0x, 1.17x, 0.62x).
 */
export function unionWins(U: number, hk: number): boolean {
  return U <= 6 * hk;
}

export type PeerDispatch = 'auto' | 'rows' | 'union';
let dispatch: PeerDispatch = 'auto';

/** Forces the PEER expert path ('rows' = the gathered-row kernels, 'union' = dense over the picked experts whenever the tables are float32); returns the previous setting. For tests and A/Bs. */
export function setPeerDispatch(d: PeerDispatch): PeerDispatch {
  const prev = dispatch;
  dispatch = d;
  return prev;
}

/** Whether the setting lets any call take the union path (peerExperts then coalesces in the forward). */
export function dispatchAllowsUnion(): boolean {
  return dispatch !== 'rows';
}

/** Whether a call with U distinct experts among hk picks per token takes the union path. */
export function useUnion(U: number, hk: number): boolean {
  return dispatch === 'union' || (dispatch === 'auto' && unionWins(U, hk));
}

/** State the union forward keeps for its backward; unionBackward hands the buffers back. */
export interface UnionForward {
  g: Float32Array;          // [T, hk] gates
  a: Float32Array | null;   // [T, hk] u-row products (null: pkm)
  W: Float32Array;          // [T, U] gate weights g act(a) summed per union row (pkm: g)
  Us: Float32Array | null;  // [U, d] gathered u rows
  Vs: Float32Array;         // [U, d] gathered v rows
  cols: Int32Array;         // [T, hk] each pick's row in the union
}

/** cols[p] = i for every pick p listed under uniq[i]. */
function unionColumns(ix: PickIndex, n: number): Int32Array {
  const cols = new Int32Array(n), { U, offsets, order } = ix;
  for (let i = 0; i < U; i++) for (let q = offsets[i], e = offsets[i + 1]; q < e; q++) cols[order[q]] = i;
  return cols;
}

/**
 * Forward over the union (u null: product-key memory). Writes y [T, d]; the returned state feeds
 * unionBackward, which frees it.
 */
export function unionForward(T: number, d: number, hk: number, k: number, act: number, x: Float32Array,
  u: Float32Array | null, v: Float32Array, scores: Float32Array, ix: PickIndex, y: Float32Array): UnionForward {
  const K = backend(), U = ix.U, n = T * hk;
  const cols = unionColumns(ix, n);
  const uniq = ix.uniq.subarray(0, U);
  // g, a, W, Us, Vs are kept for the backward (pool.ts: op-internal saved state)
  const g = alloc(n), W = alloc(T * U), Vs = alloc(U * d);
  K.indexSelect(U, d, v, uniq, Vs);
  let a: Float32Array | null = null, Us: Float32Array | null = null;
  if (u) {
    Us = alloc(U * d);
    K.indexSelect(U, d, u, uniq, Us);
    const A = scratch(T * U);
    K.gemm(false, true, T, U, d, 1, x, d, Us, d, 0, A, U, null);
    a = alloc(n);
    K.peerUnionForward(T, hk, k, act, U, cols, scores, A, g, a, W);
    release(A);
  } else {
    K.peerUnionForward(T, hk, k, act, U, cols, scores, null, g, null, W);
  }
  K.gemm(false, false, T, d, U, 1, W, U, Vs, d, 0, y, d, null);
  return { g, a, W, Us, Vs, cols };
}

/**
 * Backward over the union from unionForward's state (freed here): writes gscores [T, hk], gx
 * [T, d] (when u was given) and the coalesced row gradients gu, gv [U, d] in uniq order (either
 * may be null).
 */
export function unionBackward(T: number, d: number, hk: number, k: number, act: number, x: Float32Array,
  gy: Float32Array, f: UnionForward, U: number, gx: Float32Array | null, gscores: Float32Array,
  gu: Float32Array | null, gv: Float32Array | null): void {
  const K = backend();
  const GW = scratch(T * U);
  K.gemm(false, true, T, U, d, 1, gy, d, f.Vs, d, 0, GW, U, null);
  if (f.a && f.Us && gx) {
    const C = scratch(T * U);
    K.peerUnionBackward(T, hk, k, act, U, f.cols, f.g, f.a, GW, gscores, C);
    K.gemm(false, false, T, d, U, 1, C, U, f.Us, d, 0, gx, d, null);
    if (gu) K.gemm(true, false, U, d, T, 1, C, U, x, d, 0, gu, d, null);
    release(C);
  } else {
    K.peerUnionBackward(T, hk, k, act, U, f.cols, f.g, null, GW, gscores, null);
  }
  release(GW);
  if (gv) K.gemm(true, false, U, d, T, 1, f.W, U, gy, d, 0, gv, d, null);
  release(f.g, f.a, f.W, f.Us, f.Vs);
}
