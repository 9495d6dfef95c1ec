// What a predefined study is: a sweep (base config, axes, generator) without its compute budgets,
// the relative budgets and seeds to train it at, the law to fit, and the rule that turns its
// results into a verdict on the paper's finding. study/studies/plan.ts sizes the budgets to the
// time available; run.ts trains, reports and judges.
import type { SweepResult } from '../results.js';
import type { Comparison } from '../compare.js';
import type { SweepSpecInput } from '../spec.js';
import type { Verdict } from './verdict.js';

export interface StudyDefinition {
  name: string;
  title: string;
  /** The paper whose question the study asks, as a citation. */
  paper: string;
  /** Markdown: how the study asks it at laptop scale, and why so. */
  design: string;
  /** The sweep without budgets or seeds: base, set, axes, generator. */
  sweep: Omit<SweepSpecInput, 'budgets' | 'seeds'>;
  /** Relative compute budgets, smallest first; plan.ts scales them to the time budget. */
  budgetFactors: number[];
  seeds: number[];
  /** The law report.md fits (a built-in law name). */
  law: string;
  verdict(results: readonly SweepResult[], comparison: Comparison): Verdict;
}

/**
 * The model every study starts from: a small byte-level GPT (d 128, 2 layers, 4 heads, context 128,
 * batch 8) that learns visibly in a minute here; cosine schedule to the end of each run, one
 * evaluation at the end on 16 fixed validation batches (16k tokens: the loss differences the studies
 * look for are a few hundredths), a checkpoint only at the end.
 */
export const STUDY_BASE = {
  model: { vocab: 'bytes', d: 128, layers: 2, heads: 4, seq: 128, ffn: { type: 'dense' } },
  train: { batch: 8, lr: 2e-3, schedule: 'cosine', clip: 1, evalEvery: 0, evalBatches: 16, saveEvery: 0, logEvery: 50 },
} as const;

/** A mutable deep copy of STUDY_BASE for a study's sweep. */
export function studyBase(): Record<string, unknown> {
  return structuredClone(STUDY_BASE) as unknown as Record<string, unknown>;
}
