/**
 * Vega-lite specs for the study plots: pure functions of the data (rows inlined as values), so a
 * spec can be rendered here (render.ts), written next to the images, or opened in the vega editor.
 */
import type { TopLevelSpec } from 'vega-lite';

/** Shared look: fixed size and font so renders are reproducible; DejaVu Sans ships with most Linux systems. */
const CONFIG = { font: 'DejaVu Sans', background: 'white', view: { stroke: null } } as const;
const SIZE = { width: 520, height: 340 };

const logX = (field: string, title: string) => ({ field, type: 'quantitative' as const, title, scale: { type: 'log' as const } });
// Loss varies over a small range: a log axis 'niced' to whole decades would flatten it.
const logY = (field: string, title: string) => ({ field, type: 'quantitative' as const, title, scale: { type: 'log' as const, nice: false } });

export interface ComputeLossRow {
  family: string;
  compute: number;
  loss: number;
  /** Total parameters: when given, one line per model (family and size) instead of per family, as in an isoFLOP sweep. */
  params?: number;
}

/** 124.7k, 1.37M: short parameter counts for legends. */
export function paramsLabel(n: number): string {
  if (n >= 1e9) return `${Number((n / 1e9).toPrecision(3))}B`;
  if (n >= 1e6) return `${Number((n / 1e6).toPrecision(3))}M`;
  if (n >= 1e3) return `${Number((n / 1e3).toPrecision(3))}k`;
  return String(n);
}

/** One line per model: rows of a family with the same total parameters, or the whole family without params. */
function modelFields<T extends { family: string; params?: number }>(r: T): T & { model: string; size: string } {
  const size = r.params === undefined ? 'n/a' : paramsLabel(r.params);
  return { ...r, model: r.params === undefined ? r.family : `${r.family} ${size}`, size };
}

/** A line per model and its points, shaped by total parameters when rows carry them (encodings from the parent layer). */
function modelMarks(rows: readonly { params?: number }[]): object[] {
  const sized = rows.some((r) => r.params !== undefined);
  return [
    { mark: { type: 'line' } },
    { mark: { type: 'point', filled: true, size: 50 }, ...(sized ? { encoding: { shape: { field: 'size', type: 'nominal', title: 'total parameters' } } } : {}) },
  ];
}

/**
 * Loss against training compute, log-log: one colour per model family, one line per model (shape
 * = its total parameters) when rows carry params, and the dense frontier (the lower envelope the
 * compute multipliers are read from) dashed when given.
 */
export function lossVsComputeSpec(rows: readonly ComputeLossRow[], title = 'Loss vs training compute', frontier: readonly { compute: number; loss: number }[] = []): TopLevelSpec {
  const x = logX('compute', 'training compute (FLOPs)'), y = logY('loss', 'validation loss');
  const color = { field: 'family', type: 'nominal', title: 'family' };
  const layers: object[] = [{ data: { values: rows.map(modelFields) }, encoding: { x, y, color, detail: { field: 'model', type: 'nominal' } }, layer: modelMarks(rows) }];
  if (frontier.length) {
    layers.push({
      data: { values: frontier.map((p) => ({ ...p, frontier: 'dense frontier' })) },
      mark: { type: 'line', strokeDash: [6, 4], color: 'gray', strokeWidth: 1 },
      encoding: { x, y, strokeDash: { field: 'frontier', type: 'nominal', title: '', scale: { range: [[6, 4]] } } },
    });
  }
  return { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title, ...SIZE, config: CONFIG, layer: layers } as TopLevelSpec;
}

export interface IsoFlopRow {
  budget: number;
  params: number;
  loss: number;
  /** When the sweep mixes sparsities: one curve per budget and sparsity (dashes tell sparsities apart). */
  sparsity?: number;
}

/**
 * IsoFLOP curves: loss against total parameters, one colour per compute budget (one curve per budget
 * and sparsity when rows carry sparsity), the fitted law's minima as diamonds. The title says
 * whether any minimum is drawn.
 */
export function isoFlopSpec(rows: readonly IsoFlopRow[], minima: readonly IsoFlopRow[], title = 'IsoFLOP curves'): TopLevelSpec {
  const label = (b: number) => `${b.toExponential(1)} FLOPs`;
  const sLabel = (r: IsoFlopRow) => (r.sparsity === undefined ? 'n/a' : `S = ${Number(r.sparsity.toFixed(3))}`);
  const split = rows.some((r) => r.sparsity !== undefined);
  const x = logX('params', 'total parameters'), y = logY('loss', 'validation loss (mean over seeds)');
  // legend in budget order (labels sort as text otherwise: 1.0e+13 before 3.4e+12)
  const order = [...new Set([...rows, ...minima].map((r) => r.budget))].sort((a, b) => a - b).map(label);
  const color = { field: 'budgetLabel', type: 'nominal', title: 'budget', sort: [...new Set(order)] };
  const withLabels = (r: IsoFlopRow) => ({ ...r, budgetLabel: label(r.budget), sparsityLabel: sLabel(r), curve: `${label(r.budget)} ${sLabel(r)}` });
  const layers: object[] = [{
    data: { values: rows.map(withLabels) },
    encoding: { x, y, color, detail: { field: 'curve', type: 'nominal' } },
    layer: [
      { mark: { type: 'line' }, ...(split ? { encoding: { strokeDash: { field: 'sparsityLabel', type: 'nominal', title: 'sparsity' } } } : {}) },
      { mark: { type: 'point', filled: true, size: 40 } },
    ],
  }];
  if (minima.length) {
    layers.push({
      data: { values: minima.map(withLabels) },
      mark: { type: 'point', shape: 'diamond', filled: true, size: 160, stroke: 'black' },
      encoding: { x, y, color },
    });
  }
  const note = minima.length ? `${title} (diamonds: the fit's minima)` : `${title} (the fit has no minimum inside these curves)`;
  return { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title: note, ...SIZE, config: CONFIG, layer: layers } as TopLevelSpec;
}

