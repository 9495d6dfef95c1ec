// A trainer saving in a loop (a child process holding the run lock) while this process loads the
// same run in a loop: no reader error, no writer error, and every load is one whole save.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCheckpoint, readCheckpointConfig, isCheckpoint, recoverCheckpoint, CHECKPOINT_FILES } from '../src/train/checkpoint.js';

const CK = new URL('../src/train/checkpoint.js', import.meta.url).href;
const LOCK = new URL('../src/io/lock.js', import.meta.url).href;

// every value in save number `step` is derived from `step`, so a mix of two saves shows
const WRITER = `
const { saveCheckpoint } = await import(${JSON.stringify(CK)});
const { acquireRunLock } = await import(${JSON.stringify(LOCK)});
const { writeFileSync, mkdirSync } = await import('node:fs');
const dir = process.env.CK_DIR, saves = Number(process.env.CK_SAVES);
mkdirSync(dir);
const lock = acquireRunLock(dir, { command: 'test writer' });
process.stdout.write('locked\\n');
const t = (step, k, n) => ({ shape: [n], data: new Float32Array(n).fill(step * 10 + k) });
for (let step = 1; step <= saves; step++) {
  const n = 512 + (step % 5) * 64; // sizes change between saves too
  saveCheckpoint(dir, { model: { a: t(step, 1, n), b: t(step, 2, 64) }, optimizer: { m: t(step, 3, n) },
    config: { step, pad: 'x'.repeat(step % 7) }, state: { step } }, { lock, hash: step % 2 === 0 });
}
lock.release();
writeFileSync(dir + '.done', 'ok');
`;

test('readers load while a writer saves in a loop: never an error, never a mix, never a write', async () => {
  const root = mkdtempSync(join(tmpdir(), 'moelab-conc-'));
  const dir = join(root, 'run');
  try {
    const child = spawn(process.execPath, ['--input-type=module', '-e', WRITER], {
      env: { ...process.env, CK_DIR: dir, CK_SAVES: '100' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    let running = true;
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => { running = false; res(code); }));
    const tick = () => new Promise((res) => setImmediate(res)); // lets the exit event through

    const deadline = Date.now() + 60_000;
    while (running && !isCheckpoint(dir) && Date.now() < deadline) await tick();
    const steps = new Set<number>();
    let loads = 0, retries = 0;
    while (running && !existsSync(dir + '.done') && Date.now() < deadline) {
      await tick();
      const ck = loadCheckpoint(dir, { loadOptimizer: loads % 3 !== 2 });
      const step = ck.state.step as number;
      assert.equal(ck.config.step, step, 'config.json from the same save');
      assert.equal(ck.config.pad, 'x'.repeat(step % 7));
      const a = ck.model.get('a')!.data as Float32Array;
      assert.equal(a.length, 512 + (step % 5) * 64);
      assert.ok(a.every((v) => v === step * 10 + 1), `model tensor a from save ${step}`);
      assert.ok((ck.model.get('b')!.data as Float32Array).every((v) => v === step * 10 + 2));
      if (ck.optimizer) assert.ok((ck.optimizer.get('m')!.data as Float32Array).every((v) => v === step * 10 + 3), 'optimizer from the same save');
      const c = readCheckpointConfig(dir);
      assert.equal(c.config.step, c.manifest.state.step);
      steps.add(step);
      loads++;
      retries += ck.retries;
    }
    const code = await exited;
    assert.equal(stderr, '', 'the writer reported no error');
    assert.equal(code, 0);
    assert.ok(loads >= 20, `only ${loads} loads ran while the writer saved`);
    assert.ok(steps.size >= 5, `loads saw only ${steps.size} different saves: they did not overlap the writer`);
    assert.equal(loadCheckpoint(dir).state.step, 100);
    console.log(`${loads} loads of ${steps.size} different saves; ${retries} restarts after a save overtook a load`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('kill -9 at random instants of saving: the last committed checkpoint always loads, and the next writer tidies up', async () => {
  const root = mkdtempSync(join(tmpdir(), 'moelab-kill-'));
  const dir = join(root, 'run');
  try {
    let last = 0, completed = 0, removed = 0;
    for (let round = 0; round < 8; round++) {
      // each round continues from the step the previous round left (a resumed trainer)
      const code = WRITER.replace('mkdirSync(dir);', 'mkdirSync(dir, { recursive: true });')
        .replace('for (let step = 1;', `for (let step = ${last + 1};`).replace('step <= saves', 'step <= 100000');
      const child = spawn(process.execPath, ['--input-type=module', '-e', code], { env: { ...process.env, CK_DIR: dir, CK_SAVES: '0' }, stdio: ['ignore', 'pipe', 'ignore'] });
      await new Promise((res) => child.stdout.once('data', res)); // it holds the lock: saves begin now
      await new Promise((res) => setTimeout(res, Math.random() * 300));
      child.kill('SIGKILL');
      await new Promise((res) => child.once('exit', res));
      if (!isCheckpoint(dir)) continue; // killed before its first commit
      const ck = loadCheckpoint(dir); // read-only, whatever instant the kill hit
      const step = ck.state.step as number;
      assert.ok(step >= last, `step ${step} after ${last}`);
      assert.ok((ck.model.get('a')!.data as Float32Array).every((v) => v === step * 10 + 1));
      assert.equal(ck.config.step, step);
      // the next writer (holding the lock) completes a cut-short save and removes orphan temps
      const r = recoverCheckpoint(dir);
      completed += r.completed.length ? 1 : 0;
      removed += r.removed.length ? 1 : 0;
      const left = readdirSync(dir).filter((f) => !(CHECKPOINT_FILES as readonly string[]).includes(f) && !f.startsWith('moelab.lock'));
      assert.deepEqual(left, [], 'only checkpoint files (and the dead writer\'s lock) remain');
      assert.equal(loadCheckpoint(dir).state.step, step);
      last = step;
    }
    assert.ok(last > 0, 'some round committed a checkpoint');
    console.log(`kills: ${completed} hit after a commit (renames completed by the next writer), ${removed} before one (temps removed); last step ${last}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
