// The default executor: the points one after another in this process through the library's train().
import { runExists } from '../train/run.js';
import { endEvent, runJob, type SweepExecutor, type SweepJob, type SweepListener } from './executor.js';

export class LocalExecutor implements SweepExecutor {
  async run(jobs: readonly SweepJob[], onEvent: SweepListener, signal?: AbortSignal): Promise<void> {
    for (const job of jobs) {
      if (signal?.aborted) return;
      onEvent({ type: 'start', job, resumed: runExists(job.dir) });
      const t0 = performance.now();
      const outcome = await runJob(job, signal);
      onEvent(endEvent(job, outcome, (performance.now() - t0) / 1000));
    }
  }
}
