// sparsity: Abnar et al. 2025 ("Parameters vs FLOPs: Scaling Laws for Optimal Sparsity for
// Mixture-of-Experts Language Models", arXiv 2501.12370) find that at a fixed compute budget and
// fixed active parameters, more total parameters (higher sparsity S = 1 - k/E) lower the loss.
//
// Here: every feed-forward layer an MoE (as in their setup), top-2 of experts with hidden 2d (so the
// active expert width is the dense MLP's 4d), E in {2, 4, 8, 16}: S = 0, 0.5, 0.75, 0.875 at fixed
// active parameters (the fixed-active generator; only the router's E x d grows), two compute budgets a
// factor 4 apart, two seeds (16 runs). Points of one budget are isoFLOP.
// Verdict: the sparsest model (E 16) against the S = 0 one (E 2) at each budget, by the contrast rule
// of verdict.ts; the table of mean losses per sparsity and budget shows whether the fall is monotone.
// The abnar law is fitted to the points (its optimal-sparsity tables follow in the report).
import { sig, table } from '../fit/markdown.js';
import type { SweepResult } from '../results.js';
import type { StudyDefinition } from './design.js';
import { studyBase } from './design.js';
import { contrastAtBudgets, contrastOutcome, contrastTable, stat, CONTRAST_RULE } from './verdict.js';

const EXPERTS = [2, 4, 8, 16];

function sparsityTable(results: readonly SweepResult[]): string {
  const budgets = [...new Set(results.map((r) => r.budget).filter((b): b is number => b !== null))].sort((a, b) => a - b);
  const levels = [...new Set(results.map((r) => r.sparsity))].sort((a, b) => a - b);
  const rows = levels.map((S) => [sig(S, 3), ...budgets.map((b) => {
    const ls = results.filter((r) => r.sparsity === S && r.budget === b).map((r) => r.valLoss);
    if (!ls.length) return 'n/a';
    const s = stat(ls);
    return `${s.mean.toFixed(4)}${s.sd !== null ? ` ± ${s.sd.toFixed(4)}` : ''}`;
  })]);
  return table(['sparsity S', ...budgets.map((b) => `loss at ${sig(b)} FLOPs`)], rows);
}

/** Whether the mean loss falls at every step up in sparsity, per budget. */
function monotone(results: readonly SweepResult[]): string {
  const budgets = [...new Set(results.map((r) => r.budget).filter((b): b is number => b !== null))].sort((a, b) => a - b);
  return budgets.map((b) => {
    const levels = [...new Set(results.filter((r) => r.budget === b).map((r) => r.sparsity))].sort((x, y) => x - y);
    const means = levels.map((S) => stat(results.filter((r) => r.budget === b && r.sparsity === S).map((r) => r.valLoss)).mean);
    const falls = means.every((m, i) => i === 0 || m < means[i - 1]);
    return `at ${sig(b)} FLOPs the mean loss ${falls ? 'falls at every step up in sparsity' : 'does not fall at every step up in sparsity'}`;
  }).join('; ');
}

export const sparsityStudy: StudyDefinition = {
  name: 'sparsity',
  title: 'Loss vs sparsity at fixed active parameters (Abnar et al. 2025)',
  paper: 'Abnar et al. 2025, Parameters vs FLOPs: Scaling Laws for Optimal Sparsity for Mixture-of-Experts Language Models (arXiv 2501.12370)',
  design: [
    'Every feed-forward layer an MoE with top-2 routing and experts of hidden 2d, E in {2, 4, 8, 16} experts, i.e. sparsity S = 1 - k/E in {0, 0.5, 0.75, 0.875}',
    'at fixed active parameters (only the router grows with E), at 2 compute budgets a factor 4 apart, 2 seeds each (16 runs, isoFLOP per budget).',
    'Verdict: at every budget the sparsest model beats the S = 0 one by more than two standard errors of the seeds.',
  ].join(' '),
  sweep: {
    description: 'sparsity study: fixed active parameters, growing experts (Abnar et al. 2025)',
    base: { inline: { ...studyBase(), model: { ...(studyBase().model as object), ffn: { type: 'moe', experts: 2, topk: 2, expertHidden: 256, every: 1 } } } },
    generator: { kind: 'fixed-active', experts: EXPERTS },
  },
  budgetFactors: [1, 4],
  seeds: [0, 1],
  law: 'abnar',
  verdict(results) {
    const levels = [...new Set(results.map((r) => r.sparsity))].sort((a, b) => a - b);
    const lo = levels[0], hi = levels[levels.length - 1];
    const cs = levels.length >= 2 ? contrastAtBudgets(results, (r) => r.sparsity === hi, (r) => r.sparsity === lo) : [];
    const outcome = contrastOutcome(cs);
    const nameHi = `S=${sig(hi ?? NaN, 3)}`, nameLo = `S=${sig(lo ?? NaN, 3)}`;
    const summary = cs.length
      ? `At fixed active parameters and equal compute, loss(${nameHi}) - loss(${nameLo}) is ${cs.map((c) => `${(-c.diff).toFixed(4)} (z ${c.z === null ? 'n/a' : c.z.toFixed(1)}) at ${sig(c.budget)} FLOPs`).join(', ')} ` +
        `(z positive when ${nameHi} has the lower loss); ${monotone(results)}.`
      : 'fewer than two sparsity levels finished: nothing to compare.';
    const details = [sparsityTable(results), '', `Contrast (A = ${nameHi}, B = ${nameLo}):`, '', contrastTable(cs, nameHi, nameLo), '', CONTRAST_RULE].join('\n');
    return { claim: 'loss falls with sparsity at fixed active parameters and compute', outcome, summary, details };
  },
};
