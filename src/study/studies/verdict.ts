// Whether a paper's qualitative finding holds in a study's runs, decided from the numbers by one
// stated rule, with the seeds' spread as the uncertainty.
//
// Contrasts at equal compute: for each budget, the runs of family A (expected better) and B; the
// difference of mean losses diff = mean(B) - mean(A) (> 0: A is better) and its standard error
// se = sqrt(sd_A^2 / n_A + sd_B^2 / n_B) from the seeds; z = diff / se.
//   holds            every budget has z > 2 (A better by more than two standard errors everywhere)
//   does not hold    every budget has diff < 0 and some has z < -2 (the opposite is seen)
//   inconclusive     anything else, including fewer than 2 seeds on either side (no spread)
// With 2 seeds a standard error is itself very rough; the tables give the raw numbers.
import type { SweepResult } from '../results.js';
import { compareResults } from '../compare.js';
import { sig, table } from '../fit/markdown.js';

export type Outcome = 'holds' | 'does not hold' | 'inconclusive';

export interface Stat { mean: number; sd: number | null; n: number }

export interface Verdict {
  /** The paper's finding, as the question the study asks. */
  claim: string;
  outcome: Outcome;
  /** One sentence with the deciding numbers. */
  summary: string;
  /** Markdown: the tables behind the outcome and the rule used. */
  details: string;
}

export function stat(xs: readonly number[]): Stat {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  return { mean, sd: n > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1)) : null, n };
}

export interface Contrast { budget: number; a: Stat; b: Stat; diff: number; se: number | null; z: number | null }

/** A vs B at each budget both have runs at (runs matched by the point's budget). */
export function contrastAtBudgets(results: readonly SweepResult[], isA: (r: SweepResult) => boolean, isB: (r: SweepResult) => boolean): Contrast[] {
  const budgets = [...new Set(results.filter((r) => r.budget !== null).map((r) => r.budget!))].sort((x, y) => x - y);
  const out: Contrast[] = [];
  for (const budget of budgets) {
    const la = results.filter((r) => r.budget === budget && isA(r)).map((r) => r.valLoss);
    const lb = results.filter((r) => r.budget === budget && isB(r)).map((r) => r.valLoss);
    if (!la.length || !lb.length) continue;
    const a = stat(la), b = stat(lb), diff = b.mean - a.mean;
    const se = a.sd !== null && b.sd !== null ? Math.sqrt(a.sd ** 2 / a.n + b.sd ** 2 / b.n) : null;
    out.push({ budget, a, b, diff, se, z: se === null ? null : se > 0 ? diff / se : diff === 0 ? 0 : Math.sign(diff) * Infinity });
  }
  return out;
}

export function contrastOutcome(cs: readonly Contrast[]): Outcome {
  if (!cs.length || cs.some((c) => c.z === null)) return 'inconclusive';
  if (cs.every((c) => c.z! > 2)) return 'holds';
  if (cs.every((c) => c.diff < 0) && cs.some((c) => c.z! < -2)) return 'does not hold';
  return 'inconclusive';
}

const pm = (s: Stat) => `${s.mean.toFixed(4)}${s.sd !== null ? ` ± ${s.sd.toFixed(4)}` : ''} (${s.n})`;

export function contrastTable(cs: readonly Contrast[], nameA: string, nameB: string): string {
  return table(['budget (FLOPs)', `${nameA} loss (seeds)`, `${nameB} loss (seeds)`, `${nameB} - ${nameA}`, 'std. error', 'z'],
    cs.map((c) => [sig(c.budget), pm(c.a), pm(c.b), c.diff.toFixed(4), c.se === null ? 'n/a' : c.se.toFixed(4), c.z === null ? 'n/a' : c.z.toFixed(2)]));
}

export const CONTRAST_RULE = 'Rule: at each budget, z = (mean loss B - mean loss A) / sqrt(sd_A^2/n_A + sd_B^2/n_B) over seeds; ' +
  '"holds" when z > 2 at every budget, "does not hold" when B is better at every budget and z < -2 at one, else "inconclusive". ' +
  'With 2 seeds the standard error is rough: read the table too.';

export interface SeedMultiplier { seed: number; multiplier: number | null; points: number; interpolatedOnly: boolean }

/**
 * The family's geometric-mean compute multiplier computed on each seed's runs alone (its own dense
 * frontier): the seeds' spread is the uncertainty of the multiplier. Interpolated multipliers when
 * there are any, else the extrapolated ones.
 */
export function multiplierBySeed(results: readonly SweepResult[], family: string): SeedMultiplier[] {
  const seeds = [...new Set(results.map((r) => r.seed))].sort((a, b) => a - b);
  return seeds.map((seed) => {
    const c = compareResults(results.filter((r) => r.seed === seed));
    const s = c.summary.find((x) => x.family === family);
    const points = c.multipliers.filter((m) => m.family === family && m.multiplier !== null).length;
    const interpolatedOnly = s?.interpolatedGeomean != null;
    return { seed, multiplier: s ? s.interpolatedGeomean ?? s.geomeanMultiplier : null, points, interpolatedOnly };
  });
}

export function multiplierOutcome(ms: readonly SeedMultiplier[]): Outcome {
  const vs = ms.map((m) => m.multiplier);
  if (vs.length < 2 || vs.some((v) => v === null)) return 'inconclusive';
  if (vs.every((v) => v! > 1)) return 'holds';
  if (vs.every((v) => v! < 1)) return 'does not hold';
  return 'inconclusive';
}

/** The verdict as a report section. */
export function verdictMarkdown(v: Verdict, heading = 'Verdict'): string {
  return [`## ${heading}: ${v.claim}`, '', `**${v.outcome.toUpperCase()} at this scale.** ${v.summary}`, '', v.details, ''].join('\n');
}
