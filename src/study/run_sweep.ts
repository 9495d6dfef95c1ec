// Running a sweep: expand the spec, merge it into the folder's manifest, decide per point from its
// run folder (done: skip; checkpoint short of its steps: resume; failed: skip unless retried;
// locked: another process has it, skip; else: start), then hand the jobs to an executor and record
// each failure in the point's run folder (failed.json) as it happens. Re-running the same spec
// therefore trains only what is missing, and a changed spec adds only its new points.
import { resolve } from 'node:path';
import { expandSweep } from './expand.js';
import { mergeManifest, readManifest, runDirOf, writeManifest, type ManifestPoint, type SweepManifest } from './manifest.js';
import { clearFailure, pointStatus, recordFailure, type PointStatus } from './status.js';
import { LocalExecutor } from './local_executor.js';
import type { SweepEvent, SweepExecutor, SweepJob } from './executor.js';
import type { SweepSpec } from './spec.js';

export type PointAction = 'skip-done' | 'skip-failed' | 'skip-running' | 'resume' | 'start';

export interface PlannedPoint {
  point: ManifestPoint;
  status: PointStatus;
  action: PointAction;
}

export interface SweepPlan {
  dir: string;
  manifest: SweepManifest;
  /** The current spec's points, in spec order, with what will happen to each. */
  points: PlannedPoint[];
}

export interface PlanOptions {
  /** Train failed points again (default: leave them failed). */
  retryFailed?: boolean;
  /** Hand points whose run folder is locked to the executor too (the queue's --requeue: its worker waits for the lock). */
  includeLocked?: boolean;
}

function actionFor(s: PointStatus, retryFailed: boolean, includeLocked: boolean): PointAction {
  if (s.state === 'done') return 'skip-done';
  if (s.locked && !includeLocked) return 'skip-running';
  if (s.state === 'failed' && !retryFailed) return 'skip-failed';
  return s.step !== null ? 'resume' : 'start';
}

/** What running the spec in `dir` would do; reads only. */
export function planSweep(spec: SweepSpec, dir: string, opts: PlanOptions = {}): SweepPlan {
  const abs = resolve(dir);
  const manifest = mergeManifest(readManifest(abs), spec, expandSweep(spec));
  const points = manifest.points.filter((p) => p.inSpec).map((point) => {
    const status = pointStatus(runDirOf(abs, point.hash), point.steps);
    return { point, status, action: actionFor(status, Boolean(opts.retryFailed), Boolean(opts.includeLocked)) };
  });
  return { dir: abs, manifest, points };
}

export type SweepProgress = { type: 'plan'; plan: SweepPlan } | SweepEvent;

export interface RunSweepOptions extends PlanOptions {
  spec: SweepSpec;
  /** The sweep folder (sweep.json, runs/<hash>/). */
  dir: string;
  /** Default: LocalExecutor (in this process, one point after another). */
  executor?: SweepExecutor;
  onEvent?: (e: SweepProgress) => void;
  signal?: AbortSignal;
}

export interface SweepSummary {
  plan: SweepPlan;
  finished: number;
  failed: number;
  stopped: number;
  skipped: number;
}

export async function runSweep(opts: RunSweepOptions): Promise<SweepSummary> {
  const plan = planSweep(opts.spec, opts.dir, opts);
  writeManifest(plan.dir, plan.manifest);
  opts.onEvent?.({ type: 'plan', plan });
  const todo = plan.points.filter((p) => p.action === 'resume' || p.action === 'start');
  const jobs: SweepJob[] = todo.map(({ point }) => ({ hash: point.hash, config: point.config, dir: runDirOf(plan.dir, point.hash) }));
  const summary: SweepSummary = { plan, finished: 0, failed: 0, stopped: 0, skipped: plan.points.length - todo.length };
  const executor = opts.executor ?? new LocalExecutor();
  await executor.run(jobs, (e) => {
    if (e.type === 'start') clearFailure(e.job.dir);
    else if (e.type === 'fail') {
      recordFailure(e.job.dir, e.failure);
      summary.failed++;
    } else if (e.type === 'finish') summary.finished++;
    else summary.stopped++;
    opts.onEvent?.(e);
  }, opts.signal);
  return summary;
}
