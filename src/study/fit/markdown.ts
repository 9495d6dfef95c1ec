// Markdown for a fit: parameters with intervals, fit quality, extrapolation, and the
// allocation / sparsity tables. Numbers in 4 significant digits.
import type { FitReport } from './report.js';
import type { Allocation, SparsityOptimum } from './optimal.js';

export function sig(v: number, digits = 4): string {
  if (!Number.isFinite(v)) return String(v);
  if (v !== 0 && (Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3)) return v.toExponential(digits - 1);
  return String(Number(v.toPrecision(digits)));
}

export function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export const POOR_RATIO = 10;
export const POOR_WIDTH = 1;

/**
 * Parameters the bootstrap leaves undetermined: a positive interval spanning more than a factor
 * POOR_RATIO, or one reaching 0 or below (exponents) wider than POOR_WIDTH. Empty without intervals.
 */
export function poorlyIdentified(r: Pick<FitReport, 'params'>): string[] {
  return r.params.filter((p) => Number.isFinite(p.lo) && Number.isFinite(p.hi) &&
    (p.lo > 0 ? p.hi / p.lo > POOR_RATIO : p.hi - p.lo > POOR_WIDTH)).map((p) => p.name);
}

export function fitMarkdown(r: FitReport): string {
  const out = [
    `## Fit: ${r.law}`,
    '',
    `\`${r.formula}\` (${r.citation}).`,
    `${r.points} points; Huber delta ${r.huberDelta} on log-loss residuals; L-BFGS ${r.fit.reason} after ${r.fit.iterations} iterations (best of ${r.fit.startsRun} starts), objective ${sig(r.fit.objective)}.`,
    '',
    table(['parameter', 'value', '95% interval'], r.params.map((p) => [p.name, sig(p.value), Number.isFinite(p.lo) ? `[${sig(p.lo)}, ${sig(p.hi)}]` : 'n/a'])),
    '',
    r.bootstrap.samples > 0
      ? `Intervals: ${r.bootstrap.samples} bootstrap resamples (seed ${r.bootstrap.seed}${r.bootstrap.failed ? `, ${r.bootstrap.failed} failed` : ''}).`
      : 'No bootstrap (intervals not computed).',
    `R^2 on loss: ${sig(r.r2, 5)}.`,
    '',
  ];
  const poor = poorlyIdentified(r);
  if (poor.length) {
    out.push(`Poorly identified by these points (95% interval wider than a factor ${POOR_RATIO}, or across 0 and wider than ${POOR_WIDTH}): ${poor.join(', ')}. ` +
      'Tables derived from this fit (optimal allocation or sparsity) are consequences of one of many fits that explain the points about equally well: ' +
      'read them as the law\'s extrapolation, not as measurements; more sizes, sparsities or budgets narrow them.', '');
  }
  const x = r.extrapolation;
  if ('skipped' in x) out.push(`Extrapolation check skipped: ${x.skipped}.`);
  else {
    out.push(`Extrapolation: fitted without the ${x.heldOut} point(s) at compute >= ${sig(x.minCompute)} FLOPs; mean |relative error| on them ${sig(100 * x.meanAbsRelError, 3)}%.`, '');
    out.push(table(['params', 'tokens', 'sparsity', 'compute', 'loss', 'predicted', 'rel. error'],
      x.points.map((p) => [sig(p.point.params), sig(p.point.tokens), sig(p.point.sparsity), sig(p.compute), sig(p.point.loss), sig(p.predicted), `${sig(100 * p.relError, 3)}%`])));
  }
  out.push('', '### Residuals', '', table(['params', 'tokens', 'sparsity', 'compute', 'loss', 'predicted', 'residual'],
    r.residuals.map((q) => [sig(q.point.params), sig(q.point.tokens), sig(q.point.sparsity), sig(q.compute), sig(q.point.loss), sig(q.predicted), sig(q.residual)])));
  return out.join('\n') + '\n';
}

export function allocationMarkdown(rows: readonly Allocation[]): string {
  return [
    '## Compute-optimal allocation (C = 6ND)', '',
    table(['compute (FLOPs)', 'N* (params)', 'D* (tokens)', 'tokens/param', 'predicted loss'],
      rows.map((a) => [sig(a.compute), sig(a.params), sig(a.tokens), sig(a.tokensPerParam), sig(a.loss)])),
  ].join('\n') + '\n';
}

export function sparsityMarkdown(byCompute: readonly SparsityOptimum[], byParams: readonly SparsityOptimum[], denseFraction: number): string {
  const flag = (o: SparsityOptimum) => (o.atBoundary ? ' (edge)' : '');
  return [
    `## Optimal sparsity (C = 6 N_active D, ${denseFraction ? `N_active = N (${denseFraction} + ${sig(1 - denseFraction)} (1 - S))` : 'N_active = (1 - S) N'})`, '',
    '### S*(C): sparsity and total parameters', '',
    table(['compute (FLOPs)', 'S*', 'N (total)', 'N active', 'D (tokens)', 'predicted loss'],
      byCompute.map((o) => [sig(o.compute), sig(o.sparsity) + flag(o), sig(o.params), sig(o.activeParams), sig(o.tokens), sig(o.loss)])),
    '', '### S*(N; C): best sparsity at fixed total parameters', '',
    table(['compute (FLOPs)', 'N (total)', 'S*', 'N active', 'D (tokens)', 'predicted loss'],
      byParams.map((o) => [sig(o.compute), sig(o.params), sig(o.sparsity) + flag(o), sig(o.activeParams), sig(o.tokens), sig(o.loss)])),
    '', '"(edge)": the optimum lies at the largest sparsity searched (0.999) or at the edge of the parameter range, so the law\'s optimum may be outside it. S* = 0 means dense is best.',
  ].join('\n') + '\n';
}
