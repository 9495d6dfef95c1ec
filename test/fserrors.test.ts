// File-system failures during save, load and lock become sentences: what happened, what to do,
// and what state the checkpoint is in. Each errno is provoked for real where this machine allows:
// ENOTDIR and EISDIR always; EACCES as an unprivileged user (as root, in a child running as
// nobody); ENOSPC and EROFS in a child with its own small tmpfs (needs a mount namespace:
// `unshare -Urm`, or root).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, readdirSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeFsError, FsError } from '../src/io/fserror.js';
import { writeAll } from '../src/io/atomic.js';
import { acquireRunLock } from '../src/io/lock.js';
import { saveCheckpoint, loadCheckpoint, CheckpointError, MODEL_FILE, STATE_FILE } from '../src/train/checkpoint.js';

const CK = new URL('../src/train/checkpoint.js', import.meta.url).href;
const LOCK = new URL('../src/io/lock.js', import.meta.url).href;
const RUNDIR = new URL('../src/train/rundir.js', import.meta.url).href;

function withDir(fn: (root: string, t: TestContext) => void): (t: TestContext) => void {
  return (t) => {
    const root = mkdtempSync(join(tmpdir(), 'moelab-fserr-'));
    try {
      fn(root, t);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  };
}

const filled = (n: number, v: number) => ({ shape: [n], data: new Float32Array(n).fill(v) });
const input = (step: number, n = 4) => ({ model: { w: filled(n, step) }, optimizer: { m: filled(n, step) }, config: { name: 'x' }, state: { step } });

test('describeFsError: what happened, the code, what to do, and the consequence', () => {
  const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', path: 'runs/x/model.safetensors.tmp-1-ab' });
  const e = describeFsError(enospc, 'write checkpoint to', 'runs/x', 'the previous checkpoint is intact');
  assert.ok(e instanceof FsError);
  assert.equal((e as FsError).code, 'ENOSPC');
  assert.equal(e.cause, enospc);
  assert.equal(e.message, 'cannot write checkpoint to runs/x: the disk is full (at runs/x/model.safetensors.tmp-1-ab) (ENOSPC); ' +
    'free some space or choose a location on another disk, then try again; the previous checkpoint is intact');
  assert.match(describeFsError(Object.assign(new Error('x'), { code: 'EWEIRD' }), 'read', 'f').message, /^cannot read f: the system reported x \(EWEIRD\); check the path/);
  const plain = new TypeError('a bug');
  assert.equal(describeFsError(plain, 'read', 'f'), plain, 'errors without an errno pass through');
  assert.equal(describeFsError(e, 'x', 'y'), e, 'not described twice');
  // a real ENOSPC: /dev/full
  const fd = openSync('/dev/full', 'w');
  try {
    assert.throws(() => writeAll(fd, new Uint8Array(10)), (err: unknown) => /^cannot write \/dev\/full: the disk is full \(ENOSPC\)/.test(describeFsError(err, 'write', '/dev/full').message));
  } finally {
    closeSync(fd);
  }
});

test('ENOTDIR: a file where a folder should be', withDir((root) => {
  writeFileSync(join(root, 'file'), 'x');
  const dir = join(root, 'file', 'ck');
  assert.throws(() => saveCheckpoint(dir, input(1)), new RegExp(`^FsError: cannot create checkpoint folder ${dir}: part of the path is a file, not a folder \\(ENOTDIR\\); check the path, or move that file away; no checkpoint was written$`));
  assert.throws(() => loadCheckpoint(dir), (e: unknown) => e instanceof CheckpointError && /cannot open checkpoint directory .*part of the path is a file, not a folder \(ENOTDIR\)/.test((e as Error).message));
  assert.throws(() => acquireRunLock(dir), /^FsError: cannot lock run folder .*file\/ck: part of the path is a file, not a folder .*\(ENOTDIR\)/);
}));

test('EISDIR: a folder where a checkpoint file should be', withDir((root) => {
  const dir = join(root, 'ck');
  saveCheckpoint(dir, input(1));
  rmSync(join(dir, MODEL_FILE));
  mkdirSync(join(dir, MODEL_FILE));
  assert.throws(() => loadCheckpoint(dir), /model\.safetensors is not a regular file \(a folder is in its place\?\): remove it/);
  // refused before the commit point, so the state stays as it was
  assert.throws(() => saveCheckpoint(dir, input(2)), /cannot write checkpoint to .*ck: a folder is in the way where a file should be \(at .*model\.safetensors\) \(EISDIR\); remove or rename that folder; the previous checkpoint is intact/);
  assert.deepEqual(readdirSync(dir).sort(), [MODEL_FILE, 'config.json', 'optimizer.safetensors', STATE_FILE].sort(), 'no temps left');
}));

/** Run `code` (an ES module body) as an unprivileged user; null when that is impossible here. */
function asUnprivileged(code: string): { status: number | null; stdout: string; stderr: string } | null {
  const root = process.getuid?.() === 0;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', ...(root ? { uid: 65534, gid: 65534 } : {}) });
  if (r.error) return null;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('EACCES: a folder we may not write', withDir((root, t) => {
  chmodSync(root, 0o755);
  const dir = join(root, 'ck');
  saveCheckpoint(dir, input(1));
  const hidden = join(root, 'hidden');
  saveCheckpoint(hidden, input(1));
  chmodSync(join(hidden, MODEL_FILE), process.getuid?.() === 0 ? 0o600 : 0o000); // the child cannot read it
  chmodSync(dir, 0o555);
  try {
    const r = asUnprivileged(`
      const { saveCheckpoint, loadCheckpoint } = await import(${JSON.stringify(CK)});
      const { acquireRunLock } = await import(${JSON.stringify(LOCK)});
      const out = {};
      const t = (v) => ({ shape: [4], data: new Float32Array(4).fill(v) });
      try { saveCheckpoint(${JSON.stringify(dir)}, { model: { w: t(2) }, optimizer: { m: t(2) }, config: {}, state: { step: 2 } }); } catch (e) { out.save = e.message; }
      try { acquireRunLock(${JSON.stringify(dir)}); } catch (e) { out.lock = e.message; }
      out.step = loadCheckpoint(${JSON.stringify(dir)}).state.step;
      try { loadCheckpoint(${JSON.stringify(hidden)}); } catch (e) { out.load = e.message; }
      console.log(JSON.stringify(out));`);
    if (!r) {
      t.skip('cannot start a process as another user here');
      return;
    }
    assert.equal(r.stderr, '');
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.match(String(out.save), /^cannot write checkpoint to .*ck: permission denied .*\(EACCES\); check that you may write to \(or read\) this folder and its parents, or choose another location; the previous checkpoint is intact$/);
    assert.match(String(out.lock), /^cannot lock run folder .*ck: permission denied .*\(EACCES\);.*nothing was changed$/);
    assert.equal(out.step, 1, 'readers need no write permission');
    assert.match(String(out.load), /^checkpoint .*hidden: cannot open .*hidden\/model\.safetensors: permission denied \(EACCES\); check that you may write to \(or read\) this folder/);
  } finally {
    chmodSync(dir, 0o755);
  }
}));

/** Run `code` in a child that has its own tmpfs of `kb` KiB mounted at `mnt`; null when mounting is impossible. */
function withTmpfs(mnt: string, kb: number, code: string): { status: number | null; stdout: string; stderr: string } | null {
  const script = `mount -t tmpfs -o size=${kb}k tmpfs "$MNT" || exit 77; exec "$NODE" --input-type=module -e "$CODE"`;
  const env = { ...process.env, MNT: mnt, NODE: process.execPath, CODE: code };
  const r = spawnSync('unshare', ['-Urm', 'sh', '-c', script], { encoding: 'utf8', env });
  if (r.error || r.status === 77 || /unshare:/.test(r.stderr)) return null;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('ENOSPC and EROFS: a full disk keeps the previous checkpoint; a read-only one is named', withDir((root, t) => {
  const mnt = join(root, 'mnt');
  mkdirSync(mnt);
  const r = withTmpfs(mnt, 256, `
    const { saveCheckpoint, loadCheckpoint } = await import(${JSON.stringify(CK)});
    const { acquireRunLock } = await import(${JSON.stringify(LOCK)});
    const { prepareRunDir } = await import(${JSON.stringify(RUNDIR)});
    const { execFileSync } = await import('node:child_process');
    const { readdirSync } = await import('node:fs');
    const dir = ${JSON.stringify(join(mnt, 'ck'))};
    const t = (n, v) => ({ shape: [n], data: new Float32Array(n).fill(v) });
    const out = {};
    saveCheckpoint(dir, { model: { w: t(16, 1) }, optimizer: { m: t(16, 1) }, config: {}, state: { step: 1 } });
    try { saveCheckpoint(dir, { model: { w: t(100000, 2) }, optimizer: { m: t(16, 2) }, config: {}, state: { step: 2 } }); } catch (e) { out.full = e.message; }
    out.afterFull = loadCheckpoint(dir).state.step;
    out.files = readdirSync(dir).sort();
    execFileSync('mount', ['-o', 'remount,ro', ${JSON.stringify(mnt)}]);
    try { saveCheckpoint(dir, { model: { w: t(16, 3) }, optimizer: { m: t(16, 3) }, config: {}, state: { step: 3 } }); } catch (e) { out.ro = e.message; }
    try { acquireRunLock(dir); } catch (e) { out.lock = e.message; }
    try { prepareRunDir(${JSON.stringify(join(mnt, 'new'))}, { resume: false }); } catch (e) { out.prepare = e.message; }
    out.afterRo = loadCheckpoint(dir).state.step;
    console.log(JSON.stringify(out));`);
  if (!r) {
    t.skip('cannot mount a tmpfs in a private mount namespace here (unshare -Urm)');
    return;
  }
  assert.equal(r.stderr, '');
  const out = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.match(String(out.full), /^cannot write checkpoint to .*ck: the disk is full .*\(ENOSPC\); free some space or choose a location on another disk, then try again; the previous checkpoint is intact$/);
  assert.equal(out.afterFull, 1);
  assert.deepEqual(out.files, ['config.json', MODEL_FILE, 'optimizer.safetensors', STATE_FILE].sort(), 'the failed save left no temps');
  assert.match(String(out.ro), /^cannot write checkpoint to .*ck: the file system is read-only .*\(EROFS\); choose a location on a writable file system; the previous checkpoint is intact$/);
  assert.match(String(out.lock), /^cannot lock run folder .*ck: the file system is read-only .*\(EROFS\)/);
  assert.match(String(out.prepare), /^cannot create run folder .*new: the file system is read-only \(EROFS\); choose a location on a writable file system; nothing was written$/);
  assert.equal(out.afterRo, 1);
}));
