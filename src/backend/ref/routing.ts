// Reference routing kernels: expert-choice selection, written as a per-expert sort of its column.
import type { F32, I32 } from '../kernels.js';
import { dim, len, need } from './check.js';
import { ranksBefore } from './math.js';

/** Every expert e takes the C top-ranked tokens of column e of scores [T, E] (see kernels/routing.ts). */
export function expertChoice(T: number, E: number, C: number, scores: F32, tok: I32, vals: F32): void {
  const fn = 'expertChoice';
  dim(fn, 'T', T);
  dim(fn, 'E', E);
  dim(fn, 'C', C);
  need(C <= T, fn, `C (${C}) > T (${T}): an expert cannot take more tokens than there are`);
  len(fn, 'scores', scores, T * E);
  len(fn, 'tok', tok, E * C);
  len(fn, 'vals', vals, E * C);
  const order = new Array<number>(T);
  for (let e = 0; e < E; e++) {
    for (let t = 0; t < T; t++) order[t] = t;
    const s = (t: number) => scores[t * E + e];
    order.sort((a, b) => (ranksBefore(s(a), a, s(b), b) ? -1 : ranksBefore(s(b), b, s(a), a) ? 1 : 0));
    for (let c = 0; c < C; c++) {
      tok[e * C + c] = order[c];
      vals[e * C + c] = s(order[c]);
    }
  }
}
