// Reference product-key retrieval and its backward (the oracle for native/ops_peer.cc), written for
// clarity; contracts in ../kernels/peer.ts. Accumulations run in double precision.
import type { F32, I32 } from '../kernels.js';
import { need, dim, len } from './check.js';

/**
 * Insert (v, i) into the descending list vals/idx holding `cnt` of at most k entries; returns the
 * new count. A full list takes v only if v > its last value, and equal values stay behind older
 * ones, so scanning i ascending yields "descending value, ties keep the lower index". NaN never
 * displaces anything (it is kept only while the list is not full, at its end).
 */
function topkInsert(vals: Float32Array | Float64Array, idx: Int32Array, cnt: number, k: number, v: number, i: number): number {
  let pos: number;
  if (cnt === k) {
    if (!(v > vals[k - 1])) return cnt;
    pos = k - 1;
  } else {
    pos = cnt++;
  }
  while (pos > 0 && v > vals[pos - 1]) {
    vals[pos] = vals[pos - 1];
    idx[pos] = idx[pos - 1];
    pos--;
  }
  vals[pos] = v;
  idx[pos] = i;
  return cnt;
}

/**
 * Product-key retrieval; see Kernels.peerRetrieve. Row r = t*h + j (token t, head j) has its
 * query at q[r*2*half ..]: the first half is scored against keys[0], the second against keys[1].
 */
export function peerRetrieve(T: number, h: number, nSub: number, half: number, k: number,
  q: F32, keys: F32, ids: I32, scores: F32): void {
  const fn = 'peerRetrieve';
  dim(fn, 'T', T); dim(fn, 'h', h, 1); dim(fn, 'nSub', nSub, 1); dim(fn, 'half', half, 1); dim(fn, 'k', k, 1);
  need(k <= nSub, fn, `k (${k}) must be <= nSub (${nSub})`);
  need(nSub * nSub <= 0x7fffffff, fn, `nSub (${nSub}) squared overflows int32 ids`);
  const R = T * h, dk = 2 * half;
  len(fn, 'q', q, R * dk); len(fn, 'keys', keys, 2 * nSub * half);
  len(fn, 'ids', ids, R * k); len(fn, 'scores', scores, R * k);
  const s = [new Float32Array(nSub), new Float32Array(nSub)];
  const tv = [new Float32Array(k), new Float32Array(k)], ti = [new Int32Array(k), new Int32Array(k)];
  const cv = new Float32Array(k), ci = new Int32Array(k);
  for (let r = 0; r < R; r++) {
    for (let hf = 0; hf < 2; hf++) {
      const qo = r * dk + hf * half, ko = hf * nSub * half;
      for (let n = 0; n < nSub; n++) {
        let acc = 0;
        for (let c = 0; c < half; c++) acc += q[qo + c] * keys[ko + n * half + c];
        s[hf][n] = acc;
      }
      let cnt = 0;
      for (let n = 0; n < nSub; n++) cnt = topkInsert(tv[hf], ti[hf], cnt, k, s[hf][n], n);
    }
    // candidates (a, b) with (a+1)(b+1) > k always have >= k candidates ranked before them
    let cnt = 0;
    for (let a = 0; a < k; a++) {
      const bEnd = Math.floor(k / (a + 1));
      for (let b = 0; b < bEnd; b++) cnt = topkInsert(cv, ci, cnt, k, Math.fround(tv[0][a] + tv[1][b]), a * k + b);
    }
    for (let j = 0; j < k; j++) {
      const c = ci[j];
      ids[r * k + j] = ti[0][Math.floor(c / k)] * nSub + ti[1][c % k];
      scores[r * k + j] = cv[j];
    }
  }
}

/**
 * Backward of peerRetrieve for the selected candidates; see Kernels.peerRetrieveBackward.
 * score[r, j] = q1[r] . keys[0][i1] + q2[r] . keys[1][i2] with i1 = id / nSub, i2 = id % nSub.
 */
export function peerRetrieveBackward(T: number, h: number, nSub: number, half: number, k: number,
  q: F32, keys: F32, ids: I32, gscores: F32, gq: F32, gkeys: F32): void {
  const fn = 'peerRetrieveBackward';
  dim(fn, 'T', T); dim(fn, 'h', h, 1); dim(fn, 'nSub', nSub, 1); dim(fn, 'half', half, 1); dim(fn, 'k', k, 1);
  const R = T * h, dk = 2 * half, N = nSub * nSub;
  len(fn, 'q', q, R * dk); len(fn, 'keys', keys, 2 * nSub * half); len(fn, 'ids', ids, R * k);
  len(fn, 'gscores', gscores, R * k); len(fn, 'gq', gq, R * dk); len(fn, 'gkeys', gkeys, 2 * nSub * half);
  const acc = new Float64Array(dk);
  const gk = new Float64Array(2 * nSub * half);
  for (let r = 0; r < R; r++) {
    acc.fill(0);
    for (let j = 0; j < k; j++) {
      const id = ids[r * k + j], gs = gscores[r * k + j];
      need(id >= 0 && id < N, fn, `id ${id} out of range [0, ${N})`);
      const i1 = Math.floor(id / nSub), i2 = id % nSub;
      const k1 = i1 * half, k2 = nSub * half + i2 * half;
      for (let c = 0; c < half; c++) {
        acc[c] += gs * keys[k1 + c];
        acc[half + c] += gs * keys[k2 + c];
        gk[k1 + c] += gs * q[r * dk + c];
        gk[k2 + c] += gs * q[r * dk + half + c];
      }
    }
    for (let c = 0; c < dk; c++) gq[r * dk + c] = acc[c];
  }
  for (let i = 0; i < gk.length; i++) gkeys[i] += gk[i];
}