export interface SeriesRow { series: string; x: number; loss: number }

/** Observed points and the fitted law's curves over the same x (log-log). */
export function lawVsPointsSpec(observed: readonly SeriesRow[], fitted: readonly SeriesRow[], xTitle: string, title = 'Fitted law vs points'): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title, ...SIZE, config: CONFIG,
    encoding: { x: logX('x', xTitle), y: logY('loss', 'validation loss'), color: { field: 'series', type: 'nominal', title: 'series' } },
    layer: [
      { data: { values: fitted.map((r) => ({ ...r, kind: 'fit' })) }, mark: { type: 'line', strokeWidth: 1.5 } },
      { data: { values: observed.map((r) => ({ ...r, kind: 'observed' })) }, mark: { type: 'point', filled: true, size: 50 } },
    ],
  } as TopLevelSpec;
}

export interface SparsityRow { compute: number; sparsity: number; series: string }

/** Optimal sparsity against compute (one line per series, e.g. per fixed total parameters). */
export function optimalSparsitySpec(rows: readonly SparsityRow[], title = 'Optimal sparsity vs compute'): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title, ...SIZE, config: CONFIG,
    data: { values: rows.map((r) => ({ ...r })) },
    encoding: {
      x: logX('compute', 'training compute (FLOPs)'),
      y: { field: 'sparsity', type: 'quantitative', title: 'optimal sparsity S*', scale: { domain: [0, 1] } },
      color: { field: 'series', type: 'nominal', title: 'series' },
    },
    layer: [{ mark: { type: 'line' } }, { mark: { type: 'point', filled: true, size: 40 } }],
  } as TopLevelSpec;
}

export interface MultiplierRow { family: string; compute: number; multiplier: number; /** Total parameters: one line per model when given. */ params?: number }

// Multipliers span less than a decade or two: a log axis labels only its decades and 2..9, which can
// leave nothing labelled above 1. These are labelled instead, within the data's range.
const MULTIPLIER_TICKS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 7, 10, 20, 50, 100];
function multiplierTicks(rows: readonly MultiplierRow[]): number[] {
  const ms = [1, ...rows.map((r) => r.multiplier)];
  const lo = Math.min(...ms), hi = Math.max(...ms);
  return MULTIPLIER_TICKS.filter((t) => t >= lo && t <= hi);
}

/** Compute multiplier (dense compute for the same loss / the run's compute) against budget, with a rule at 1. */
export function computeMultiplierSpec(rows: readonly MultiplierRow[], title = 'Compute multiplier vs budget'): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title, ...SIZE, config: CONFIG,
    layer: [
      {
        data: { values: rows.map(modelFields) },
        encoding: { x: logX('compute', 'training compute (FLOPs)'), y: { ...logY('multiplier', 'compute multiplier vs dense'), axis: { values: multiplierTicks(rows) } }, color: { field: 'family', type: 'nominal', title: 'family' }, detail: { field: 'model', type: 'nominal' } },
        layer: modelMarks(rows),
      },
      // Same field as the runs, so the shared y scale's domain includes 1.
      { data: { values: [{ multiplier: 1 }] }, mark: { type: 'rule', strokeDash: [4, 4], color: 'gray' }, encoding: { y: { field: 'multiplier', type: 'quantitative' } } },
    ],
  } as TopLevelSpec;
}

export interface ExpertLoadCell { layer: string; expert: number; utilisation: number }

/**
 * Expert utilisation per MoE layer as a heatmap: one cell per (layer, expert), colour = load / fair
 * share on a diverging scale centred at 1 (red toward 0 = dead, white = balanced, blue = overloaded).
 */
export function expertLoadHeatmapSpec(cells: readonly ExpertLoadCell[], title = 'Expert utilisation per MoE layer'): TopLevelSpec {
  const layers = [...new Set(cells.map((c) => c.layer))];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title, width: SIZE.width, height: { step: 28 }, config: CONFIG,
    data: { values: cells.map((c) => ({ ...c })) },
    mark: { type: 'rect', stroke: 'white', strokeWidth: 0.5 },
    encoding: {
      x: { field: 'expert', type: 'ordinal', title: 'expert', axis: { labelAngle: 0, labelOverlap: 'parity' } },
      y: { field: 'layer', type: 'ordinal', title: 'layer', sort: layers },
      color: {
        field: 'utilisation', type: 'quantitative', title: 'utilisation (0 = dead)',
        scale: { scheme: 'redblue', domainMin: 0, domainMid: 1 },
      },
      tooltip: [{ field: 'layer' }, { field: 'expert' }, { field: 'utilisation', format: '.3f' }],
    },
  } as TopLevelSpec;
}
