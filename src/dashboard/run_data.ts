// One run folder as the dashboard sees it: config.json, state.json and metrics.jsonl parsed into
// column arrays, kept up to date by reading only what was appended (tail.ts). Never writes.
import { readFileSync, statSync } from 'node:fs';
import { readRunLock } from '../io/lock.js';
import { join } from 'node:path';
import { FileTail } from './tail.js';

export type RunStatus = 'running' | 'finished' | 'failed' | 'diverged' | 'stopped';

export interface TrainPoint { step: number; tokens: number | null; loss: number | null; aux: number | null; lr: number | null; gradNorm: number | null; tokensPerSecond: number | null; time: number | null }
export interface EvalPoint { step: number; valLoss: number | null; ffn: Record<string, Record<string, unknown>> | null }
/** A `moelab eval` line (eval_domains / eval_task, src/eval/metrics_line.ts) as written. */
export type EvalResultLine = Record<string, unknown> & { type: 'eval_domains' | 'eval_task'; step: number };

/** What ingesting new lines added (or that everything restarted). */
export interface RunDelta { reset: boolean; train: TrainPoint[]; eval: EvalPoint[]; malformed: string[]; missing: boolean }

export interface RunSummary {
  id: string; name: string; kind: string;
  paramsTotal: number | null; paramsActive: number | null; flopsPerToken: number | null;
  step: number; steps: number | null; tokensPerStep: number | null; tokensPerSecond: number | null;
  lastLoss: number | null; bestValLoss: number | null; status: RunStatus; statusReason: string;
  updatedAt: number | null; startedAt: string | null; malformedLines: number; lastMalformed: string | null;
}

/** A run with no lock and no new metrics line for this long is not running any more. */
export const STALE_MS = 300_000;

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const obj = (v: unknown): Record<string, unknown> | null => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null);

function readJson(path: string): Record<string, unknown> | null {
  try {
    return obj(JSON.parse(readFileSync(path, 'utf8')));
  } catch {
    return null;
  }
}

/** Is a training process holding the run's writer lock? (a lock from another host cannot be checked: trust it) */
function lockHeld(dir: string): boolean {
  const lock = readRunLock(dir);
  return lock !== null && lock.state !== 'stale';
}

export class RunData {
  readonly train: TrainPoint[] = [];
  readonly evals: EvalPoint[] = [];
  /** `moelab eval` result lines, in file order (the history the eval/*.json files overwrite). */
  readonly evalResults: EvalResultLine[] = [];
  private readonly tail: FileTail;
  private start: Record<string, unknown> | null = null;
  private diverged: Record<string, unknown> | null = null;
  private lastCheckpoint: string | null = null;
  private malformed = 0;
  private lastMalformed: string | null = null;
  private config: Record<string, unknown> | null = null;
  private configMtime = -1;
  private state: Record<string, unknown> | null = null;
  private stateMtime = -1;
  missing = false;
  private readonly listeners = new Set<(d: RunDelta) => void>();

  constructor(readonly id: string, readonly dir: string) {
    this.tail = new FileTail(join(dir, 'metrics.jsonl'));
  }

  /** Reads what changed on disk since the last call. */
  refresh(): RunDelta {
    this.refreshJson();
    const r = this.tail.read();
    const delta: RunDelta = { reset: r.reset, train: [], eval: [], malformed: [], missing: false };
    if (r.reset) this.clear();
    for (const line of r.lines) this.ingest(line, delta);
    this.missing = r.missing && this.config === null && this.state === null;
    delta.missing = this.missing;
    // whoever triggered the read, followers hear about every line once
    if (delta.reset || delta.train.length || delta.eval.length || delta.malformed.length || delta.missing) {
      for (const l of [...this.listeners]) l(delta);
    }
    return delta;
  }

