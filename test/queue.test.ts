// The queue's job check (what a worker accepts from Redis) and its URL handling, then a real worker
// on a private redis-server refusing an escaping job without touching the disk outside --runs.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, symlinkSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { resolveConfig, configHash, pointStatus, train } from '../src/index.js';
import { nativeKernels } from '../src/backend/index.js';
import { checkpointWeights } from './train_util.js';
import { validateJob, JobRefused, redactUrl, redisOptions, relativeRunDir, startQueueWorker, QUEUE_NAME, SweepQueue, type WorkerEvent } from '../src/queue/index.js';
import { acquireRunLock } from '../src/io/lock.js';
import { RedisServer } from './redis_server.js';

let root = '', outside = '';
let config: ReturnType<typeof resolveConfig>;
let hash = '';

before(() => {
  root = mkdtempSync(join(tmpdir(), 'moelab-qroot-'));
  outside = mkdtempSync(join(tmpdir(), 'moelab-qout-'));
  writeFileSync(join(root, 'corpus.txt'), 'the model learns to route tokens to experts. '.repeat(200));
  writeFileSync(join(outside, 'secret.txt'), 'not for workers '.repeat(200));
  config = resolveConfig({ model: { d: 16, layers: 1, heads: 2, seq: 16 }, train: { batch: 2, steps: 3, evalEvery: 0, evalBatches: 1 }, data: { paths: [join(root, 'corpus.txt')] } });
  hash = configHash(config);
  symlinkSync(outside, join(root, 'link'));
});

const refused = (data: unknown, re: RegExp) => assert.throws(() => validateJob(data, root), (e: unknown) => e instanceof JobRefused && re.test((e as Error).message));

describe('validateJob', () => {
  test('accepts a point inside --runs and returns its absolute run folder', () => {
    const j = validateJob({ hash, config, dir: `sw/runs/${hash}` }, root);
    assert.equal(j.dir, join(root, 'sw', 'runs', hash));
    assert.equal(j.hash, hash);
  });
  test("refuses '..', absolute and symlinked escapes", () => {
    refused({ hash, config, dir: `../x/${hash}` }, /plain relative path/);
    refused({ hash, config, dir: `sw/../../${hash}` }, /plain relative path/);
    refused({ hash, config, dir: join(outside, hash) }, /plain relative path/);
    refused({ hash, config, dir: `link/${hash}` }, /symbolic link/);
    refused({ hash, config, dir: `link/deeper/${hash}` }, /symbolic link/);
  });
  test('refuses a folder not named by the hash, a config of another hash, and a bad config', () => {
    refused({ hash, config, dir: 'sw/runs/other' }, /not named by its hash/);
    refused({ hash: 'abcdef123456', config, dir: 'sw/runs/abcdef123456' }, /hashes to/);
    refused({ hash, config: { ...config, model: { ...config.model, d: -1 } }, dir: `sw/${hash}` }, /invalid queued config/);
    refused({ hash: '../x', config, dir: 'x' }, /not a config hash/);
    refused(null, /not an object/);
  });
  test('refuses data files outside --runs unless a --data folder allows them', () => {
    const c = resolveConfig({ ...config, data: { paths: [join(outside, 'secret.txt')] } });
    const h = configHash(c);
    refused({ hash: h, config: c, dir: `sw/${h}` }, /data path .*secret\.txt is outside/);
    assert.equal(validateJob({ hash: h, config: c, dir: `sw/${h}` }, root, [outside]).hash, h);
  });
  test('submitting refuses a sweep folder outside the shared runs folder', () => {
    assert.throws(() => relativeRunDir(root, join(outside, 'runs', hash)), /not inside the shared runs folder/);
    assert.equal(relativeRunDir(root, join(root, 'a', 'runs', hash)), `a/runs/${hash}`);
  });
});

