// `moelab eval` end to end on a tiny model trained in the test: the domains suite, a 2-shot task
// with 3 trials (samples logged), result files only under <run>/eval/, and clear refusals.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, readdirSync, existsSync, statSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';

const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
let dir = '';

function run(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const runFiles = (): string[] => readdirSync(join(dir, 'r')).filter((f) => f !== 'eval').sort().map((f) => `${f}:${statSync(join(dir, 'r', f)).mtimeMs}`);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'moelab-evalcli-'));
  const words = ['the', 'model', 'learns', 'to', 'predict', 'next', 'byte', 'of', 'text', 'and', 'experts', 'route', 'tokens'];
  let text = '';
  for (let i = 0; i < 3000; i++) text += words[(i * 7 + (i >> 3)) % words.length] + (i % 11 === 10 ? '.\n' : ' ');
  writeFileSync(join(dir, 'corpus.txt'), text);
  const r = run(['train', '--data', 'corpus.txt', '--out', 'r', '--steps', '8', '--no-progress', '--no-sample', '--set', 'model.d=32', '--set', 'model.layers=2',
    '--set', 'model.heads=2', '--set', 'model.seq=64', '--set', 'train.batch=4', '--set', 'train.warmup=2', '--set', 'train.evalEvery=8', '--set', 'train.evalBatches=1']);
  assert.equal(r.code, 0, r.err);
  const lines: string[] = [];
  for (let i = 0; i < 6; i++) lines.push(JSON.stringify({ context: `the model ${i} learns to`, choices: ['predict', 'route'], gold: 0, split: 'train' }));
  for (let i = 0; i < 8; i++) lines.push(JSON.stringify({ context: `experts ${i}`, choices: ['route', 'predict', 'of'], gold: 0 }));
  writeFileSync(join(dir, 'task.jsonl'), lines.join('\n') + '\n');
});

