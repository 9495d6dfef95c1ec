// Abnar et al. 2025, Parameters vs FLOPs: Scaling Laws for Optimal Sparsity for Mixture-of-Experts
// Language Models (arXiv 2501.12370; ICML 2025, PMLR 267:204-230), the sparsity-aware law
//   L(N, D, S) = a/N^alpha + b/D^beta + c/(1-S)^lambda + d/((1-S)^delta N^gamma) + e
// with N total parameters, D tokens, S the fraction of inactive experts, fitted like Hoffmann et
// al. approach 3. The form is the one the moelab issue states; we could not read the paper's own
// equation (only secondary notes, which agree on 10 parameters and these five terms but differ in
// the sign convention of the exponents). Since exponents are fitted as free reals here, either
// convention gives the same fitted curve. With only dense points (S = 0) c merges into e and d/N^gamma
// into a/N^alpha: such data cannot identify the law, and fitLaw refuses it.
import { defineLaw } from '../law.js';

export const abnar = defineLaw({
  name: 'abnar',
  formula: 'L = a/N^alpha + b/D^beta + c/(1-S)^lambda + d/((1-S)^delta * N^gamma) + e',
  citation: 'Abnar et al. 2025, Parameters vs FLOPs: Scaling Laws for Optimal Sparsity for Mixture-of-Experts Language Models (arXiv 2501.12370)',
  internal: {
    la: [0, 5, 10], lb: [0, 5, 10], lc: [-3, -1], ld: [0, 5], le: [-1, 0, 1],
    alpha: [0.3, 0.7], beta: [0.3, 0.7], lambda: [0.2, 1], delta: [0.2, 1], gamma: [0.3, 0.7],
  },
  params: [
    ['a', 'la', true], ['b', 'lb', true], ['c', 'lc', true], ['d', 'ld', true], ['e', 'le', true],
    ['alpha', 'alpha', false], ['beta', 'beta', false], ['lambda', 'lambda', false], ['delta', 'delta', false], ['gamma', 'gamma', false],
  ],
  terms: [
    [['la', 'one', 1], ['alpha', 'logN', -1]],
    [['lb', 'one', 1], ['beta', 'logD', -1]],
    [['lc', 'one', 1], ['lambda', 'log1mS', -1]],
    [['ld', 'one', 1], ['delta', 'log1mS', -1], ['gamma', 'logN', -1]],
    [['le', 'one', 1]],
  ],
});
