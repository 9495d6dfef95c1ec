// What the charts draw, cut from a RunData: loss curves (downsampled to at most `points` per
// series within an optional x range) and the feed-forward statistics of the eval lines.
import { lttbIndices, rangeIndices } from './downsample.js';
import type { EvalPoint, RunData, TrainPoint } from './run_data.js';

export type XAxis = 'step' | 'tokens' | 'flops';
export const X_AXES: readonly XAxis[] = ['step', 'tokens', 'flops'];

export interface SeriesQuery { x: XAxis; from: number | null; to: number | null; points: number }

export interface RunSeries {
  id: string;
  tokensPerStep: number | null;
  flopsPerToken: number | null;
  /** [step, loss] pairs, steps ascending. */
  train: [number, number][];
  val: [number, number][];
  /** Points in the range before downsampling (train, val). */
  total: [number, number];
}

/** Steps per unit of x for this run (null: the run cannot be placed on that axis). */
function stepScale(run: RunData, x: XAxis): number | null {
  if (x === 'step') return 1;
  const tps = run.tokensPerStep();
  if (tps === null) return null;
  if (x === 'tokens') return tps;
  const fpt = run.flopsPerToken();
  return fpt === null ? null : tps * fpt;
}

function cut(pts: { step: number; y: number }[], q: SeriesQuery, scale: number): { out: [number, number][]; total: number } {
  const steps = pts.map((p) => p.step);
  const [lo, hi] = rangeIndices(steps, q.from === null ? null : q.from / scale, q.to === null ? null : q.to / scale);
  const xs = steps.slice(lo, hi), ys = pts.slice(lo, hi).map((p) => p.y);
  return { out: lttbIndices(xs, ys, q.points).map((i) => [xs[i], ys[i]]), total: xs.length };
}

const finite = <T extends TrainPoint | EvalPoint>(arr: T[], y: (p: T) => number | null) =>
  arr.flatMap((p) => { const v = y(p); return v === null ? [] : [{ step: p.step, y: v }]; });

export function runSeries(run: RunData, q: SeriesQuery): RunSeries {
  const scale = stepScale(run, q.x);
  const base = { id: run.id, tokensPerStep: run.tokensPerStep(), flopsPerToken: run.flopsPerToken() };
  if (scale === null) return { ...base, train: [], val: [], total: [0, 0] };
  const t = cut(finite(run.train, (p) => p.loss), q, scale);
  const v = cut(finite(run.evals, (p) => p.valLoss), q, scale);
  return { ...base, train: t.out, val: v.out, total: [t.total, v.total] };
}

export interface RoutingData {
  kind: string;
  /** Per-layer scalar statistics over eval steps: { key: [{step, layer, value}] } (dropRate, routerEntropy, balanceLoss, peerUsedFraction, ...). */
  scalars: Record<string, { step: number; layer: string; value: number }[]>;
  /** Per-expert load heatmap cells: fraction of routed slots per expert at each eval step. */
  load: { step: number; layer: string; expert: number; value: number }[];
  /** Evals shown (at most maxEvals, evenly spread, always the last) of all evals with statistics. */
  evals: number;
  totalEvals: number;
}

/** Evenly spread indices of `n` items, at most `max`, always with the last one. */
function spread(n: number, max: number): number[] {
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  return Array.from({ length: max }, (_, i) => Math.round((i * (n - 1)) / (max - 1)));
}

/**
 * Routing statistics from the eval lines' `ffn` field. Numeric fields become per-layer series; an
 * array field `load` becomes the heatmap and derives `deadExperts` (experts with no routed slot)
 * and `loadCV` (coefficient of variation of the load: 0 when perfectly even).
 */
export function routingData(run: RunData, maxEvals = 120): RoutingData {
  const withFfn = run.evals.filter((e) => e.ffn && Object.keys(e.ffn).length);
  const scalars: RoutingData['scalars'] = {};
  const load: RoutingData['load'] = [];
  const add = (key: string, step: number, layer: string, value: number) => (scalars[key] ??= []).push({ step, layer, value });
  for (const i of spread(withFfn.length, maxEvals)) {
    const e = withFfn[i];
    for (const [layer, stats] of Object.entries(e.ffn!)) {
      if (!stats || typeof stats !== 'object') continue;
      for (const [key, v] of Object.entries(stats)) {
        if (typeof v === 'number' && Number.isFinite(v)) add(key, e.step, layer, v);
        else if (key === 'load' && Array.isArray(v) && v.every((x) => typeof x === 'number')) {
          const l = v as number[];
          l.forEach((value, expert) => load.push({ step: e.step, layer, expert, value }));
          const mean = l.reduce((a, b) => a + b, 0) / (l.length || 1);
          const sd = Math.sqrt(l.reduce((a, b) => a + (b - mean) ** 2, 0) / (l.length || 1));
          add('deadExperts', e.step, layer, l.filter((x) => x === 0).length);
          add('loadCV', e.step, layer, mean > 0 ? sd / mean : 0);
        }
      }
    }
  }
  return { kind: run.kind(), scalars, load, evals: Math.min(withFfn.length, maxEvals), totalEvals: withFfn.length };
}
