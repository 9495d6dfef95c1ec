// Chinchilla: L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022, arXiv 2203.15556,
// eq. 2 and approach 3). The start grid is theirs (section D.2): alpha, beta in {0, 0.5, ..., 2},
// e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25}.
import { defineLaw } from '../law.js';

const range = (lo: number, hi: number, step: number) =>
  Array.from({ length: Math.round((hi - lo) / step) + 1 }, (_, i) => lo + i * step);

export const chinchilla = defineLaw({
  name: 'chinchilla',
  formula: 'L = E + A/N^alpha + B/D^beta',
  citation: 'Hoffmann et al. 2022, Training Compute-Optimal Large Language Models (arXiv 2203.15556), approach 3',
  internal: { a: range(0, 25, 5), b: range(0, 25, 5), e: range(-1, 1, 0.5), alpha: range(0, 2, 0.5), beta: range(0, 2, 0.5) },
  params: [['E', 'e', true], ['A', 'a', true], ['B', 'b', true], ['alpha', 'alpha', false], ['beta', 'beta', false]],
  terms: [
    [['a', 'one', 1], ['alpha', 'logN', -1]],
    [['b', 'one', 1], ['beta', 'logD', -1]],
    [['e', 'one', 1]],
  ],
});