describe('queue URL', () => {
  test('the password is never shown; the options carry it', () => {
    const url = 'redis://:s3cret@db.example:6380/2';
    assert.doesNotMatch(redactUrl(url), /s3cret/);
    assert.match(redactUrl(url), /db\.example:6380\/2/);
    const o = redisOptions(url);
    assert.deepEqual([o.host, o.port, o.db, o.password], ['db.example', 6380, 2, 's3cret']);
    assert.throws(() => redisOptions('http://:s3cret@x/0'), (e: Error) => /redis:\/\//.test(e.message) && !e.message.includes('s3cret'));
    assert.throws(() => redisOptions('redis://x:1/abc'), /must be a number/);
  });
});

describe('a worker on a real queue', () => {
  let redis: RedisServer;
  before(async () => { redis = await RedisServer.start(); });
  after(async () => { await redis?.stop(); });
  // polls for up to 10 s; the callers assert afterwards, so a timeout fails with their message
  const until = async (what: () => boolean | Promise<boolean>) => {
    for (let i = 0; i < 400 && !(await what()); i++) await new Promise((d) => setTimeout(d, 25));
  };

  test('refuses escaping jobs at once (no retries) and writes nothing outside --runs', async () => {
    const events: WorkerEvent[] = [];
    const w = startQueueWorker({ url: redis.url, runsRoot: root, onEvent: (e) => events.push(e) });
    const conn = new Redis(redisOptions(redis.url));
    const q = new Queue(QUEUE_NAME, { connection: conn });
    try {
      const bad = [
        { id: 'dotdot', data: { hash, config, dir: `../${outside.split('/').pop()}/${hash}` } },
        { id: 'link', data: { hash, config, dir: `link/${hash}` } },
      ];
      for (const b of bad) await q.add('x', b.data, { jobId: b.id, attempts: 3 });
      const deadline = Date.now() + 20_000;
      for (const b of bad) {
        let state = '';
        while (state !== 'failed' && Date.now() < deadline) {
          state = await (await q.getJob(b.id))!.getState();
          await new Promise((d) => setTimeout(d, 50));
        }
        const job = (await q.getJob(b.id))!;
        assert.equal(state, 'failed', `job ${b.id} was not refused`);
        assert.match(job.failedReason, /refused by worker/);
        assert.equal(job.attemptsMade, 1, 'a refused job is not retried');
      }
      assert.equal(events.filter((e) => e.type === 'refused').length, 2);
      assert.equal(events.filter((e) => e.type === 'start').length, 0);
      assert.deepEqual(readdirSync(outside).sort(), ['secret.txt']);
      assert.ok(!existsSync(join(root, '..', hash)));
    } finally {
      await w.close();
      await q.close();
      conn.disconnect();
    }
  });

  test('a job whose run folder another trainer holds waits for the lock without spending a try, then trains', async () => {
    const events: WorkerEvent[] = [];
    const w = startQueueWorker({ url: redis.url, runsRoot: root, lockRetryMs: 150, onEvent: (e) => events.push(e) });
    const queue = await SweepQueue.open({ url: redis.url, runsRoot: root, attempts: 1 });
    const dir = join(root, 'held', hash);
    mkdirSync(dir, { recursive: true });
    const lock = acquireRunLock(dir, { command: 'a test holding the run' });
    try {
      await queue.enqueue([{ hash, config, dir }]);
      const id = queue.idOf({ hash, config, dir });
      await until(() => events.filter((e) => e.type === 'lock-wait').length >= 2);
      assert.ok(events.filter((e) => e.type === 'lock-wait').length >= 2, JSON.stringify(events));
      assert.equal(events.filter((e) => e.type === 'start').length, 0);
      lock.release();
      await until(() => events.some((e) => e.type === 'finish'));
      // the worker reports 'finish' when the run ends; BullMQ marks the job completed after the
      // processor returns, a moment later
      await until(async () => (await queue.inspect(id)).state === 'completed');
      const j = await queue.inspect(id);
      assert.equal(j.state, 'completed', JSON.stringify(events));
      assert.equal(j.attemptsMade, 1, 'only the run that trained counts as a try (attempts: 1, yet it waited twice)');
      assert.equal(pointStatus(dir, config.train.steps).state, 'done');
    } finally {
      lock.release();
      await w.close();
      await queue.close();
    }
  });

  test('--concurrency 2 trains two points at once in one process, each to the weights it has trained alone', async () => {
    // with bf16 where the CPU has it: the two runs' arithmetic must not leak into each other's steps
    const bf16 = nativeKernels().cpuInfo().bf16;
    const points = [{ 'train.lr': 2e-3 }, { 'train.lr': 3e-3, ...(bf16 ? { 'train.precision': 'bf16' } : {}) }].map((set) => {
      const c = resolveConfig({ ...config, train: { ...config.train, steps: 60, saveEvery: 20, ...Object.fromEntries(Object.entries(set).map(([k, v]) => [k.slice(6), v])) } });
      return { hash: configHash(c), config: c, dir: join(root, 'two', configHash(c)) };
    });
    const events: WorkerEvent[] = [];
    const w = startQueueWorker({ url: redis.url, runsRoot: root, concurrency: 2, threads: 1, onEvent: (e) => events.push(e) });
    const queue = await SweepQueue.open({ url: redis.url, runsRoot: root, attempts: 1 });
    try {
      await queue.enqueue(points);
      await until(async () => (await Promise.all(points.map(async (p) => (await queue.inspect(queue.idOf(p))).state))).every((s) => s === 'completed'));
      for (const p of points) assert.equal((await queue.inspect(queue.idOf(p))).state, 'completed', JSON.stringify(events));
      const order = events.filter((e) => e.type === 'start' || e.type === 'finish').map((e) => e.type);
      assert.deepEqual(order, ['start', 'start', 'finish', 'finish'], 'both points ran at once');
    } finally {
      await w.close();
      await queue.close();
    }
    for (const p of points) {
      const alone = join(root, 'two-alone', p.hash);
      await train({ config: { ...p.config, train: { ...p.config.train, threads: 1 } }, dir: alone });
      assert.ok(checkpointWeights(alone).equals(checkpointWeights(p.dir)), `${p.config.train.precision} point trained beside another differs from it trained alone`);
    }
  });

  test('close() checkpoints the running point and gives it back; another worker resumes it to the end', async () => {
    const long = resolveConfig({ ...config, train: { ...config.train, steps: 400, saveEvery: 50 } });
    const h = configHash(long);
    const dir = join(root, 'giveback', h);
    const first: WorkerEvent[] = [], second: WorkerEvent[] = [];
    const queue = await SweepQueue.open({ url: redis.url, runsRoot: root });
    const a = startQueueWorker({ url: redis.url, runsRoot: root, threads: 1, progressEveryMs: 0, onEvent: (e) => first.push(e) });
    try {
      await queue.enqueue([{ hash: h, config: long, dir }]);
      const id = queue.idOf({ hash: h, config: long, dir });
      let step = 0;
      for (let i = 0; i < 800 && step < 20; i++) {
        step = (await queue.inspect(id)).progress?.step ?? 0;
        await new Promise((d) => setTimeout(d, 10));
      }
      assert.ok(step >= 20, 'the point never reported progress');
      await a.close();
      const back = first.find((e) => e.type === 'given-back');
      assert.ok(back && back.type === 'given-back' && back.step > 0 && back.step < 400, JSON.stringify(first));
      assert.equal((await queue.inspect(id)).state, 'waiting');
      assert.equal(pointStatus(dir, 400).step, back.step, 'checkpointed where it stopped');
      const b = startQueueWorker({ url: redis.url, runsRoot: root, threads: 1, onEvent: (e) => second.push(e) });
      try {
        for (let i = 0; i < 1200 && !second.some((e) => e.type === 'finish'); i++) await new Promise((d) => setTimeout(d, 25));
      } finally {
        await b.close();
      }
      assert.ok(second.some((e) => e.type === 'start' && e.resumed), JSON.stringify(second));
      assert.equal((await queue.inspect(id)).state, 'completed');
      assert.equal(pointStatus(dir, 400).state, 'done');
    } finally {
      await a.close();
      await queue.close();
    }
  });

  test("a dead worker's lock from another host is broken only for the job that worker last trained", async () => {
    const c = resolveConfig({ ...config, train: { ...config.train, seed: 7 } });
    const h = configHash(c);
    const dir = join(root, 'foreign', h);
    mkdirSync(dir, { recursive: true });
    const holder = { pid: 4242, host: 'gone-host', startedAt: new Date().toISOString(), command: 'moelab worker', token: 'f'.repeat(32) };
    writeFileSync(join(dir, 'moelab.lock'), JSON.stringify(holder));
    const events: WorkerEvent[] = [];
    const queue = await SweepQueue.open({ url: redis.url, runsRoot: root, attempts: 1 });
    await queue.enqueue([{ hash: h, config: c, dir }]);
    const id = queue.idOf({ hash: h, config: c, dir });
    // as published by the worker that trained it before dying on gone-host
    await (await queue.queue.getJob(id))!.updateProgress({ step: 1, end: 3, loss: null, tokensPerSecond: null, worker: 'someone-else:1', resumed: false });
    const w = startQueueWorker({ url: redis.url, runsRoot: root, lockRetryMs: 100, onEvent: (e) => events.push(e) });
    try {
      await until(() => events.some((e) => e.type === 'lock-wait'));
      assert.ok(events.some((e) => e.type === 'lock-wait'), 'a foreign lock of another worker is waited for');
      assert.ok(existsSync(join(dir, 'moelab.lock')));
      await (await queue.queue.getJob(id))!.updateProgress({ step: 1, end: 3, loss: null, tokensPerSecond: null, worker: 'gone-host:4242', resumed: false });
      await until(() => events.some((e) => e.type === 'finish'));
      assert.ok(events.some((e) => e.type === 'lock-broken' && e.holder === 'gone-host:4242'), JSON.stringify(events));
      assert.equal(pointStatus(dir, c.train.steps).state, 'done');
    } finally {
      await w.close();
      await queue.close();
    }
  });
});
