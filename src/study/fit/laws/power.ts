// Loss against training compute alone: L = E + A / C^alpha (the compute frontier of Kaplan et al.
// 2020, with an irreducible term as in Hoffmann et al. 2022), fitted the same way.
import { defineLaw } from '../law.js';

export const power = defineLaw({
  name: 'power',
  formula: 'L = E + A/C^alpha',
  citation: 'Kaplan et al. 2020 (arXiv 2001.08361) compute law with an irreducible term E; fitted as Hoffmann et al. 2022 approach 3',
  internal: { a: [0, 5, 10, 15, 20, 25], e: [-1, -0.5, 0, 0.5, 1], alpha: [0, 0.05, 0.1, 0.25, 0.5, 1] },
  params: [['E', 'e', true], ['A', 'a', true], ['alpha', 'alpha', false]],
  terms: [
    [['a', 'one', 1], ['alpha', 'logC', -1]],
    [['e', 'one', 1]],
  ],
});
