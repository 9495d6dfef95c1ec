import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireRunLock, readRunLock, RunLockedError, LOCK_FILE, type LockHolder } from '../src/io/lock.js';

const LOCK = new URL('../src/io/lock.js', import.meta.url).href;

function withDir(fn: (dir: string) => void | Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'moelab-lock-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

function lockedError(fn: () => unknown, re: RegExp): RunLockedError {
  let err: RunLockedError | undefined;
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof RunLockedError, `RunLockedError expected, got ${e}`);
    assert.match((e as Error).message, re);
    err = e as RunLockedError;
    return true;
  });
  return err!;
}

const holderOf = (dir: string): LockHolder => JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as LockHolder;

/** A pid that belonged to a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

function writeLock(dir: string, over: Partial<LockHolder>): void {
  const h: LockHolder = { pid: deadPid(), host: hostname(), startedAt: '2026-01-01T00:00:00.000Z', command: 'moelab train old', token: 'f'.repeat(32), ...over };
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify(h));
}

test('acquire, refuse a second holder naming the first, release', withDir((dir) => {
  const lock = acquireRunLock(dir, { command: 'moelab train --out x' });
  const h = holderOf(dir);
  assert.equal(h.pid, process.pid);
  assert.equal(h.host, hostname());
  assert.equal(h.command, 'moelab train --out x');
  assert.ok(!Number.isNaN(Date.parse(h.startedAt)));
  assert.ok(lock.held());
  const e = lockedError(() => acquireRunLock(dir), new RegExp(`${dir} is being trained by pid ${process.pid} on host ${hostname()} since ${h.startedAt} \\(moelab train --out x\\) \\(this process\\)\\. Wait for it`));
  assert.equal(e.holder?.pid, process.pid);
  lock.release();
  assert.equal(existsSync(join(dir, LOCK_FILE)), false, 'release removes the lock');
  assert.deepEqual(readdirSync(dir), [], 'no temp files left');
  lock.release(); // idempotent
  const again = acquireRunLock(dir);
  assert.ok(again.held());
  again.release();
}));

test('processes racing for the lock: exactly one wins, the others name it', withDir(async (dir) => {
  const start = Date.now() + 600;
  const code = `
    const { acquireRunLock } = await import(${JSON.stringify(LOCK)});
    while (Date.now() < ${start}) {}
    try {
      const lock = acquireRunLock(${JSON.stringify(dir)}, { command: 'racer ' + process.pid });
      console.log(JSON.stringify({ won: process.pid }));
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500);
      lock.release();
    } catch (e) { console.log(JSON.stringify({ lost: process.pid, name: e.name, message: e.message })); }`;
  const run = () => new Promise<Record<string, unknown>>((res, rej) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('exit', () => { try { res(JSON.parse(out)); } catch (e) { rej(new Error(`bad output ${out}: ${e}`)); } });
  });
  const results = await Promise.all([run(), run(), run(), run()]);
  const winners = results.filter((r) => r.won);
  assert.equal(winners.length, 1, JSON.stringify(results));
  for (const r of results.filter((x) => x.lost)) {
    assert.equal(r.name, 'RunLockedError', String(r.message));
    assert.match(String(r.message), new RegExp(`is being trained by pid ${winners[0].won} on host .* \\(racer ${winners[0].won}\\)`));
  }
  assert.equal(existsSync(join(dir, LOCK_FILE)), false, 'the winner released it');
}));

test('a stale lock (dead pid, same host) is taken over, also when several processes race for it', withDir(async (dir) => {
  writeLock(dir, {});
  const lock = acquireRunLock(dir);
  assert.equal(holderOf(dir).pid, process.pid);
  lock.release();

  writeLock(dir, {});
  const start = Date.now() + 600;
  const code = `
    const { acquireRunLock } = await import(${JSON.stringify(LOCK)});
    while (Date.now() < ${start}) {}
    try {
      const lock = acquireRunLock(${JSON.stringify(dir)});
      console.log('won');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500);
      lock.release();
    } catch (e) { console.log(e.name); }`;
  const run = () => new Promise<string>((res) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('exit', () => res(out.trim()));
  });
  const results = await Promise.all([run(), run(), run(), run()]);
  assert.deepEqual(results.sort(), ['RunLockedError', 'RunLockedError', 'RunLockedError', 'won']);
}));

test('a pid reused by another process, or a lock from another boot, is stale', { skip: !existsSync('/proc/self/stat') && 'needs /proc' }, withDir((dir) => {
  writeLock(dir, { pid: process.pid, procStart: '1' }); // our pid, but a process started at another time
  acquireRunLock(dir).release();
  writeLock(dir, { pid: process.pid, bootId: 'another-boot' });
  acquireRunLock(dir).release();
  // the same pid and start time is this very process: not stale
  const mine = acquireRunLock(dir);
  lockedError(() => acquireRunLock(dir), /\(this process\)/);
  mine.release();
}));

test('a lock held from another host is not stolen: the message says how to break it', withDir((dir) => {
  writeLock(dir, { host: 'gpu-box-7', pid: 4321 });
  const before = readFileSync(join(dir, LOCK_FILE), 'utf8');
  lockedError(() => acquireRunLock(dir), new RegExp(`is being trained by pid 4321 on host gpu-box-7 since 2026-01-01T00:00:00.000Z \\(moelab train old\\)\\. ` +
    `moelab cannot check from host ${hostname()} whether that process is still running\\. If it is not, remove ${join(dir, LOCK_FILE)} and try again`));
  assert.equal(readFileSync(join(dir, LOCK_FILE), 'utf8'), before);
}));

test('an unreadable lock file is "being created" while fresh and taken over once old', withDir((dir) => {
  writeFileSync(join(dir, LOCK_FILE), '');
  lockedError(() => acquireRunLock(dir), /is locked .* could not be taken over; try again/);
  const old = new Date(Date.now() - 60_000);
  utimesSync(join(dir, LOCK_FILE), old, old);
  acquireRunLock(dir).release();
}));

test('a broken lock is noticed before saving; release leaves the new holder alone', withDir((dir) => {
  const lock = acquireRunLock(dir);
  lock.assertHeld();
  writeLock(dir, { host: 'elsewhere', pid: 99 }); // someone removed ours and another writer took it
  assert.equal(lock.held(), false);
  assert.throws(() => lock.assertHeld(), /lost the lock on .*now belongs to pid 99 on host elsewhere.*stopping without writing/);
  lock.release();
  assert.equal(holderOf(dir).host, 'elsewhere');
}));

test('orphaned lock temp files are swept once old', withDir((dir) => {
  const orphan = join(dir, `${LOCK_FILE}.tmp-123-abcd`);
  const fresh = join(dir, `${LOCK_FILE}.tmp-124-abcd`);
  writeFileSync(orphan, '{}');
  writeFileSync(fresh, '{}');
  const old = new Date(Date.now() - 60_000);
  utimesSync(orphan, old, old);
  const lock = acquireRunLock(dir);
  assert.equal(existsSync(orphan), false);
  assert.equal(existsSync(fresh), true, 'may belong to a process trying right now');
  lock.release();
}));

test('a folder that does not exist: a clear error', () => {
  assert.throws(() => acquireRunLock('/nonexistent-moelab/run'), /cannot lock run folder \/nonexistent-moelab\/run: .*\(ENOENT\)/);
});

test('readers can see who trains a run, without touching the lock', withDir((dir) => {
  assert.equal(readRunLock(dir), null);
  const lock = acquireRunLock(dir, { command: 'moelab train' });
  assert.deepEqual(readRunLock(dir), { holder: lock.holder, state: 'training' });
  lock.release();
  writeLock(dir, {});
  assert.equal(readRunLock(dir)?.state, 'stale');
  writeLock(dir, { host: 'elsewhere' });
  assert.equal(readRunLock(dir)?.state, 'unknown');
  assert.equal(readRunLock(dir)?.holder?.host, 'elsewhere');
  const before = readFileSync(join(dir, LOCK_FILE), 'utf8');
  writeFileSync(join(dir, LOCK_FILE), '');
  assert.deepEqual(readRunLock(dir), { holder: null, state: 'unknown' });
  writeFileSync(join(dir, LOCK_FILE), before);
  assert.deepEqual(readdirSync(dir), [LOCK_FILE]);
}));
