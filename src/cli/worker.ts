// moelab worker: train sweep points from a Redis queue until stopped. SIGTERM / SIGINT: the running
// point checkpoints and goes back to the queue for any worker to resume, then the worker exits
// (exit 0; a second signal quits at once with 130; the job's lock then expires and another worker resumes it).
import type { Command } from 'commander';
import { resolve } from 'node:path';
// the queue (BullMQ, ioredis) loads only when this command runs: other commands stay lean
import type { WorkerEvent } from '../queue/index.js';
import { collect, positiveInt } from './common.js';

function line(e: WorkerEvent): string {
  switch (e.type) {
    case 'start': return `${e.resumed ? 'resume' : 'start '} ${e.dir}${e.attempt > 1 ? ` (try ${e.attempt})` : ''}`;
    case 'finish': return e.result.alreadyDone ? `skip   ${e.dir}: already done` :
      `done   ${e.dir}: step ${e.result.step}, val loss ${e.result.valLoss?.toFixed(4) ?? 'n/a'}, ${e.result.seconds.toFixed(1)} s`;
    case 'given-back': return `gave back ${e.dir} at step ${e.step} (checkpointed; another worker resumes it)`;
    case 'fail': return `FAILED ${e.dir}: ${e.reason.split('\n')[0]}${e.final ? ' (final: recorded in failed.json)' : ' (will be retried)'}`;
    case 'refused': return `REFUSED job ${e.id}: ${e.reason}`;
    case 'lock-wait': return `wait   ${e.dir}: locked by ${e.holder}; retrying later`;
    case 'lock-broken': return `broke ${e.dir}'s lock: its last worker ${e.holder} lost the job (died or cut off)`;
    case 'error': return `queue error: ${e.message}`;
  }
}

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('train sweep points from a queue (Redis + BullMQ) until stopped; start one per machine. See README "Scale out"')
    .requiredOption('-q, --queue <url>', 'the queue: redis://[:PASSWORD@]HOST:PORT/DB')
    .option('--runs <dir>', 'the folder every worker and the submitter share (e.g. an NFS mount); sweep folders live under it (default: the current folder)')
    .option('--data <dir>', 'a folder data files may also come from (repeatable; default: only --runs)', collect)
    .option('-t, --threads <n>', 'compute threads per point', positiveInt('--threads'))
    .option('--concurrency <n>', 'points at once in this process', positiveInt('--concurrency'), 1)
    .option('--lock-duration <ms>', 'a point whose worker died goes to another worker this long after its last lock renewal', positiveInt('--lock-duration'), 30_000)
    .option('--stalled-interval <ms>', 'how often to look for points whose worker died', positiveInt('--stalled-interval'), 30_000)
    .action(async (o) => {
      const { startQueueWorker, redactUrl, checkRedis } = await import('../queue/index.js');
      await checkRedis(o.queue);
      const say = (l: string) => void process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${l}\n`);
      const runsRoot = resolve(o.runs ?? '.');
      const w = startQueueWorker({
        url: o.queue, runsRoot, dataRoots: o.data ?? [], threads: o.threads, concurrency: o.concurrency,
        lockDurationMs: o.lockDuration, stalledIntervalMs: o.stalledInterval, onEvent: (e) => say(line(e)),
      });
      say(`worker ${w.name}: queue ${redactUrl(o.queue)}, runs ${runsRoot}, ${o.concurrency} at once${o.threads ? ` x ${o.threads} threads` : ''}`);
      let stopping = false;
      await new Promise<void>((done) => {
        const onSignal = () => {
          if (stopping) process.exit(130);
          stopping = true;
          say('stopping: the running point checkpoints and goes back to the queue (again to quit at once)');
          w.close().then(done, (e: Error) => { say(`close: ${e.message}`); done(); });
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      });
      say('worker stopped');
      process.exit(0); // a stopped worker is a normal end (BullMQ's connections would keep the process alive)
    });
}
