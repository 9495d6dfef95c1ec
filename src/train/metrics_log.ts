/**
 * metrics.jsonl: one JSON object per line, appended as training goes, as a TrainListener.
 *
 *   {"type":"start", "step", "resumed", "name", "end", "ffn", "provenance", "params_total", "params_active", "flops_per_token"}
 *   {"type":"train", "step", "tokens", "loss", "aux", "lr", "grad_norm", "tokens_per_s", "time_s"}  every logEvery steps and at the end
 *
 * `end` is the step the run trains to, `ffn` the feed-forward kind of each layer and `tokens` the
 * tokens trained on so far: what a reader (the dashboard) needs before the first checkpoint writes
 * config.json.
 *   {"type":"eval", "step", "val_loss", "ffn": {"layer<i>": {...}} | null}
 *   {"type":"checkpoint", "step", "reason"}
 *   {"type":"diverged", "step", "message", "checkpoint_step"}
 *
 * `step` is the number of completed steps. When a run resumes from the checkpoint of step s, lines a
 * crashed process wrote after s are dropped first (they describe steps that will be trained again),
 * so every step appears once and the file reads as one uninterrupted run. A fresh (not resumed) run
 * starts the file over.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import type { TrainListener } from './events.js';

export const METRICS_FILE = 'metrics.jsonl';

/** Lines of `text` whose step is at most `step` (lines that do not parse are dropped too). */
export function metricsUpTo(text: string, step: number): string {
  const keep: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const o = JSON.parse(line) as { step?: number };
      if (typeof o.step === 'number' && o.step <= step) keep.push(line);
    } catch {
      /* a line cut short by a crash */
    }
  }
  return keep.length ? keep.join('\n') + '\n' : '';
}

export function metricsFileListener(dir: string, logEvery: number): TrainListener {
  const path = join(dir, METRICS_FILE);
  const write = (o: Record<string, unknown>) => appendFileSync(path, JSON.stringify(o) + '\n');
  return (e) => {
    switch (e.type) {
      case 'start':
        mkdirSync(dir, { recursive: true });
        // a resumed run drops what a killed process logged past its checkpoint; a fresh start in a
        // folder whose first attempt died before any checkpoint starts the file over
        if (existsSync(path)) writeFileAtomic(path, e.resumed ? metricsUpTo(readFileSync(path, 'utf8'), e.step) : '');
        write({
          type: 'start', step: e.step, resumed: e.resumed, name: e.name, end: e.end, ffn: e.counts.perLayer.map((l) => l.kind), provenance: e.provenance,
          params_total: e.counts.paramsTotal, params_active: e.counts.paramsActive, flops_per_token: e.counts.flopsPerToken,
        });
        return;
      case 'step':
        if (e.step % logEvery === 0 || e.step === e.end) {
          write({
            type: 'train', step: e.step, tokens: e.tokensSeen, loss: e.loss, aux: e.aux, lr: e.lr, grad_norm: e.gradNorm,
            tokens_per_s: Math.round(e.tokensPerSecond), time_s: Math.round(e.elapsed * 1000) / 1000,
          });
        }
        return;
      case 'eval':
        write({ type: 'eval', step: e.step, val_loss: e.valLoss, ffn: e.ffn });
        return;
      case 'checkpoint':
        write({ type: 'checkpoint', step: e.step, reason: e.reason });
        return;
      case 'diverged':
        write({ type: 'diverged', step: e.step, message: e.message, checkpoint_step: e.checkpointStep });
        return;
      case 'done':
        return;
    }
  };
}
