// Fake run folders for the dashboard tests: config.json, state.json and metrics.jsonl in the
// shapes the trainer writes (src/train/metrics_log.ts), with a deterministic loss curve.
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface FakeRun {
  kind?: 'dense' | 'moe' | 'peer';
  /** Train lines written now (steps 1..done). */
  done: number;
  /** config train.steps. */
  steps: number;
  evalEvery?: number;
  experts?: number;
  /** MoE layers reported in the eval lines' ffn stats. */
  moeLayers?: number;
  name?: string;
  /** A run before its first checkpoint: metrics.jsonl only (no config.json, no state.json). */
  noCheckpoint?: boolean;
}

export const BATCH = 4, SEQ = 16, FLOPS_PER_TOKEN = 1000;

export const lossAt = (step: number) => 5 * Math.exp(-step / 400) + 0.05 * Math.sin(step);

export function trainLine(step: number): string {
  return JSON.stringify({ type: 'train', step, tokens: step * BATCH * SEQ, loss: lossAt(step), aux: 0.01, lr: 1e-3, grad_norm: 1, tokens_per_s: 1000 + step, time_s: step / 10 }) + '\n';
}

export function evalLine(step: number, o: Pick<FakeRun, 'kind' | 'experts' | 'moeLayers'>): string {
  let ffn: Record<string, unknown> | null = null;
  if (o.kind === 'moe') {
    const E = o.experts ?? 4;
    ffn = {};
    for (let l = 0; l < (o.moeLayers ?? 1); l++) {
      // expert 0 dies after step 20: a dead expert to report
      const raw = Array.from({ length: E }, (_, e) => (e === 0 && step > 20 ? 0 : 1 + ((e + l + step) % 3)));
      const sum = raw.reduce((a, b) => a + b, 0);
      ffn[`layer${2 * l + 1}`] = { load: raw.map((x) => x / sum), dropRate: 0.01 * l, balanceLoss: 1.05, zLoss: 1.8, routerEntropy: 1.2 };
    }
  } else if (o.kind === 'peer') {
    ffn = { layer0: { peerUniqueExperts: 100 + step, peerUsedFraction: Math.min(1, (100 + step) / 1024) } };
  }
  return JSON.stringify({ type: 'eval', step, val_loss: lossAt(step) + 0.1, ffn }) + '\n';
}

/** Writes a run folder under root/id and returns its path. */
export function writeFakeRun(root: string, id: string, o: FakeRun): string {
  const dir = join(root, ...id.split('/'));
  mkdirSync(dir, { recursive: true });
  const kind = o.kind ?? 'dense';
  const ffn = kind === 'moe' ? { type: 'moe', experts: o.experts ?? 4, topk: 2 } : kind === 'peer' ? { type: 'peer', nSub: 32 } : { type: 'dense' };
  if (!o.noCheckpoint) writeFileSync(join(dir, 'config.json'), JSON.stringify({
    name: o.name ?? id.split('/').pop(), model: { vocab: 'bytes', d: 16, layers: 2, heads: 2, seq: SEQ, ffn },
    train: { batch: BATCH, steps: o.steps, accum: 1, evalEvery: o.evalEvery ?? 0, logEvery: 1 }, data: { paths: [], valFraction: 0.1 }, derived: [],
  }));
  if (!o.noCheckpoint) writeFileSync(join(dir, 'state.json'), JSON.stringify({ format: 'moelab-checkpoint', version: 1, state: { step: o.done } }));
  const layers = kind === 'moe' ? ['dense', 'moe'] : [kind, kind];
  let text = JSON.stringify({ type: 'start', step: 0, resumed: false, name: o.name ?? id.split('/').pop(), end: o.steps, ffn: layers, provenance: { moelab: '0.1.0', startedAt: '2026-01-01T00:00:00Z' }, params_total: kind === 'dense' ? 10_000 : 40_000, params_active: 10_000, flops_per_token: FLOPS_PER_TOKEN }) + '\n';
  for (let s = 1; s <= o.done; s++) {
    text += trainLine(s);
    if (o.evalEvery && s % o.evalEvery === 0) text += evalLine(s, o);
  }
  if (o.done >= o.steps) text += JSON.stringify({ type: 'checkpoint', step: o.done, reason: 'end' }) + '\n';
  writeFileSync(join(dir, 'metrics.jsonl'), text);
  return dir;
}

/** Appends train (and eval) lines for steps from..to to a fake run. */
export function appendSteps(dir: string, from: number, to: number, o: Pick<FakeRun, 'kind' | 'experts' | 'moeLayers' | 'evalEvery'> = {}): void {
  let text = '';
  for (let s = from; s <= to; s++) {
    text += trainLine(s);
    if (o.evalEvery && s % o.evalEvery === 0) text += evalLine(s, o);
  }
  appendFileSync(join(dir, 'metrics.jsonl'), text);
}
