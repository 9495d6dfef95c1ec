// Sizing a study to a time budget: pure arithmetic from measured step times.
//
// A study trains R run templates (one per model config and seed) at each of J compute budgets
// C_j = s * f_j (f_j the study's budget factors, s the scale to find). Template i does F_i FLOPs per
// optimizer step (FLOPs/token x tokens/step) and takes t_i seconds per step on this machine, plus
// o_i seconds of fixed cost per run (building the model, the final evaluation, the checkpoint).
// Point (i, j) trains round(C_j / F_i) steps (the sweep's isoFLOP rule, study/expand.ts), so it takes
//   time_ij = (s f_j / F_i) t_i + o_i
// and the whole study sum_ij time_ij = s (sum_j f_j) (sum_i t_i / F_i) + J sum_i o_i. Setting that
// equal to the seconds available gives s. Budgets are rounded to 3 significant digits (readable
// names); every point must get at least minSteps steps, else the budget is refused with the one
// that would do.

export interface RunTemplate {
  /** Names the template (e.g. the config's family and size, and its seed). */
  key: string;
  /** Training FLOPs of one optimizer step: FLOPs/token x batch x seq x accum. */
  flopsPerStep: number;
  /** Measured seconds per optimizer step. */
  secPerStep: number;
  /** Fixed seconds per run besides its steps. */
  overheadSec: number;
}

export interface SizingInput {
  templates: readonly RunTemplate[];
  /** Relative compute budgets (e.g. [1, 3, 9]): the budgets are scale x these. */
  budgetFactors: readonly number[];
  /** Seconds available for training (the study's budget less calibration and the report's share). */
  seconds: number;
  /** Fewest steps any point may train (default 20). */
  minSteps?: number;
}

export interface SizedPoint {
  key: string;
  budget: number;
  steps: number;
  seconds: number;
}

export interface SizedStudy {
  scale: number;
  /** Compute budgets in FLOPs, one per factor. */
  budgets: number[];
  points: SizedPoint[];
  /** Predicted training seconds of all points (<= the seconds given, up to rounding). */
  predictedSeconds: number;
}

export class StudyBudgetError extends Error {
  constructor(message: string, readonly neededSeconds: number) {
    super(message);
    this.name = 'StudyBudgetError';
  }
}

/** x rounded to `digits` significant digits. */
export function roundSig(x: number, digits = 3): number {
  return Number(x.toPrecision(digits));
}

function check(input: SizingInput): void {
  const bad = (why: string) => { throw new RangeError(`sizeStudy: ${why}`); };
  if (!input.templates.length) bad('no run templates');
  if (!input.budgetFactors.length || !input.budgetFactors.every((f) => f > 0 && Number.isFinite(f))) bad(`budget factors must be positive numbers, got ${JSON.stringify(input.budgetFactors)}`);
  for (const t of input.templates) {
    if (!(t.flopsPerStep > 0 && t.secPerStep > 0 && t.overheadSec >= 0) || ![t.flopsPerStep, t.secPerStep, t.overheadSec].every(Number.isFinite)) {
      bad(`template ${t.key}: flopsPerStep and secPerStep must be positive, overheadSec non-negative (got ${t.flopsPerStep}, ${t.secPerStep}, ${t.overheadSec})`);
    }
  }
}

/** The budgets and steps that fill `seconds` (see the file comment); a StudyBudgetError when too few. */
export function sizeStudy(input: SizingInput): SizedStudy {
  check(input);
  const minSteps = input.minSteps ?? 20;
  const { templates: T, budgetFactors: f } = input;
  const sumF = f.reduce((a, b) => a + b, 0);
  const secPerFlop = T.reduce((a, t) => a + t.secPerStep / t.flopsPerStep, 0);
  const overhead = f.length * T.reduce((a, t) => a + t.overheadSec, 0);
  // the scale at which the smallest budget gives every template minSteps steps
  const fMin = Math.min(...f);
  const sMin = Math.max(...T.map((t) => (minSteps * t.flopsPerStep) / fMin));
  const needed = sMin * sumF * secPerFlop + overhead;
  const s = (input.seconds - overhead) / (sumF * secPerFlop);
  if (!(s >= sMin)) {
    throw new StudyBudgetError(`${input.seconds.toFixed(0)} s of training time is too little: ${T.length} runs at each of ${f.length} budgets need about ${Math.ceil(needed)} s ` +
      `so that every run trains at least ${minSteps} steps (${overhead.toFixed(0)} s of it fixed cost per run)`, needed);
  }
  const budgets = f.map((fj) => roundSig(s * fj));
  const points: SizedPoint[] = [];
  for (const budget of budgets) {
    for (const t of T) {
      const steps = Math.round(budget / t.flopsPerStep);
      points.push({ key: t.key, budget, steps, seconds: steps * t.secPerStep + t.overheadSec });
    }
  }
  return { scale: s, budgets, points, predictedSeconds: points.reduce((a, p) => a + p.seconds, 0) };
}

/** Seconds from '1h', '90m', '1h30m', '45s', '2.5h' or a plain number of seconds. */
export function parseDuration(text: string): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  const re = /(\d+(?:\.\d+)?)\s*(h|m|s)/gy;
  let total = 0, m: RegExpExecArray | null, end = 0;
  while ((m = re.exec(t)) !== null) {
    total += Number(m[1]) * (m[2] === 'h' ? 3600 : m[2] === 'm' ? 60 : 1);
    end = re.lastIndex;
  }
  if (end !== t.length || end === 0 || !(total > 0)) throw new Error(`cannot read the duration '${text}': write e.g. 1h, 90m, 1h30m, 45s or a number of seconds`);
  return total;
}
