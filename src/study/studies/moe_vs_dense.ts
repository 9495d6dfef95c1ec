// moe-vs-dense: Artetxe et al. 2021 ("Efficient Large Scale Language Modeling with Mixtures of
// Experts", arXiv 2112.10684) find that at modest budgets MoE language models reach the loss of dense
// ones with several times less training compute (the "compute multiplier"; ~4x in their abstract).
//
// Here: dense and MoE models (8 experts, top-2 GShard-style gating, an MoE feed-forward every other
// layer with experts as wide as the dense MLP, as in their models) at two widths (d 64 and 128),
// each trained at three compute budgets a factor 3 apart (one decade in all), two seeds each.
// The dense runs' lower envelope over compute is the dense frontier; each MoE point's multiplier is
// the compute that frontier needs for the MoE's loss over the MoE's compute (study/compare.ts).
// Verdict: the MoE family's geometric-mean multiplier, computed on each seed's runs alone, is > 1 on
// every seed (holds), < 1 on every seed (does not hold), else inconclusive; the paired losses at equal
// budget and width are shown beside it. The abnar law is fitted to all points (S = 0 and 0.75).
import { sig, table } from '../fit/markdown.js';
import { isDenseFamily } from '../family.js';
import type { StudyDefinition } from './design.js';
import { studyBase } from './design.js';
import { contrastAtBudgets, contrastTable, multiplierBySeed, multiplierOutcome, CONTRAST_RULE } from './verdict.js';

export const moeVsDense: StudyDefinition = {
  name: 'moe-vs-dense',
  title: 'MoE vs dense: compute multiplier (Artetxe et al. 2021)',
  paper: 'Artetxe et al. 2021, Efficient Large Scale Language Modeling with Mixtures of Experts (arXiv 2112.10684)',
  design: [
    'Dense and MoE families (MoE: 8 experts, top-2, an MoE layer every other layer, experts as wide as the dense MLP) at widths d 64 and 128,',
    'each trained at 3 compute budgets a factor 3 apart, 2 seeds each (24 runs). The dense runs\' lower envelope over compute is the dense frontier;',
    'each MoE point\'s compute multiplier is the dense compute for its loss (log-log interpolation) over its own compute.',
    'Verdict: the MoE geometric-mean multiplier computed on each seed\'s runs alone is > 1 on every seed.',
  ].join(' '),
  sweep: {
    description: 'moe-vs-dense study: dense vs MoE (E 8, top-2) across compute budgets (Artetxe et al. 2021)',
    base: { inline: studyBase() },
    axes: {
      'model.d': [64, 128],
      'model.ffn': [{ type: 'dense' }, { type: 'moe', experts: 8, topk: 2, every: 2 }],
    },
  },
  budgetFactors: [1, 3, 9],
  seeds: [0, 1],
  law: 'abnar',
  verdict(results) {
    const moe = [...new Set(results.map((r) => r.family))].filter((f) => !isDenseFamily(f));
    const family = moe[0] ?? 'moe';
    const bySeed = multiplierBySeed(results, family);
    const outcome = multiplierOutcome(bySeed);
    const vals = bySeed.map((m) => m.multiplier).filter((v): v is number => v !== null);
    const summary = vals.length
      ? `${family}'s compute multiplier over dense, per seed: ${bySeed.map((m) => `seed ${m.seed} ${m.multiplier === null ? 'n/a' : `${m.multiplier.toFixed(2)}x`}`).join(', ')}` +
        ` (range ${Math.min(...vals).toFixed(2)}x to ${Math.max(...vals).toFixed(2)}x; the paper reports about 4x at its scale).`
      : `no multiplier could be computed for ${family} (see the comparison below).`;
    const widths = [...new Set(results.map((r) => r.axes['model.d']))].filter((d) => typeof d === 'number') as number[];
    const details = [
      table(['seed', 'geometric mean multiplier', 'MoE points', 'from'], bySeed.map((m) => [String(m.seed), m.multiplier === null ? 'n/a' : `${m.multiplier.toFixed(2)}x`,
        String(m.points), m.interpolatedOnly ? 'interpolated points' : 'extrapolated points (no MoE loss inside the dense range)'])),
      '',
      'Rule: "holds" when the multiplier is > 1 on every seed, "does not hold" when < 1 on every seed, else "inconclusive".',
      '',
      ...widths.sort((a, b) => a - b).flatMap((d) => [
        `Paired at equal budget, width d ${d} (A = ${family}, B = dense):`, '',
        contrastTable(contrastAtBudgets(results, (r) => r.family === family && r.axes['model.d'] === d, (r) => isDenseFamily(r.family) && r.axes['model.d'] === d), family, 'dense'),
        '',
      ]),
      CONTRAST_RULE.replace('Rule:', 'For these tables:'),
      '',
      `Budgets: ${[...new Set(results.map((r) => r.budget).filter((b) => b !== null))].map((b) => sig(b!)).join(', ')} FLOPs.`,
    ].join('\n');
    return { claim: 'MoE reaches dense loss with less compute (compute multiplier > 1)', outcome, summary, details };
  },
};
