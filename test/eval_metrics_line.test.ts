// The eval lines `moelab eval` appends to metrics.jsonl: typed, appended only under the run's lock
// (skipped with the reason while a trainer holds it), never fused with a line a killed trainer cut
// short, and kept by the resume truncation.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { appendEvalLines, domainsLine, taskLine } from '../src/eval/metrics_line.js';
import { metricsUpTo } from '../src/train/metrics_log.js';
import { LOCK_FILE } from '../src/io/lock.js';
import type { TaskResult } from '../src/eval/task_eval.js';

const summary = (mean: number) => ({ mean, stderr: 0.01, std: 0, ci95: [mean, mean] as [number, number] });
const result = { task: 't', shots: 2, trials: 3, items: 10, chance: 0.5, metrics: { acc: summary(0.6), acc_norm: summary(0.55), acc_bytes: summary(0.5), gold_ll: summary(-3) } } as unknown as TaskResult;
const dom = { domain: 'fiction', source: 's', loss: 2, perplexity: Math.exp(2), bpb: 1.5, tokens: 100, bytes: 120, file: 'fiction', windows: 1 };

function runDir(metrics: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'moelab-evalline-'));
  writeFileSync(join(dir, 'metrics.jsonl'), metrics);
  return dir;
}

const TRAIN = '{"type":"start","step":0}\n{"type":"train","step":5,"loss":3}\n{"type":"checkpoint","step":5,"reason":"end"}\n';

describe('eval lines in metrics.jsonl', () => {
  test('typed lines with the evaluated step, appended after the trainer\'s lines; the lock is released', () => {
    const dir = runDir(TRAIN);
    const lines = [domainsLine(5, 'eval/domains.json', 'domains', null, [dom as never], 'T'), taskLine(5, 'eval/task-t-2shot.json', result, 'T')];
    assert.equal(appendEvalLines(dir, lines), null);
    const text = readFileSync(join(dir, 'metrics.jsonl'), 'utf8');
    assert.ok(text.startsWith(TRAIN));
    const added = text.slice(TRAIN.length).trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(added[0], { type: 'eval_domains', step: 5, time: 'T', file: 'eval/domains.json', suite: 'domains', stride: null, domains: { fiction: { loss: 2, perplexity: Math.exp(2), bpb: 1.5, tokens: 100 } } });
    assert.deepEqual(added[1], {
      type: 'eval_task', step: 5, time: 'T', file: 'eval/task-t-2shot.json', task: 't', shots: 2, trials: 3, items: 10, chance: 0.5,
      metrics: { acc: { mean: 0.6, stderr: 0.01 }, acc_norm: { mean: 0.55, stderr: 0.01 }, acc_bytes: { mean: 0.5, stderr: 0.01 }, gold_ll: { mean: -3, stderr: 0.01 } },
    });
    assert.ok(!existsSync(join(dir, LOCK_FILE)), 'the lock was released');
    // a resume from this checkpoint (step 5) or a later one keeps them; only later steps are dropped
    assert.equal(metricsUpTo(text, 5), text);
    assert.equal(metricsUpTo(text + '{"type":"train","step":9}\n', 7), text);
  });

  test('while a trainer holds the lock: nothing is written and the reason names the holder', () => {
    const dir = runDir(TRAIN);
    // a live process on this host holds it (our parent: alive for the whole test)
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: process.ppid, host: hostname(), startedAt: 'then', command: 'moelab train', token: 'x' }));
    const why = appendEvalLines(dir, [taskLine(5, 'eval/t.json', result)]);
    assert.match(why ?? '', new RegExp(`being trained by pid ${process.ppid} .*moelab train.*metrics\\.jsonl was left alone`));
    assert.equal(readFileSync(join(dir, 'metrics.jsonl'), 'utf8'), TRAIN);
    assert.ok(existsSync(join(dir, LOCK_FILE)), "the trainer's lock is untouched");
  });

  test('a lock left by a dead trainer is taken over like a writer does', () => {
    const dir = runDir(TRAIN);
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), startedAt: 'then', command: 'moelab train', token: 'x' }));
    assert.equal(appendEvalLines(dir, [taskLine(5, 'eval/t.json', result)]), null);
    assert.match(readFileSync(join(dir, 'metrics.jsonl'), 'utf8'), /"type":"eval_task"/);
    assert.ok(!existsSync(join(dir, LOCK_FILE)));
  });

  test('a line cut short by a killed trainer is closed first, so the eval line parses and survives a resume', () => {
    const cut = TRAIN + '{"type":"train","st';
    const dir = runDir(cut);
    assert.equal(appendEvalLines(dir, [taskLine(5, 'eval/t.json', result)]), null);
    const text = readFileSync(join(dir, 'metrics.jsonl'), 'utf8');
    assert.ok(text.startsWith(cut + '\n'));
    const kept = metricsUpTo(text, 5).trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(kept.map((o) => o.type), ['start', 'train', 'checkpoint', 'eval_task']);
  });

  test('a folder that cannot be locked gives a reason, not a crash', () => {
    const why = appendEvalLines(join(tmpdir(), 'moelab-no-such-run-dir', 'x'), [taskLine(1, 'f', result)]);
    assert.match(why ?? '', /cannot lock .*metrics\.jsonl was left alone/);
    assert.equal(appendEvalLines(join(tmpdir(), 'whatever'), []), null, 'nothing to add: nothing done');
  });
});