describe('moelab eval', () => {
  test('--suite domains: every domain scored, results only under <run>/eval/', () => {
    const before = runFiles();
    const metricsBefore = readFileSync(join(dir, 'r', 'metrics.jsonl'), 'utf8');
    const r = run(['eval', '--run', 'r', '--suite', 'domains', '--json']);
    assert.equal(r.code, 0, r.err);
    const rows = r.out.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(rows.map((x) => x.domain), ['in-domain', 'fiction', 'brown', 'licences', 'udhr', 'typescript']);
    for (const x of rows) assert.ok(x.loss > 0 && x.loss < 10 && Math.abs(x.perplexity - Math.exp(x.loss)) < 1e-9 && x.bpb > 0 && x.tokens > 1000, JSON.stringify(x));
    // in-domain is the run's held-out split: the last 10% of the corpus bytes
    const n = statSync(join(dir, 'corpus.txt')).size;
    assert.equal(rows[0].tokens, n - Math.floor(0.9 * n) - 1);
    const saved = JSON.parse(readFileSync(join(dir, 'r', 'eval', 'domains.json'), 'utf8'));
    assert.deepEqual(saved.results.map((x: { domain: string }) => x.domain), rows.map((x) => x.domain));
    // the only other change: one eval_domains line appended to metrics.jsonl (under the run's lock)
    const changed = (fs: string[]) => fs.filter((f) => !f.startsWith('metrics.jsonl:'));
    assert.deepEqual(changed(runFiles()), changed(before), 'eval changed a file of the run');
    const metrics = readFileSync(join(dir, 'r', 'metrics.jsonl'), 'utf8');
    assert.ok(metrics.startsWith(metricsBefore));
    const line = JSON.parse(metrics.slice(metricsBefore.length));
    assert.equal(line.type, 'eval_domains');
    assert.equal(line.step, 8);
    assert.equal(line.file, join('eval', 'domains.json'));
    assert.deepEqual(Object.keys(line.domains), rows.map((x) => x.domain));
    assert.equal(line.domains.fiction.bpb, rows[1].bpb);
    assert.ok(!existsSync(join(dir, 'r', 'moelab.lock')));
    assert.match(r.err, /results written to .*domains\.json; 1 line\(s\) appended to .*metrics\.jsonl/);
    // the table, with a stride
    const t = run(['eval', '--run', 'r', '--suite', 'domains', '--stride', '32', '--data', 'corpus.txt', '--no-save']);
    assert.equal(t.code, 0, t.err);
    assert.match(t.out, /\| domain +\| nats\/token \| perplexity \| bits\/byte \| tokens \| bytes \|/);
    assert.match(t.out, /\| corpus\.txt /);
  });

  test('a 2-shot task with 3 trials: table, JSON, samples and results file', () => {
    const r = run(['eval', '--run', 'r', '--task', 'task.jsonl', '--shots', '2', '--trials', '3', '--seed', '5', '--log-samples', 'samples.jsonl']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /\| task +\| n-shot \| metric +\| +value \| stderr \|/);
    assert.match(r.out, /\| task +\| +2 \| acc +\|/);
    assert.match(r.err, /8 items x 3 trials .* items\/s/);
    const samples = readFileSync(join(dir, 'samples.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(samples.length, 24);
    assert.ok(samples.every((s) => s.context.split('\n\n').length === 3 && s.choices.length === 3 && s.choices[0].continuation === ' route'));
    const res = JSON.parse(readFileSync(join(dir, 'r', 'eval', 'task-task-2shot.json'), 'utf8'));
    assert.equal(res.trials, 3);
    assert.equal(res.items, 8);
    assert.equal(res.perTrial.length, 3);
    for (const m of ['acc', 'acc_norm', 'acc_bytes', 'gold_ll']) assert.ok(Number.isFinite(res.metrics[m].mean) && res.metrics[m].ci95.length === 2, m);
    // --json and --out: same numbers for the same seed, written where asked
    const j = run(['eval', '--run', 'r', '--task', 'task.jsonl', '--shots', '2', '--trials', '3', '--seed', '5', '--json', '--out', 'out.json']);
    assert.equal(j.code, 0, j.err);
    assert.deepEqual(JSON.parse(j.out.trim()).perTrial, res.perTrial);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')).tasks[0].perTrial, res.perTrial);
  });

  test('a 20-step fine-tune writes a new run that records its parent and evaluates', () => {
    const r = run(['finetune', '--run', 'r', '--task', 'task.jsonl', '--out', 'ft', '--steps', '20', '--lr', '3e-3']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /\| task +\| metric +\| +before \| after \(mean\) \| after \(std\) \| seeds \|/);
    assert.match(r.err, /step 20: answer loss/);
    const state = JSON.parse(readFileSync(join(dir, 'ft', 'state.json'), 'utf8')).state;
    assert.equal(state.finetune.parent, join(dir, 'r'));
    assert.equal(state.finetune.losses.length, 20);
    const e = run(['eval', '--run', 'ft', '--task', 'task.jsonl', '--json', '--no-save']);
    assert.equal(e.code, 0, e.err);
    const again = run(['finetune', '--run', 'r', '--task', 'task.jsonl', '--out', 'ft', '--steps', '1']);
    assert.notEqual(again.code, 0);
    assert.match(again.err, /already holds a run/);
    const bad = run(['finetune', '--run', 'r', '--task', 'task.jsonl', '--out', 'ft3', '--freeze', 'heads']);
    assert.match(bad.err, /--freeze takes router, experts, dense/);
    assert.equal(state.finetune.expertDropout, 0);
    const drop = run(['finetune', '--run', 'r', '--task', 'task.jsonl', '--out', 'ft4', '--expert-dropout', '1.5']);
    assert.notEqual(drop.code, 0);
    assert.match(drop.err, /expert dropout must be a number in \[0, 1\), got 1\.5/);
    assert.ok(!existsSync(join(dir, 'ft4')), 'refused before anything was written');
  });

  test('fortune-topic without fortunes is skipped with a notice; with a folder it is evaluated', () => {
    const none = spawnSync(process.execPath, [CLI, 'eval', '--run', 'r', '--task', 'fortune-topic'], { cwd: dir, encoding: 'utf8', env: { ...process.env, MOELAB_FORTUNES_DIR: join(dir, 'no-fortunes') } });
    assert.equal(none.status, 0, none.stderr);
    assert.match(none.stderr, /fortune-topic skipped: no fortune files in .*no-fortunes/);
    assert.match(none.stderr, /nothing left to evaluate/);
    mkdirSync(join(dir, 'fortunes'));
    for (const t of ['computers', 'education', 'food', 'law', 'love', 'medicine', 'politics', 'science', 'sports', 'work']) {
      writeFileSync(join(dir, 'fortunes', t), `One saying about ${t} and more.\n%\nAnother saying about ${t}, longer.\n%\n`);
    }
    const some = spawnSync(process.execPath, [CLI, 'eval', '--run', 'r', '--task', 'fortune-topic', '--task', 'task.jsonl', '--json', '--no-save'], { cwd: dir, encoding: 'utf8', env: { ...process.env, MOELAB_FORTUNES_DIR: join(dir, 'fortunes') } });
    assert.equal(some.status, 0, some.stderr);
    const res = some.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(res.map((x) => [x.task, x.items]), [['fortune-topic', 16], ['task', 8]]);
  });

  test('eval lines: skipped while a trainer holds the lock, kept when training resumes', () => {
    const lockPath = join(dir, 'r', 'moelab.lock');
    writeFileSync(lockPath, JSON.stringify({ pid: process.pid, host: hostname(), startedAt: 'now', command: 'moelab train', token: 'x' }));
    const before = readFileSync(join(dir, 'r', 'metrics.jsonl'), 'utf8');
    const locked = run(['eval', '--run', 'r', '--task', 'task.jsonl']);
    assert.equal(locked.code, 0, locked.err);
    assert.match(locked.err, /no eval line added to metrics\.jsonl: .*being trained by pid \d+ .*metrics\.jsonl was left alone/);
    assert.equal(readFileSync(join(dir, 'r', 'metrics.jsonl'), 'utf8'), before);
    assert.ok(existsSync(join(dir, 'r', 'eval', 'task-task-0shot.json')), 'the result file is written all the same');
    rmSync(lockPath);
    const ok = run(['eval', '--run', 'r', '--task', 'task.jsonl']);
    assert.equal(ok.code, 0, ok.err);
    const evalLines = (text: string) => text.trim().split('\n').map((l) => JSON.parse(l)).filter((o) => o.type === 'eval_task' || o.type === 'eval_domains');
    const withLine = readFileSync(join(dir, 'r', 'metrics.jsonl'), 'utf8');
    const lines = evalLines(withLine);
    assert.ok(lines.length >= 1 && lines.at(-1).type === 'eval_task' && lines.at(-1).step === 8);
    // resume training to step 10: the trainer rewrites metrics.jsonl up to its checkpoint, eval lines kept
    const t = run(['train', '--resume', '--out', 'r', '--steps', '10', '--no-progress', '--no-sample']);
    assert.equal(t.code, 0, t.err);
    const after = readFileSync(join(dir, 'r', 'metrics.jsonl'), 'utf8');
    assert.deepEqual(evalLines(after), lines);
    assert.ok(after.trim().split('\n').some((l) => JSON.parse(l).type === 'train' && JSON.parse(l).step === 10));
  });

  test('bad input is refused with the reason', () => {
    writeFileSync(join(dir, 'bad.jsonl'), '{"context": "a", "choices": ["x"], "gold": 0}\n{"context": "a", "choices": ["x", "y"], "gold": 3}\n');
    let r = run(['eval', '--run', 'r', '--task', 'bad.jsonl']);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /bad\.jsonl:2: field "gold" must be an integer index into choices, 0\.\.1, got 3/);
    r = run(['eval', '--run', 'corpus.txt', '--suite', 'domains']);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /moelab: error: .*(not a checkpoint|not a directory|state\.json|config\.json)/);
    assert.ok(!existsSync(join(dir, 'corpus.txt', 'eval')));
    r = run(['eval', '--run', 'r']);
    assert.match(r.err, /nothing to evaluate/);
    r = run(['eval', '--run', 'r', '--suite', 'nope']);
    assert.match(r.err, /suite 'nope' is neither a built-in suite/);
    r = run(['eval', '--run', 'r', '--suite', 'domains', '--stride', '65']);
    assert.match(r.err, /stride must be an integer in \[1, 64\]/);
  });
});
