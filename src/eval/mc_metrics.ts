/**
 * Multiple-choice metrics, lm-evaluation-harness conventions (first index wins a tie, as argmax):
 *   acc        argmax_i ll_i == gold                    (ll_i = summed log-likelihood of choice i)
 *   acc_norm   argmax_i ll_i / chars(choice_i) == gold  (Unicode code points of the choice text,
 *                                                        without the target delimiter, as len() in Python)
 *   acc_bytes  argmax_i ll_i / bytes(choice_i) == gold  (UTF-8 bytes of the same text)
 *   gold_ll    ll_gold                                  (mean log-likelihood of the gold answer, nats)
 * Over items: mean and standard error (sample std / sqrt(n)). Over trials (resampled shot sets):
 * mean, sample std, a 95% interval for the mean, mean +- 1.96 std / sqrt(T) (normal approximation),
 * and the items' standard error averaged over trials.
 */
export const METRICS = ['acc', 'acc_norm', 'acc_bytes', 'gold_ll'] as const;
export type MetricName = (typeof METRICS)[number];

export const chars = (s: string): number => [...s].length;
export const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

function argmax(xs: number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

export interface ItemPredictions {
  acc: number;
  acc_norm: number;
  acc_bytes: number;
}

/** The predicted choice under each rule. */
export function predict(lls: number[], choices: string[]): ItemPredictions {
  return {
    acc: argmax(lls),
    acc_norm: argmax(lls.map((l, i) => l / chars(choices[i]))),
    acc_bytes: argmax(lls.map((l, i) => l / utf8Bytes(choices[i]))),
  };
}

/** Per-item metric values (1/0 for the accuracies, nats for gold_ll). */
export function itemMetrics(lls: number[], choices: string[], gold: number): Record<MetricName, number> {
  const p = predict(lls, choices);
  return { acc: +(p.acc === gold), acc_norm: +(p.acc_norm === gold), acc_bytes: +(p.acc_bytes === gold), gold_ll: lls[gold] };
}

export function mean(xs: number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Sample standard deviation (n - 1); 0 for fewer than two values. */
export function sampleStd(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) ** 2;
  return Math.sqrt(s / (xs.length - 1));
}

export interface MetricSummary {
  /** Mean over trials of the mean over items. */
  mean: number;
  /** Sample std over trials (0 with one trial). */
  std: number;
  /** 95% interval for the mean over trials: mean +- 1.96 std / sqrt(T). */
  ci95: [number, number];
  /** Standard error over items (sample std / sqrt(n)), averaged over trials. */
  stderr: number;
}

/** perTrial[t] = the per-item values of trial t. */
export function summarize(perTrial: number[][]): MetricSummary {
  const means = perTrial.map(mean);
  const m = mean(means), sd = sampleStd(means), half = (1.96 * sd) / Math.sqrt(means.length);
  return { mean: m, std: sd, ci95: [m - half, m + half], stderr: mean(perTrial.map((v) => sampleStd(v) / Math.sqrt(v.length))) };
}