  /** Calls `listener` with every non-empty delta any refresh() finds, until the returned function is called. */
  onDelta(listener: (d: RunDelta) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  private refreshJson(): void {
    const mtime = (f: string) => { try { return statSync(join(this.dir, f)).mtimeMs; } catch { return -1; } };
    const cm = mtime('config.json'), sm = mtime('state.json');
    if (cm !== this.configMtime) { this.configMtime = cm; this.config = cm < 0 ? null : readJson(join(this.dir, 'config.json')); }
    if (sm !== this.stateMtime) { this.stateMtime = sm; this.state = sm < 0 ? null : obj(readJson(join(this.dir, 'state.json'))?.state); }
  }

  private clear(): void {
    this.train.length = 0;
    this.evals.length = 0;
    this.evalResults.length = 0;
    this.start = this.diverged = null;
    this.lastCheckpoint = null;
    this.malformed = 0;
    this.lastMalformed = null;
  }

  private ingest(line: string, delta: RunDelta): void {
    let o: Record<string, unknown> | null;
    try {
      o = obj(JSON.parse(line));
    } catch {
      o = null;
    }
    const step = num(o?.step);
    if (!o || step === null || typeof o.type !== 'string') {
      this.malformed++;
      this.lastMalformed = line.length > 200 ? line.slice(0, 200) + '...' : line;
      delta.malformed.push(this.lastMalformed);
      return;
    }
    switch (o.type) {
      case 'start':
        this.start = o;
        this.diverged = null;
        this.lastCheckpoint = null;
        return;
      case 'train': {
        // a step seen again replaces what followed it (the metrics writer's own rule on resume)
        while (this.train.length && this.train[this.train.length - 1].step >= step) this.train.pop();
        const p: TrainPoint = { step, tokens: num(o.tokens), loss: num(o.loss), aux: num(o.aux), lr: num(o.lr), gradNorm: num(o.grad_norm), tokensPerSecond: num(o.tokens_per_s), time: num(o.time_s) };
        this.train.push(p);
        delta.train.push(p);
        return;
      }
      case 'eval': {
        while (this.evals.length && this.evals[this.evals.length - 1].step >= step) this.evals.pop();
        const p: EvalPoint = { step, valLoss: num(o.val_loss), ffn: obj(o.ffn) as EvalPoint['ffn'] };
        this.evals.push(p);
        delta.eval.push(p);
        return;
      }
      case 'eval_domains':
      case 'eval_task':
        this.evalResults.push(o as EvalResultLine);
        return;
      case 'checkpoint':
        this.lastCheckpoint = typeof o.reason === 'string' ? o.reason : null;
        return;
      case 'diverged':
        this.diverged = o;
        return;
      default:
        return; // a line type from a newer moelab: not an error
    }
  }

  /** config.json as saved (null when missing or unreadable). */
  configJson(): Record<string, unknown> | null {
    return this.config;
  }

  /** Tokens per optimizer step: batch * seq * accum from config.json, else as the train lines count them. */
  tokensPerStep(): number | null {
    const m = obj(this.config?.model), t = obj(this.config?.train);
    const b = num(t?.batch), s = num(m?.seq), a = num(t?.accum) ?? 1;
    if (b !== null && s !== null) return b * s * a;
    const p = this.train.find((x) => x.tokens !== null && x.step > 0);
    return p ? p.tokens! / p.step : null;
  }

  flopsPerToken(): number | null {
    return num(this.start?.flops_per_token);
  }

  /** The feed-forward type of config.json, else the first non-dense layer kind of the start line. */
  kind(): string {
    const t = obj(obj(this.config?.model)?.ffn)?.type;
    if (typeof t === 'string') return t;
    const kinds = Array.isArray(this.start?.ffn) ? (this.start.ffn as unknown[]).filter((k): k is string => typeof k === 'string') : [];
    return kinds.find((k) => k !== 'dense') ?? 'dense';
  }

  summary(now = Date.now()): RunSummary {
    const last = this.train[this.train.length - 1];
    const steps = num(obj(this.config?.train)?.steps) ?? num(this.start?.end);
    const step = Math.max(last?.step ?? 0, this.evals[this.evals.length - 1]?.step ?? 0, num(this.state?.step) ?? 0);
    let best: number | null = null;
    for (const e of this.evals) if (e.valLoss !== null && (best === null || e.valLoss < best)) best = e.valLoss;
    if (best === null) best = num(this.state?.valLoss);
    let updatedAt: number | null = null;
    try { updatedAt = statSync(join(this.dir, 'metrics.jsonl')).mtimeMs; } catch { updatedAt = this.stateMtime >= 0 ? this.stateMtime : null; }
    let status: RunStatus, statusReason: string;
    if (this.diverged) {
      status = 'diverged';
      statusReason = String(this.diverged.message ?? 'diverged');
    } else if (steps !== null && step >= steps) {
      status = 'finished';
      statusReason = `${step} of ${steps} steps`;
    } else if (lockHeld(this.dir)) {
      status = 'running';
      statusReason = 'a training process holds the run lock';
    } else if (updatedAt !== null && now - updatedAt < STALE_MS) {
      status = 'running';
      statusReason = 'metrics written in the last 5 minutes';
    } else if (this.lastCheckpoint === 'stopped') {
      status = 'stopped';
      statusReason = 'stopped by the user with a checkpoint';
    } else {
      status = 'failed';
      statusReason = 'stopped before its last step without a final checkpoint';
    }
    const prov = obj(this.start?.provenance);
    return {
      id: this.id,
      name: typeof this.config?.name === 'string' ? this.config.name : typeof this.start?.name === 'string' ? this.start.name : this.id.split('/').pop()!,
      kind: this.kind(),
      paramsTotal: num(this.start?.params_total),
      paramsActive: num(this.start?.params_active),
      flopsPerToken: this.flopsPerToken(),
      step, steps,
      tokensPerStep: this.tokensPerStep(),
      tokensPerSecond: last?.tokensPerSecond ?? null,
      lastLoss: last?.loss ?? num(this.state?.lastLoss),
      bestValLoss: best,
      status, statusReason, updatedAt,
      startedAt: typeof prov?.startedAt === 'string' ? prov.startedAt : null,
      malformedLines: this.malformed,
      lastMalformed: this.lastMalformed,
    };
  }
}
