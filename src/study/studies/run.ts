// Running a predefined study end to end: plan (or reuse the folder's plan), train the sweep, then
// writeSweepReport with the study's law, its design and timing, and its verdict first. Re-running
// the same command in the same folder resumes: the kept plan gives the same points, finished ones are
// skipped, interrupted ones resumed.
import { resolve } from 'node:path';
import { planSweep, runSweep, type SweepPlan, type SweepProgress, type SweepSummary } from '../run_sweep.js';
import type { SweepExecutor } from '../executor.js';
import { writeSweepReport, type SweepReport } from '../report.js';
import { sig, table } from '../fit/markdown.js';
import type { StudyDefinition } from './design.js';
import { getStudy } from './index.js';
import { planStudy, readStudyPlan, studySpec, writeStudyPlan, STUDY_FILE, type PlanStudyOptions, type StudyPlan } from './plan.js';
import { verdictMarkdown, type Verdict } from './verdict.js';

export type StudyEvent =
  | { type: 'planned'; plan: StudyPlan; reused: boolean }
  | SweepProgress
  | { type: 'report'; path: string; verdict: Verdict };

export interface RunStudyOptions extends Omit<PlanStudyOptions, 'budgetSeconds'> {
  /** The study folder (study.json, sweep.json, runs/, report.md). */
  out: string;
  /** Needed unless the folder already holds this study's plan. */
  budgetSeconds?: number;
  /** Default: in this process, one run after another. */
  executor?: SweepExecutor;
  /** Bootstrap resamples for the fit's intervals (default 100). */
  bootstrap?: number;
  onEvent?: (e: StudyEvent) => void;
  signal?: AbortSignal;
}

export interface StudyResult {
  plan: StudyPlan;
  sweep: SweepSummary;
  /** Null when stopped before the report. */
  report: SweepReport | null;
  verdict: Verdict | null;
  seconds: number;
}

const studyOf = (s: string | StudyDefinition): StudyDefinition => (typeof s === 'string' ? getStudy(s) : s);

/** The folder's plan when it holds this study's, else a new one (not written). */
export function studyPlanFor(o: Omit<RunStudyOptions, 'onEvent' | 'signal' | 'executor'>): { plan: StudyPlan; reused: boolean } {
  const def = studyOf(o.study);
  const kept = readStudyPlan(resolve(o.out));
  if (kept) {
    if (kept.study !== def.name) throw new Error(`${resolve(o.out)} holds study '${kept.study}', not '${def.name}': choose another --out`);
    return { plan: kept, reused: true };
  }
  if (o.budgetSeconds === undefined) throw new Error(`${resolve(o.out)} holds no study plan yet: give a time budget (--budget)`);
  return { plan: planStudy({ ...o, budgetSeconds: o.budgetSeconds }), reused: false };
}

/** What running the study would do (measures this machine when no plan is kept; trains and writes nothing). */
export function dryRunStudy(o: Omit<RunStudyOptions, 'onEvent' | 'signal' | 'executor'>): { plan: StudyPlan; reused: boolean; sweep: SweepPlan } {
  const r = studyPlanFor(o);
  return { ...r, sweep: planSweep(studySpec(r.plan), resolve(o.out)) };
}

function studyPreface(def: StudyDefinition, plan: StudyPlan, verdict: Verdict, elapsed: number): string {
  return [
    verdictMarkdown(verdict),
    '## Study design', '',
    `${def.paper}.`, '',
    def.design, '',
    `Time budget ${sig(plan.budgetSeconds)} s: calibration ${plan.calibrationSeconds.toFixed(1)} s, training planned ${plan.predictedTrainingSeconds.toFixed(0)} s ` +
      `(of ${plan.trainingSeconds.toFixed(0)} s available), ${plan.reportSeconds.toFixed(0)} s kept for fit, plots and report; ` +
      `this invocation had run ${elapsed.toFixed(0)} s when the report was started. Budgets: ${plan.budgets.map((b) => sig(b)).join(', ')} FLOPs. ` +
      `The plan (measured step times, budgets, sweep spec) is in ${STUDY_FILE}.`, '',
    table(['config', 'family', 'seconds/step (measured)', 'FLOPs/step', 'runs'], plan.calibration.map((c) => [c.key, c.family, sig(c.secPerStep), sig(c.flopsPerStep), String(c.runs)])),
    '',
  ].join('\n');
}

export async function runStudy(o: RunStudyOptions): Promise<StudyResult> {
  const t0 = performance.now();
  const def = studyOf(o.study);
  const dir = resolve(o.out);
  const { plan, reused } = studyPlanFor(o);
  if (!reused) writeStudyPlan(dir, plan);
  o.onEvent?.({ type: 'planned', plan, reused });
  const sweep = await runSweep({ spec: studySpec(plan), dir, executor: o.executor, onEvent: o.onEvent, signal: o.signal });
  if (o.signal?.aborted) return { plan, sweep, report: null, verdict: null, seconds: (performance.now() - t0) / 1000 };
  let verdict: Verdict | null = null;
  const report = await writeSweepReport(dir, {
    law: def.law, bootstrap: o.bootstrap, title: def.title,
    preface: (found) => {
      verdict = def.verdict(found.results.results, found.comparison);
      return studyPreface(def, plan, verdict, (performance.now() - t0) / 1000);
    },
  });
  o.onEvent?.({ type: 'report', path: report.path, verdict: verdict! });
  return { plan, sweep, report, verdict, seconds: (performance.now() - t0) / 1000 };
}
