// Terminal rendering of training events: a progress bar on a TTY (log lines otherwise), plus the
// start summary, evaluations, checkpoints and divergence as lines on stderr.
import type { TrainEvent, TrainListener } from '../index.js';
import { formatCount } from '../index.js';

interface Bar {
  start(total: number, value: number, payload: Record<string, unknown>): void;
  update(value: number, payload: Record<string, unknown>): void;
  stop(): void;
}

export interface ProgressOptions {
  /** Draw a bar (default: when stderr is a TTY). */
  bar?: boolean;
  write?: (line: string) => void;
  /** Without a bar, a line every this many steps (default 10). */
  logEvery?: number;
}

export interface Progress {
  listener: TrainListener;
  /** Restores the terminal (call when training ends for any reason). */
  stop(): void;
}

export async function progress(o: ProgressOptions = {}): Promise<Progress> {
  const write = o.write ?? ((l: string) => void process.stderr.write(l + '\n'));
  let bar: Bar | null = null;
  if (o.bar ?? Boolean(process.stderr.isTTY)) {
    const { default: cliProgress } = await import('cli-progress');
    bar = new cliProgress.SingleBar({
      format: 'step {value}/{total} |{bar}| loss {loss} | {tps} tok/s | ETA {eta_formatted}',
      etaBuffer: 20,
      hideCursor: true,
      stream: process.stderr,
    }, cliProgress.Presets.shades_classic);
  }
  // a line printed while the bar is drawn clears the bar's line first; the bar redraws on its next update
  const line = (s: string) => write(bar ? `\r\x1b[K${s}` : s);
  let tps = 0;
  const stop = () => {
    bar?.stop();
    bar = null;
  };
  const listener = (e: TrainEvent): void => {
    switch (e.type) {
      case 'start': {
        const d = e.data, c = e.counts, p = e.provenance;
        write(`data: ${d.files} file(s), ${d.tokens.toLocaleString('en-US')} tokens (${d.tokenizer}), ` +
          `${d.trainTokens.toLocaleString('en-US')} train / ${d.valTokens.toLocaleString('en-US')} val${d.cached ? ' (cached)' : ''}`);
        write(`model: ${formatCount(c.paramsTotal)} params (${formatCount(c.paramsActive)} active/token), ` +
          `${(c.flopsPerToken / 1e6).toFixed(2)} MFLOPs/token; ${p.backend} kernels (${p.isa}, ${p.threads} threads)`);
        for (const n of d.notices) write(`note: ${n}`);
        write(e.memory);
        if (e.resumed) write(`resumed ${e.dir} at step ${e.step}`);
        bar?.start(e.end, e.step, { loss: '-', tps: 0 });
        return;
      }
      case 'step':
        tps = tps ? 0.9 * tps + 0.1 * e.tokensPerSecond : e.tokensPerSecond;
        if (bar) bar.update(e.step, { loss: e.loss.toFixed(4), tps: Math.round(tps) });
        else if (e.step % (o.logEvery ?? 10) === 0 || e.step === e.end) {
          write(`step ${e.step}/${e.end} loss ${e.loss.toFixed(4)} lr ${e.lr.toExponential(2)} ${Math.round(tps)} tok/s`);
        }
        return;
      case 'eval':
        line(`eval step ${e.step}: val loss ${e.valLoss.toFixed(4)}`);
        return;
      case 'checkpoint':
        line(`checkpoint: step ${e.step} -> ${e.dir} (${e.reason})`);
        return;
      case 'diverged':
      case 'done':
        stop();
        return;
    }
  };
  return { listener, stop };
}
