// Planning a study: measure this machine, size the budgets to the time given, and keep the result in
// the study folder (study.json) so that running the same study again trains the same points (a new
// measurement would give other budgets, hence other configs and runs).
//
// Time: budget = calibration (measured, including reading the corpus once so runs find it cached)
//              + training (sizing.ts: the runs' steps plus a fixed cost per run)
//              + the report's share (fit with bootstrap, plots, report.md; default 15 s + 2%).
// Calibration: per distinct config (seeds share one), benchTrain's own timed trainStep calls
// (8 warm-up, 5 timed, median) on random tokens, at the study's batch and context.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../../config/schema.js';
import { countModel } from '../../spec/count.js';
import { benchTrain } from '../../train/bench.js';
import { loadCorpus } from '../../data/corpus.js';
import { getTokenizer } from '../../data/tokenizer.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { expandSweep, tokensPerStep } from '../expand.js';
import { seedGroup } from '../results.js';
import { parseSweepSpec, type SweepSpec, type SweepSpecInput } from '../spec.js';
import type { StudyDefinition } from './design.js';
import { getStudy } from './index.js';
import { sizeStudy, StudyBudgetError, type RunTemplate } from './sizing.js';

export const STUDY_FILE = 'study.json';
export const STUDY_FORMAT = 'moelab-study';

export interface PlanStudyOptions {
  /** A predefined study's name or definition. */
  study: string | StudyDefinition;
  /** Wall-clock seconds the whole study may take. */
  budgetSeconds: number;
  /** Text files or folders to train on (default: the bundled corpus); relative to cwd. */
  dataPaths?: string[];
  /** Config overrides for every point (dotted keys), e.g. a smaller model for a quick try. */
  set?: Record<string, unknown>;
  /** Seconds per optimizer step of a config (default: benchTrain, 8 warm-up + 5 timed steps). */
  measure?: (cfg: Config) => number;
  /** Fixed seconds per run besides its steps and final evaluation (default 1.5). */
  overheadSeconds?: number;
  /** Seconds kept for fit, plots and report (default 15 + 2% of the budget). */
  reportSeconds?: number;
  /** Fewest steps any run may train (default 20). */
  minSteps?: number;
  cwd?: string;
}

export interface CalibratedConfig {
  key: string;
  family: string;
  secPerStep: number;
  flopsPerStep: number;
  /** Runs of this config (one per seed). */
  runs: number;
}

export interface StudyPlan {
  format: typeof STUDY_FORMAT;
  version: 1;
  study: string;
  createdAt: string;
  budgetSeconds: number;
  calibrationSeconds: number;
  reportSeconds: number;
  trainingSeconds: number;
  predictedTrainingSeconds: number;
  calibration: CalibratedConfig[];
  budgets: number[];
  /** The sized sweep spec (budgets and seeds included); relative paths against baseDir. */
  spec: SweepSpecInput;
  baseDir: string;
}

export function defaultMeasure(cfg: Config): number {
  // The first steps of a model run far slower than its steady state (JIT tiers, the buffer pool
  // and thread pool filling): with 1 warm-up step a small MoE measured 58 ms/step against 15 ms
  // after 8, which shrank every study's budgets; 8 + 5 steps cost ~0.6 s per configuration.
  const r = benchTrain({ config: cfg, warmup: 8, steps: 5 });
  return (r.step_ms as number) / 1000;
}

const studyOf = (s: string | StudyDefinition): StudyDefinition => (typeof s === 'string' ? getStudy(s) : s);

/** The study's spec without budgets: its sweep, the caller's data and overrides, its seeds. */
export function studyTemplateSpec(def: StudyDefinition, o: { dataPaths?: string[]; set?: Record<string, unknown>; cwd?: string }): SweepSpecInput {
  const cwd = resolve(o.cwd ?? '.');
  const set: Record<string, unknown> = { ...(def.sweep.set ?? {}), ...(o.set ?? {}) };
  if (o.dataPaths?.length) set['data.paths'] = o.dataPaths.map((p) => resolve(cwd, p));
  return { ...def.sweep, set, seeds: def.seeds };
}

