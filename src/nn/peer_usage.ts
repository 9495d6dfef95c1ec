/**
 * How a PEER layer used its N experts over a window of evaluation forwards (He 2024 reports the
 * first two, per layer and per head):
 *   used fraction  U / N, U = experts retrieved at least once
 *   usage KL       KL(p || uniform) = sum_i p_i ln(p_i N), p_i = expert i's share of the window's
 *                  retrievals (0 ln 0 = 0); 0 when use is perfectly even, ln N when one expert takes all
 *   evenness       H(p) / ln(min(N, S)), S retrievals: 1 when as even as S retrievals allow, toward 0
 *                  as a few experts take most of them
 * each over all heads together (the layer) and per head (over that head's retrievals).
 * Counts are [heads, N] uint32, allocated on the first forward counted.
 */
import type { FfnStats } from './ffn.js';

interface Usage { unique: number; usedFraction: number; kl: number; evenness: number }

export class PeerUsage {
  private hits: Uint32Array | null = null;
  private forwards = 0;

  constructor(readonly N: number, readonly heads: number, readonly k: number) {}

  reset(): void {
    this.hits?.fill(0);
    this.forwards = 0;
  }

  /** Counts one forward's expert ids [T, heads*k] (head j's picks at columns j*k .. j*k+k). */
  add(ids: Int32Array): void {
    const { N, heads, k } = this, w = heads * k;
    if (ids.length % w !== 0) throw new Error(`PeerUsage: ${ids.length} ids are not whole rows of heads*k = ${w}`);
    const hits = (this.hits ??= new Uint32Array(heads * N));
    for (let r = 0; r < ids.length; r += w) {
      for (let j = 0; j < heads; j++) {
        const base = j * N, row = r + j * k;
        for (let i = 0; i < k; i++) hits[base + ids[row + i]]++;
      }
    }
    this.forwards++;
  }

  /**
   * peerUniqueExperts, peerUsedFraction, peerUsageKL (nats), peerUsageEvenness over all heads;
   * peerHeadUsedFraction[j], peerHeadUsageKL[j] per head; peerRetrievals = S. Null before any forward.
   */
  summary(): FfnStats | null {
    if (!this.forwards || !this.hits) return null;
    const { N, heads } = this, hits = this.hits;
    const all = new Float64Array(N);
    const perHead: Usage[] = [];
    for (let j = 0; j < heads; j++) {
      const h = hits.subarray(j * N, (j + 1) * N);
      for (let e = 0; e < N; e++) all[e] += h[e];
      perHead.push(usageOf(h, N));
    }
    const layer = usageOf(all, N);
    let S = 0;
    for (let e = 0; e < N; e++) S += all[e];
    return {
      peerUniqueExperts: layer.unique, peerUsedFraction: layer.usedFraction, peerUsageEvenness: layer.evenness, peerUsageKL: layer.kl,
      peerHeadUsedFraction: perHead.map((u) => u.usedFraction), peerHeadUsageKL: perHead.map((u) => u.kl), peerRetrievals: S,
    };
  }
}

function usageOf(c: ArrayLike<number>, N: number): Usage {
  let S = 0, unique = 0;
  for (let e = 0; e < N; e++) {
    S += c[e];
    if (c[e]) unique++;
  }
  let kl = 0, H = 0;
  for (let e = 0; e < N; e++) {
    if (!c[e]) continue;
    const p = c[e] / S;
    kl += p * Math.log(p * N);
    H -= p * Math.log(p);
  }
  const Hmax = Math.log(Math.min(N, S));
  return { unique, usedFraction: unique / N, kl: S ? kl : 0, evenness: Hmax > 0 ? H / Hmax : 1 };
}
