// Points in parallel child processes (`moelab sweep --jobs N`), the machine's cores split between
// them (train.threads = floor(cores / N), at least 1; threads are not part of a run's identity).
// Each child is a worker command (the CLI's sweep worker) given two files: the job (JSON: hash,
// resolved config, run folder) and where to write its outcome (JSON, study/executor.ts
// JobOutcome). A child that exits without an outcome crashed (killed, out of memory, ...): the
// failure records its exit status and the end of its stderr. Aborting sends SIGTERM to the
// children, which checkpoint and stop; one that dies of it instead counts as stopped, not failed.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { runExists } from '../train/run.js';
import { endEvent, type JobOutcome, type SweepExecutor, type SweepJob, type SweepListener } from './executor.js';

export interface ProcessExecutorOptions {
  /** Processes at once (>= 1). */
  jobs: number;
  /** The worker command; the job file and the outcome file are appended as its last two arguments. */
  worker: readonly string[];
  /** Compute threads per process (default floor(cores / jobs), at least 1). */
  threadsPerJob?: number;
  /** Environment of the children (default: this process's). */
  env?: NodeJS.ProcessEnv;
}

const STDERR_TAIL = 2000;

export class ProcessExecutor implements SweepExecutor {
  readonly threadsPerJob: number;
  constructor(private readonly opts: ProcessExecutorOptions) {
    if (!Number.isInteger(opts.jobs) || opts.jobs < 1) throw new RangeError(`ProcessExecutor: jobs must be a positive integer, got ${opts.jobs}`);
    if (!opts.worker.length) throw new RangeError('ProcessExecutor: worker command is empty');
    this.threadsPerJob = opts.threadsPerJob ?? Math.max(1, Math.floor(availableParallelism() / opts.jobs));
  }

  async run(jobs: readonly SweepJob[], onEvent: SweepListener, signal?: AbortSignal): Promise<void> {
    const tmp = mkdtempSync(join(tmpdir(), 'moelab-sweep-'));
    const children = new Set<ReturnType<typeof spawn>>();
    const onAbort = () => { for (const c of children) c.kill('SIGTERM'); };
    signal?.addEventListener('abort', onAbort);
    let next = 0;
    const slot = async (): Promise<void> => {
      while (next < jobs.length && !signal?.aborted) {
        const job = jobs[next++];
        const jobFile = join(tmp, `${job.hash}.job.json`);
        const outFile = join(tmp, `${job.hash}.outcome.json`);
        const config = { ...job.config, train: { ...job.config.train, threads: this.threadsPerJob } };
        writeFileSync(jobFile, JSON.stringify({ ...job, config }));
        onEvent({ type: 'start', job, resumed: runExists(job.dir) });
        const t0 = performance.now();
        const { code, sig, stderr } = await new Promise<{ code: number | null; sig: NodeJS.Signals | null; stderr: string }>((done) => {
          const [cmd, ...args] = this.opts.worker;
          const child = spawn(cmd, [...args, jobFile, outFile], { stdio: ['ignore', 'ignore', 'pipe'], env: this.opts.env ?? process.env });
          children.add(child);
          let err = '';
          child.stderr!.setEncoding('utf8');
          child.stderr!.on('data', (s: string) => { err = (err + s).slice(-STDERR_TAIL); });
          child.on('error', (e) => { err += `\n${e.message}`; });
          child.on('close', (c, s) => { children.delete(child); done({ code: c, sig: s, stderr: err }); });
        });
        let outcome: JobOutcome;
        try {
          outcome = JSON.parse(readFileSync(outFile, 'utf8')) as JobOutcome;
        } catch {
          if (signal?.aborted) {
            // stopped before it could stop cleanly (e.g. SIGTERM before its handler was installed):
            // its last checkpoint, if any, is intact (saves are atomic), so the point is not failed
            onEvent({ type: 'stopped', job, step: null, seconds: (performance.now() - t0) / 1000 });
            continue;
          }
          const how = sig ? `killed by ${sig}` : `exited with code ${code}`;
          const tail = stderr.trim().split('\n').slice(-3).join(' | ');
          outcome = { ok: false, failure: { kind: 'crash', reason: `the training process ${how} without a result${tail ? `: ${tail}` : ''}`, step: null } };
        }
        onEvent(endEvent(job, outcome, (performance.now() - t0) / 1000));
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.opts.jobs, jobs.length) }, slot));
    } finally {
      signal?.removeEventListener('abort', onAbort);
      rmSync(tmp, { recursive: true, force: true });
    }
  }
}
