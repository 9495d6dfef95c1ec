// Running sweeps through the library: every point an ordinary run under runs/<hash>; a re-run
// skips finished points and resumes interrupted ones; a changed spec adds only its new points; a
// diverging point is recorded in failed.json and the sweep goes on; a crashed worker process is
// recorded too; results carry the counts and compute of each finished run.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireRunLock } from '../src/io/lock.js';
import {
  parseSweepSpec, runSweep, planSweep, train, runDirOf, readManifest, pointStatus, readFailure, collectResults, writeResults, countModel,
  LocalExecutor, ProcessExecutor, type SweepExecutor, type SweepJob, type SweepProgress, type SweepSpecInput,
} from '../src/index.js';

let dir = '';
const TINY = { model: { d: 16, layers: 1, heads: 2, seq: 16 }, train: { batch: 2, steps: 4, evalEvery: 0, evalBatches: 1, logEvery: 1 }, data: { paths: ['corpus.txt'] } };
const spec = (s: Partial<SweepSpecInput>) => parseSweepSpec({ base: { inline: TINY }, ...s }, { baseDir: dir });

/** An executor that records the jobs it is given and runs them in process. */
class Recording implements SweepExecutor {
  jobs: SweepJob[] = [];
  async run(jobs: readonly SweepJob[], onEvent: Parameters<SweepExecutor['run']>[1], signal?: AbortSignal) {
    this.jobs.push(...jobs);
    await new LocalExecutor().run(jobs, onEvent, signal);
  }
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'moelab-sweep-'));
  const words = ['alpha', 'beta', 'gamma', 'delta', 'experts', 'route', 'tokens', 'to', 'the', 'model'];
  let text = '';
  for (let i = 0; i < 3000; i++) text += words[(i * 7 + (i >> 2)) % words.length] + (i % 9 === 8 ? '.\n' : ' ');
  writeFileSync(join(dir, 'corpus.txt'), text);
});

