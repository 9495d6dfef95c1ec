// peer-isoflop: He 2024 ("Mixture of A Million Experts", arXiv 2407.04153) compares PEER (many
// single-neuron experts retrieved with product keys) with dense, MoE and product-key-memory models at
// equal training FLOPs and finds PEER has the lowest loss.
//
// Here: dense, MoE (8 experts top-2, hidden 2d, every layer) and PEER (32^2 = 1024 single-neuron
// experts, 4 heads x top-8, key dim 64, every layer) at the same width and depth, trained at two
// compute budgets a factor 4 apart, two seeds each (12 runs). At equal budget a cheaper-per-token
// family trains more steps, so each pair of points is isoFLOP (the paper's isoFLOP curves also vary
// model size; here the size is fixed and the budget sets the tokens).
// Verdict: PEER against dense at each budget by the contrast rule of verdict.ts; PEER against MoE is
// shown the same way. The chinchilla law is fitted to all points.
import type { StudyDefinition } from './design.js';
import { studyBase } from './design.js';
import { contrastAtBudgets, contrastOutcome, contrastTable, CONTRAST_RULE } from './verdict.js';

export const peerIsoflop: StudyDefinition = {
  name: 'peer-isoflop',
  title: 'PEER vs dense vs MoE at equal FLOPs (He 2024)',
  paper: 'He 2024, Mixture of A Million Experts (arXiv 2407.04153)',
  design: [
    'Dense, MoE (8 experts, top-2, hidden 2d, every layer) and PEER (1024 single-neuron experts, 4 heads x top-8, key dim 64, every layer)',
    'at the same width and depth, 2 compute budgets a factor 4 apart, 2 seeds each (12 runs); at equal budget each family trains the steps its FLOPs/token allow.',
    'Verdict: at every budget PEER beats dense by more than two standard errors of the seeds (PEER vs MoE shown alongside).',
  ].join(' '),
  sweep: {
    description: 'peer-isoflop study: PEER vs dense vs MoE at equal FLOPs (He 2024)',
    base: { inline: studyBase() },
    axes: {
      'model.ffn': [
        { type: 'dense' },
        { type: 'moe', experts: 8, topk: 2, expertHidden: 256, every: 1 },
        { type: 'peer', nSub: 32, heads: 4, k: 8, dKey: 64 },
      ],
    },
  },
  budgetFactors: [1, 4],
  seeds: [0, 1],
  law: 'chinchilla',
  verdict(results) {
    const isPeer = (f: string) => f === 'peer';
    const vsDense = contrastAtBudgets(results, (r) => isPeer(r.family), (r) => r.family === 'dense');
    const moe = [...new Set(results.map((r) => r.family))].find((f) => f.startsWith('moe')) ?? 'moe';
    const vsMoe = contrastAtBudgets(results, (r) => isPeer(r.family), (r) => r.family === moe);
    const outcome = contrastOutcome(vsDense);
    const moeOutcome = contrastOutcome(vsMoe);
    const summary = vsDense.length
      ? `loss(peer) - loss(dense) at equal FLOPs: ${vsDense.map((c) => `${(-c.diff).toFixed(4)} (z ${c.z === null ? 'n/a' : c.z.toFixed(1)})`).join(', ')} at the ${vsDense.length} budget(s) ` +
        '(z positive when PEER has the lower loss); ' +
        `against ${moe} the same rule gives "${moeOutcome}".`
      : 'PEER and dense have no finished runs at a common budget.';
    const details = ['A = peer, B = dense:', '', contrastTable(vsDense, 'peer', 'dense'), '', `A = peer, B = ${moe}:`, '', contrastTable(vsMoe, 'peer', moe), '', CONTRAST_RULE].join('\n');
    return { claim: 'PEER beats dense at equal FLOPs', outcome, summary, details };
  },
};
