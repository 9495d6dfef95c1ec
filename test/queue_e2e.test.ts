// Sweeps through the queue end to end, with real worker processes on a private redis-server:
//   - 6 points, 2 workers, one killed with -9 mid-run: every point finishes exactly once, the
//     killed point is resumed by the other worker from its checkpoint and ends with the same
//     weights as an uninterrupted run;
//   - a point that always diverges is failed after its tries (failed.json), the sweep completes;
//   - Redis stopped and restarted (its queue lost) mid-sweep: --requeue finishes every point once.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { train, readManifest, pointStatus, runDirOf, readFailure } from '../src/index.js';
import { RedisServer } from './redis_server.js';
import { checkpointWeights } from './train_util.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
let root = '';
let redis: RedisServer;

const BASE = { model: { d: 16, layers: 1, heads: 2, seq: 16 }, train: { batch: 2, evalEvery: 0, evalBatches: 1, logEvery: 1, steps: 240, saveEvery: 20, threads: 1 }, data: { paths: ['corpus.txt'] } };

/** The CLI in a child process; async, so this process keeps reading the workers' logs meanwhile. */
function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [CLI, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], timeout: 90_000 });
    let out = '', err = '';
    p.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s; });
    p.stderr!.setEncoding('utf8').on('data', (s: string) => { err += s; });
    p.on('close', (code) => done({ code, out, err }));
  });
}

interface WorkerProc { proc: ChildProcess; log: () => string; exited: Promise<void> }
function startWorker(): WorkerProc {
  const proc = spawn(process.execPath, [CLI, 'worker', '--queue', redis.url, '--threads', '1', '--lock-duration', '1500', '--stalled-interval', '500'], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (s: string) => { log += s; });
  const exited = new Promise<void>((d) => proc.on('close', () => d()));
  return { proc, log: () => log, exited };
}
async function stopWorker(w: WorkerProc): Promise<void> {
  if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGTERM');
  await w.exited;
}

/** Run folders each worker trained to the end (its "done" lines). */
const doneDirs = (log: string): string[] => [...log.matchAll(/ done {3}(\S+): step/g)].map((m) => m[1]);
const sleep = (ms: number) => new Promise((d) => setTimeout(d, ms));

before(async () => {
  redis = await RedisServer.start();
  root = mkdtempSync(join(tmpdir(), 'moelab-queue-e2e-'));
  const words = ['the', 'model', 'learns', 'to', 'predict', 'next', 'byte', 'of', 'text', 'and', 'experts', 'route', 'tokens'];
  let text = '';
  for (let i = 0; i < 3000; i++) text += words[(i * 7 + (i >> 3)) % words.length] + (i % 11 === 10 ? '.\n' : ' ');
  writeFileSync(join(root, 'corpus.txt'), text);
  writeFileSync(join(root, 'six.json'), JSON.stringify({ base: { inline: BASE }, axes: { 'train.lr': [1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3] } }));
  writeFileSync(join(root, 'diverge.json'), JSON.stringify({ base: { inline: { ...BASE, train: { ...BASE.train, steps: 4 } } }, axes: { 'train.lr': [1e-3, 1e30] } }));
  // longer runs: the point in flight when Redis goes away is likely still training at --requeue
  writeFileSync(join(root, 'four.json'), JSON.stringify({ base: { inline: { ...BASE, train: { ...BASE.train, steps: 600 } } }, axes: { 'train.seed': [1, 2, 3, 4] } }));
});
after(async () => { await redis?.stop(); });