describe('runSweep', () => {
  test('trains each point into runs/<hash>, writes the manifest, and a re-run trains nothing', async () => {
    const out = join(dir, 's1');
    const s = spec({ axes: { 'model.ffn': [{ type: 'dense' }, { type: 'moe', experts: 4, topk: 1, every: 1 }] } });
    const events: SweepProgress[] = [];
    const r1 = await runSweep({ spec: s, dir: out, onEvent: (e) => void events.push(e) });
    assert.equal(r1.finished, 2);
    assert.deepEqual(events.map((e) => e.type), ['plan', 'start', 'finish', 'start', 'finish']);
    const m = readManifest(out)!;
    assert.equal(m.points.length, 2);
    for (const p of m.points) {
      assert.equal(p.dir, `runs/${p.hash}`);
      const st = JSON.parse(readFileSync(join(runDirOf(out, p.hash), 'state.json'), 'utf8'));
      assert.equal(st.state.step, 4);
      assert.equal(pointStatus(runDirOf(out, p.hash), p.steps).state, 'done');
    }
    assert.deepEqual(m.points.map((p) => p.family), ['dense', 'moe-E4-k1']);
    const rec = new Recording();
    const r2 = await runSweep({ spec: s, dir: out, executor: rec });
    assert.equal(rec.jobs.length, 0);
    assert.equal(r2.skipped, 2);
    assert.deepEqual(r2.plan.points.map((p) => p.action), ['skip-done', 'skip-done']);
  });

  test('an interrupted point is resumed, a locked one left alone, and a changed spec adds only new points', async () => {
    const out = join(dir, 's2');
    const s1 = spec({ seeds: [0], axes: { 'train.lr': [1e-3, 2e-3] } });
    const [p0, p1] = planSweep(s1, out).points.map((p) => p.point);
    // p0: trained to step 2 of 4 and stopped (as after Ctrl-C); p1: someone else holds its lock
    await train({ config: p0.config, dir: runDirOf(out, p0.hash), stopAt: 2 });
    mkdirSync(runDirOf(out, p1.hash), { recursive: true });
    const held = acquireRunLock(runDirOf(out, p1.hash), { command: 'another trainer' });
    assert.deepEqual(planSweep(s1, out).points.map((p) => [p.action, p.status.state, p.status.step]), [['resume', 'running', 2], ['skip-running', 'running', null]]);
    const rec = new Recording();
    const events: SweepProgress[] = [];
    await runSweep({ spec: s1, dir: out, executor: rec, onEvent: (e) => void events.push(e) });
    assert.deepEqual(rec.jobs.map((j) => j.hash), [p0.hash]);
    assert.ok(events.some((e) => e.type === 'start' && e.resumed));
    assert.equal(pointStatus(runDirOf(out, p0.hash), 4).state, 'done');
    const metrics = readFileSync(join(runDirOf(out, p0.hash), 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(metrics.filter((l) => l.type === 'start').map((l) => l.resumed), [false, true]);
    assert.deepEqual(metrics.filter((l) => l.type === 'train').map((l) => l.step), [1, 2, 3, 4]);
    held.release();

    // a new seed and a dropped lr: only the two new points train; the dropped one stays, marked
    const s2 = spec({ seeds: [0, 1], axes: { 'train.lr': [1e-3] } });
    const rec2 = new Recording();
    await runSweep({ spec: s2, dir: out, executor: rec2 });
    assert.equal(rec2.jobs.length, 1);
    assert.equal(rec2.jobs[0].config.train.seed, 1);
    const m = readManifest(out)!;
    assert.deepEqual(m.points.map((p) => [p.axes['train.lr'], p.seed, p.inSpec]), [[1e-3, 0, true], [1e-3, 1, true], [2e-3, 0, false]]);
  });

  test('a diverging point is recorded with its reason and the sweep goes on', async () => {
    const out = join(dir, 's3');
    const s = spec({ axes: { 'train.lr': [1e30, 1e-3] } });
    const r = await runSweep({ spec: s, dir: out });
    assert.equal(r.failed, 1);
    assert.equal(r.finished, 1);
    const [bad, good] = r.plan.points.map((p) => runDirOf(out, p.point.hash));
    const f = readFailure(bad)!;
    assert.equal(f.kind, 'diverged');
    assert.match(f.reason, /became (NaN|Infinity|-Infinity)|non-finite/);
    assert.equal(pointStatus(bad, 4).state, 'failed');
    assert.equal(pointStatus(good, 4).state, 'done');
    // kept failed on a re-run; --retry-failed tries again (and fails again, recorded afresh)
    const rec = new Recording();
    assert.equal((await runSweep({ spec: s, dir: out, executor: rec })).plan.points[0].action, 'skip-failed');
    assert.equal(rec.jobs.length, 0);
    const again = await runSweep({ spec: s, dir: out, executor: rec, retryFailed: true });
    assert.equal(rec.jobs.length, 1);
    assert.equal(again.failed, 1);
    assert.ok(readFailure(bad)!.at >= f.at);
    // results: the finished point only; the failed one listed as missing with its reason
    const res = collectResults(out);
    assert.equal(res.results.length, 1);
    assert.deepEqual(res.missing.map((m) => m.state), ['failed']);
    assert.match(res.missing[0].reason!, /^diverged: /);
  });

  test('a point refused before training (missing data) is recorded as such', async () => {
    const out = join(dir, 's6');
    const r = await runSweep({ spec: spec({ axes: { 'data.paths': [['missing.txt'], ['corpus.txt']] } }), dir: out });
    assert.deepEqual([r.failed, r.finished], [1, 1]);
    const f = readFailure(runDirOf(out, r.plan.points[0].point.hash))!;
    assert.equal(f.kind, 'data');
    assert.match(f.reason, /missing\.txt/);
  });

  test('an abort stops the running point with a checkpoint and starts no other; a re-run resumes it', async () => {
    const out = join(dir, 's5');
    const s = spec({ axes: { 'train.lr': [1e-3, 2e-3] } });
    const stop = new AbortController();
    const events: SweepProgress[] = [];
    const r = await runSweep({ spec: s, dir: out, signal: stop.signal, onEvent: (e) => { events.push(e); if (e.type === 'start') stop.abort(); } });
    assert.deepEqual(events.map((e) => e.type), ['plan', 'start', 'stopped']);
    assert.equal(r.stopped, 1);
    const [first, second] = r.plan.points.map((p) => p.point);
    assert.equal(readFailure(runDirOf(out, first.hash)), null);
    assert.deepEqual(planSweep(s, out).points.map((p) => p.action), ['resume', 'start']);
    // a worker process killed by the abort before it could stop cleanly is stopped too, not failed
    const stop2 = new AbortController();
    const slow = new ProcessExecutor({ jobs: 1, worker: [process.execPath, '-e', 'setTimeout(() => {}, 60000)'] });
    const ev2: SweepProgress[] = [];
    await runSweep({ spec: s, dir: out, executor: slow, signal: stop2.signal, onEvent: (e) => { ev2.push(e); if (e.type === 'start') setTimeout(() => stop2.abort(), 50); } });
    assert.deepEqual(ev2.map((e) => e.type), ['plan', 'start', 'stopped']);
    assert.equal(readFailure(runDirOf(out, second.hash)), null);
    assert.equal(readFailure(runDirOf(out, first.hash)), null);
  });

  test('a worker process that dies without a result is recorded as a crash', async () => {
    const out = join(dir, 's4');
    const s = spec({ axes: { 'train.lr': [1e-3, 2e-3] } });
    const crash = new ProcessExecutor({ jobs: 2, worker: [process.execPath, '-e', "process.stderr.write('boom\\n'); process.exit(5)"] });
    assert.equal(crash.threadsPerJob >= 1, true);
    const r = await runSweep({ spec: s, dir: out, executor: crash });
    assert.equal(r.failed, 2);
    for (const p of r.plan.points) {
      const f = readFailure(runDirOf(out, p.point.hash))!;
      assert.equal(f.kind, 'crash');
      assert.match(f.reason, /exited with code 5 without a result: boom/);
    }
  });

  test('results: final validation loss, counts, tokens and training FLOPs of each finished run', async () => {
    const out = join(dir, 's1');
    const res = writeResults(out);
    assert.equal(res.results.length, 2);
    for (const r of res.results) {
      const st = JSON.parse(readFileSync(join(runDirOf(out, r.hash), 'state.json'), 'utf8')).state;
      assert.equal(r.valLoss, st.valLoss);
      assert.equal(r.tokens, 4 * 2 * 16);
      const cfg = readManifest(out)!.points.find((p) => p.hash === r.hash)!.config;
      const c = countModel(cfg.model);
      assert.equal(r.trainingFlops, c.flopsPerToken * 128);
      assert.equal(r.paramsActive, c.paramsActive);
      assert.equal(r.sparsity, r.family === 'dense' ? 0 : 0.75);
    }
    const csv = readFileSync(join(out, 'results.csv'), 'utf8').trim().split('\n');
    assert.equal(csv.length, 3);
    assert.match(csv[0], /^params,active_params,tokens,sparsity,loss,flops,/);
    assert.ok(existsSync(join(out, 'results.json')));
  });
});
