/**
 * What the training loop reports, as typed events. Everything that watches a run is a listener:
 * the CLI's progress bar and log lines, the metrics.jsonl writer, and later the dashboard and the
 * queue worker. Nobody parses log text.
 *
 * Order within one run: start, then per step `step` (and, on its schedule, `eval`, `checkpoint`),
 * then exactly one of `done` or `diverged` (an error other than divergence rejects the promise
 * without a final event).
 */
import type { ModelCount } from '../spec/count.js';
import type { RunProvenance } from './provenance.js';
import type { StepResult } from './step.js';

export interface StartEvent {
  type: 'start';
  dir: string;
  name: string;
  /** Step the loop starts from (0, or the resumed checkpoint's step). */
  step: number;
  /** Step the loop will stop at (train.steps, or stopAt). */
  end: number;
  resumed: boolean;
  data: {
    files: number; tokens: number; trainTokens: number; valTokens: number; tokenizer: string; cached: boolean;
    /** What the corpus loader noticed and handled (files read once, Latin-1 decoding, ...). */
    notices: string[];
  };
  counts: ModelCount;
  provenance: RunProvenance;
  /** Human-readable memory estimate (what was checked before allocating). */
  memory: string;
}

export interface StepEvent extends Omit<StepResult, 'step'> {
  type: 'step';
  /** Steps completed (1-based: the step that just ran is step - 1). */
  step: number;
  end: number;
  tokensSeen: number;
  /** Tokens per second of this step. */
  tokensPerSecond: number;
  /** Seconds since this process started training. */
  elapsed: number;
}

export interface EvalEvent {
  type: 'eval';
  step: number;
  valLoss: number;
  /** Per feed-forward layer statistics (MoE load, drops, router entropy, ...), keyed `layer<i>`. */
  ffn: Record<string, unknown> | null;
}

export interface CheckpointEvent {
  type: 'checkpoint';
  step: number;
  reason: 'periodic' | 'end' | 'stopped';
  dir: string;
}

export interface DoneEvent {
  type: 'done';
  step: number;
  stoppedBy: 'done' | 'stopped' | 'stopAt';
  lastLoss: number;
  valLoss: number | null;
}

export interface DivergedEvent {
  type: 'diverged';
  step: number;
  message: string;
  /** Step of the checkpoint left in the run folder (null when none was saved). */
  checkpointStep: number | null;
}

export type TrainEvent = StartEvent | StepEvent | EvalEvent | CheckpointEvent | DoneEvent | DivergedEvent;

/** A listener may be async; the loop awaits it before going on (so a slow writer applies back-pressure). */
export type TrainListener = (event: TrainEvent) => void | Promise<void>;

/** Calls every listener in order for each event. */
export class EventBus {
  constructor(private readonly listeners: TrainListener[]) {}

  async emit(e: TrainEvent): Promise<void> {
    for (const l of this.listeners) await l(e);
  }
}