describe('sweep --queue with worker processes', () => {
  test('a worker killed with -9 mid-run: its point is resumed elsewhere, all 6 finish once, weights equal an uninterrupted run', async () => {
    const a = startWorker(), b = startWorker();
    try {
      const q = await cli(['sweep', '--spec', 'six.json', '--out', 'six', '--queue', redis.url, '--detach']);
      assert.equal(q.code, 0, q.err);
      assert.match(q.err, /6 queued, 0 already queued/);
      const m = readManifest(join(root, 'six'))!;
      // kill worker a once a point it trains has checkpointed but is not finished
      let killed = '';
      const deadline = Date.now() + 60_000;
      while (!killed && Date.now() < deadline) {
        for (const p of m.points) {
          const dir = runDirOf(join(root, 'six'), p.hash);
          const s = pointStatus(dir, p.steps);
          let pid = 0;
          try { pid = JSON.parse(readFileSync(join(dir, 'moelab.lock'), 'utf8')).pid; } catch { /* not locked */ }
          if (pid === a.proc.pid && s.step !== null && s.step >= 40 && s.step < p.steps - 40) {
            a.proc.kill('SIGKILL');
            killed = dir;
            break;
          }
        }
        if (!killed) await sleep(5);
      }
      assert.ok(killed, `worker a never trained a point past its first checkpoint:\n${a.log()}`);
      await a.exited;
      const w = await cli(['sweep', '--spec', 'six.json', '--out', 'six', '--queue', redis.url, '--poll', '200']);
      assert.equal(w.code, 0, w.err + b.log());
      assert.match(w.err, /6 points: \d done/);
      assert.match(w.err, /results in six\/results\.csv/);
      for (const p of m.points) assert.equal(pointStatus(runDirOf(join(root, 'six'), p.hash), p.steps).state, 'done');
      const done = [...doneDirs(a.log()), ...doneDirs(b.log())];
      assert.equal(done.length, 6, `each point trained to the end exactly once:\n${a.log()}\n${b.log()}`);
      assert.equal(new Set(done).size, 6);
      assert.ok(!doneDirs(a.log()).includes(killed));
      assert.match(b.log(), new RegExp(`resume ${killed}`), b.log());
      // the same point uninterrupted, in this process
      const point = m.points.find((p) => killed.endsWith(p.hash))!;
      const ref = join(root, 'reference');
      await train({ config: point.config, dir: ref });
      assert.ok(checkpointWeights(ref).equals(checkpointWeights(killed)), 'the resumed point ends with the weights of an uninterrupted run');
      const st = await cli(['sweep', 'status', '--out', 'six', '--queue', redis.url]);
      assert.equal(st.code, 0, st.err);
      assert.match(st.out, /6 points: 6 done, 0 running, 0 failed, 0 pending; queue redis:\/\/127\.0\.0\.1:\d+\/0: .*6 completed/);
    } finally {
      await stopWorker(a);
      await stopWorker(b);
    }
  });

  test('a point that always fails is failed after its tries; the sweep completes', async () => {
    const w = startWorker();
    try {
      const r = await cli(['sweep', '--spec', 'diverge.json', '--out', 'div', '--queue', redis.url, '--attempts', '2', '--backoff', '100', '--poll', '200']);
      assert.equal(r.code, 3, r.err);
      assert.match(r.err, /1 finished, 1 failed/);
      const m = readManifest(join(root, 'div'))!;
      const bad = m.points.find((p) => p.config.train.lr === 1e30)!;
      const f = readFailure(runDirOf(join(root, 'div'), bad.hash));
      assert.equal(f?.kind, 'diverged');
      assert.equal([...w.log().matchAll(/FAILED .*diverged/g)].length, 2, w.log());
      assert.match(w.log(), /\(will be retried\)[\s\S]*\(final: recorded in failed\.json\)/);
      const st = await cli(['sweep', 'status', '--out', 'div', '--queue', redis.url, '--json']);
      const rows = st.out.trim().split('\n').map((l) => JSON.parse(l));
      assert.deepEqual(rows.map((x) => [x.state, x.queue]).sort(), [['done', 'completed'], ['failed', 'failed']]);
    } finally {
      await stopWorker(w);
    }
  });

  test('Redis restarted mid-sweep (queue lost): --requeue finishes every point, none lost or trained twice', async () => {
    const w = startWorker();
    try {
      const q = await cli(['sweep', '--spec', 'four.json', '--out', 'four', '--queue', redis.url, '--detach']);
      assert.equal(q.code, 0, q.err);
      const m = readManifest(join(root, 'four'))!;
      const states = () => m.points.map((p) => pointStatus(runDirOf(join(root, 'four'), p.hash), p.steps));
      const deadline = Date.now() + 60_000;
      while (!(states().some((s) => s.state === 'done') && states().some((s) => s.locked)) && Date.now() < deadline) await sleep(5);
      await redis.stop();
      await redis.restart();
      const r = await cli(['sweep', '--spec', 'four.json', '--out', 'four', '--queue', redis.url, '--requeue', '--poll', '200']);
      assert.equal(r.code, 0, r.err + w.log());
      assert.ok(states().every((s) => s.state === 'done'), JSON.stringify(states()));
      const done = doneDirs(w.log());
      if (process.env.QDEBUG) process.stderr.write(w.log() + r.err);
      assert.equal(done.length, 4, w.log());
      assert.equal(new Set(done).size, 4, w.log());
      assert.ok(existsSync(join(root, 'four', 'results.csv')));
      // every point's result came through (from the queue or, for the one in flight, its run folder)
      assert.equal(r.err.split('\n').filter((l) => /\] done .*val loss \d/.test(l)).length, r.err.split('\n').filter((l) => /\] start /.test(l)).length, r.err);
    } finally {
      await stopWorker(w);
    }
  });
});