/** Measure, size and return the plan (writes nothing but the token cache of the corpus). */
export function planStudy(o: PlanStudyOptions): StudyPlan {
  const def = studyOf(o.study);
  if (!(o.budgetSeconds > 0 && Number.isFinite(o.budgetSeconds))) throw new Error(`the study's time budget must be a positive number of seconds, got ${o.budgetSeconds}`);
  const t0 = performance.now();
  const cwd = resolve(o.cwd ?? '.');
  const template = studyTemplateSpec(def, o);
  const points = expandSweep(parseSweepSpec(template, { baseDir: cwd, source: `(study ${def.name})` }));
  const first = points[0].config;
  loadCorpus(first.data.paths, getTokenizer(first.model.vocab));
  const measure = o.measure ?? defaultMeasure;
  const byGroup = new Map<string, CalibratedConfig>();
  const templates: RunTemplate[] = [];
  const overhead = o.overheadSeconds ?? 1.5;
  for (const p of points) {
    const g = seedGroup(p.config);
    let c = byGroup.get(g);
    if (!c) {
      const key = p.name.replace(/-s\d+$/, '');
      c = { key, family: p.family, secPerStep: measure(p.config), flopsPerStep: countModel(p.config.model).flopsPerToken * tokensPerStep(p.config), runs: 0 };
      if (!(c.secPerStep > 0 && Number.isFinite(c.secPerStep))) throw new Error(`calibration of ${key} gave ${c.secPerStep} s per step`);
      byGroup.set(g, c);
    }
    c.runs++;
    // the final evaluation: evalBatches forward passes of the training batch's size, ~1/3 of a step each
    templates.push({ key: p.name, flopsPerStep: c.flopsPerStep, secPerStep: c.secPerStep, overheadSec: overhead + (p.config.train.evalBatches * c.secPerStep) / 3 });
  }
  const calibrationSeconds = (performance.now() - t0) / 1000;
  const reportSeconds = o.reportSeconds ?? 15 + 0.02 * o.budgetSeconds;
  const trainingSeconds = o.budgetSeconds - calibrationSeconds - reportSeconds;
  let sized;
  try {
    sized = sizeStudy({ templates, budgetFactors: def.budgetFactors, seconds: trainingSeconds, minSteps: o.minSteps });
  } catch (e) {
    if (!(e instanceof StudyBudgetError)) throw e;
    // say it in terms of the whole budget the caller gave
    const total = Math.ceil(o.reportSeconds !== undefined ? e.neededSeconds + calibrationSeconds + o.reportSeconds : (e.neededSeconds + calibrationSeconds + 15) / 0.98);
    throw new StudyBudgetError(`study ${def.name}: a budget of ${o.budgetSeconds} s is too little on this machine: after calibration (${calibrationSeconds.toFixed(1)} s) ` +
      `and the report's share (${reportSeconds.toFixed(0)} s) it leaves ${Math.max(0, trainingSeconds).toFixed(0)} s of training; ${e.message.replace(/^-?[\d.]+ s of training time is too little: /, '')}. ` +
      `Give a budget of at least ${total} s, or a smaller model (--set).`, total);
  }
  return {
    format: STUDY_FORMAT, version: 1, study: def.name, createdAt: new Date().toISOString(), budgetSeconds: o.budgetSeconds,
    calibrationSeconds, reportSeconds, trainingSeconds, predictedTrainingSeconds: sized.predictedSeconds,
    calibration: [...byGroup.values()], budgets: sized.budgets, spec: { ...template, budgets: sized.budgets }, baseDir: cwd,
  };
}

/** The plan kept in a study folder, or null. */
export function readStudyPlan(dir: string): StudyPlan | null {
  const path = join(dir, STUDY_FILE);
  if (!existsSync(path)) return null;
  let p: Partial<StudyPlan>;
  try {
    p = JSON.parse(readFileSync(path, 'utf8')) as Partial<StudyPlan>;
  } catch (e) {
    throw new Error(`${path} is not valid JSON (${(e as Error).message}): move it away to plan the study afresh`);
  }
  if (p.format !== STUDY_FORMAT || typeof p.study !== 'string' || !p.spec) throw new Error(`${path} is not a moelab study plan`);
  return p as StudyPlan;
}

export function writeStudyPlan(dir: string, plan: StudyPlan): void {
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(join(dir, STUDY_FILE), JSON.stringify(plan, null, 2) + '\n');
}

export function studySpec(plan: StudyPlan): SweepSpec {
  return parseSweepSpec(plan.spec, { baseDir: plan.baseDir, source: `(study ${plan.study})` });
}
