// Tasks: the JSONL format and its errors (line and field named), few-shot draws (never the item
// itself, reproducible for a seed), prompts as the harness builds them, an evaluation whose
// metrics agree with its own logged samples, and the built-in tasks' documented shape.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { getTokenizer } from '../src/data/tokenizer.js';
import { parseTask, type TaskItem } from '../src/eval/task_format.js';
import { drawShots, buildContext, DEFAULT_PROMPT } from '../src/eval/fewshot.js';
import { evaluateTask, type SampleRecord } from '../src/eval/task_eval.js';
import { scoreChoices } from '../src/eval/choice.js';
import { builtinTask, BUILTIN_TASK_NAMES, splitSentences, shuffleTestItems } from '../src/eval/builtin_tasks.js';
import { brownGenre } from '../src/eval/tasks/brown_genre.js';
import { resolveTask } from '../src/eval/tasks.js';
import { tinyModel } from './eval_util.js';

const line = (o: unknown): string => JSON.stringify(o);
const item = (i: number, split?: string) => ({ context: `question ${i}?`, choices: ['yes', 'no', 'maybe'], gold: i % 3, ...(split ? { split } : {}) });

describe('task format', () => {
  test('parses items, defaults split to test, skips blank lines', () => {
    const t = parseTask([line(item(0, 'train')), '', line(item(1)), line({ ...item(2), extra: 1 })].join('\n'), 'demo');
    assert.deepEqual(t.items.map((i) => [i.split, i.line, i.gold]), [['train', 1, 0], ['test', 3, 1], ['test', 4, 2]]);
  });

  test('malformed lines name the line and the field', () => {
    const bad = (lines: string[], re: RegExp): void => assert.throws(() => parseTask(lines.join('\n'), 'demo', 'demo.jsonl'), re);
    bad([line(item(0)), '{"context": "a", '], /demo\.jsonl:2: not valid JSON/);
    bad(['[1, 2]'], /demo\.jsonl:1: expected a JSON object/);
    bad([line({ choices: ['a'], gold: 0 })], /demo\.jsonl:1: field "context" is missing/);
    bad([line({ context: 3, choices: ['a'], gold: 0 })], /:1: field "context" must be a string/);
    bad([line(item(0)), line({ context: 'a', choices: 'ab', gold: 0 })], /:2: field "choices" must be an array/);
    bad([line({ context: 'a', choices: [], gold: 0 })], /:1: field "choices" is empty/);
    bad([line({ context: 'a', choices: ['x', 7], gold: 0 })], /:1: field "choices\[1\]" must be a string/);
    bad([line({ context: 'a', choices: ['x', ''], gold: 0 })], /:1: field "choices\[1\]" is empty/);
    bad([line({ context: 'a', choices: ['x', 'y'], gold: 2 })], /:1: field "gold" must be an integer index into choices, 0\.\.1, got 2/);
    bad([line({ context: 'a', choices: ['x', 'y'], gold: -1 })], /field "gold"/);
    bad([line({ context: 'a', choices: ['x', 'y'], gold: 0.5 })], /field "gold"/);
    bad([line({ context: 'a', choices: ['x', 'y'] })], /:1: field "gold" is missing/);
    bad([line({ ...item(0), split: 'dev' })], /:1: field "split" must be "train" or "test", got "dev"/);
    bad(['', '  '], /demo\.jsonl: no items/);
    bad([line(item(0, 'train'))], /every item is in the train split/);
    assert.throws(() => resolveTask('/nonexistent/task.jsonl'), /neither a file nor a built-in task \(next-sentence, last-word, word-polarity, brown-genre, spam, sotu-party, udhr-language, fortune-topic\)/);
  });
});

describe('few-shot', () => {
  const items: TaskItem[] = Array.from({ length: 30 }, (_, i) => ({ ...item(i), split: 'test' as const, line: i + 1 }));
  items.push({ ...items[7], line: 99 }); // a duplicate of item 7: must not be its shot either

  test('shots never hold the item (nor a duplicate of it); same seed -> same shots; seeds differ', () => {
    for (let trial = 0; trial < 25; trial++) {
      items.forEach((it, i) => {
        const s = drawShots(items, it, 5, 1234, trial, i);
        assert.equal(s.length, 5);
        assert.equal(new Set(s).size, 5, 'drawn without replacement');
        assert.ok(!s.some((x) => x === it || x.context === it.context), `trial ${trial} item ${i} has itself as a shot`);
      });
    }
    const a = drawShots(items, items[3], 5, 42, 2, 3), b = drawShots(items, items[3], 5, 42, 2, 3);
    assert.deepEqual(a, b);
    const draws = new Set([0, 1, 2, 3, 4].map((seed) => drawShots(items, items[3], 5, seed, 0, 3).map((x) => x.line).join()));
    assert.ok(draws.size >= 4, 'different seeds draw different shots');
    assert.throws(() => drawShots(items.slice(0, 4), items[0], 5, 1, 0, 0), /--shots 5 needs 5 examples other than the item, but the shot pool has 3/);
  });

  test('the prompt joins shots with the few-shot delimiter and answers with the target delimiter', () => {
    const [q, s1, s2] = [items[0], items[1], items[2]];
    assert.equal(buildContext(q, [s1, s2], DEFAULT_PROMPT), 'question 1? no\n\nquestion 2? maybe\n\nquestion 0?');
    assert.equal(buildContext(q, [s1], { targetDelimiter: ' => ', fewshotDelimiter: '\n###\n' }), 'question 1? => no\n###\nquestion 0?');
    assert.equal(buildContext(q, [], DEFAULT_PROMPT), 'question 0?');
  });
});

describe('evaluateTask', () => {
  const model = tinyModel(64);
  const tok = getTokenizer('bytes');
  const task = parseTask([
    ...Array.from({ length: 6 }, (_, i) => line({ context: `Q${i}:`, choices: ['aa', 'b'], gold: i % 2, split: 'train' })),
    ...Array.from({ length: 10 }, (_, i) => line({ context: `Question number ${i}, answer:`, choices: ['yes', 'no', 'perhaps'], gold: i % 3 })),
    line({ context: 'x'.repeat(200), choices: ['yes', 'no'], gold: 0 }),
  ].join('\n'), 'demo');

  test('metrics agree with the logged samples; truncation is counted; trials resample the shots', () => {
    const samples: SampleRecord[] = [];
    const r = evaluateTask(model, tok, task, { shots: 2, trials: 3, seed: 7, onSample: (s) => samples.push(s) });
    assert.equal(r.items, 11);
    assert.equal(r.trials, 3);
    assert.equal(samples.length, 33);
    assert.equal(r.truncated, 3, 'the 200-character item is cut in every trial');
    for (const s of samples) {
      const lls = s.choices.map((c) => c.logLik);
      assert.equal(s.prediction.acc, lls.indexOf(Math.max(...lls)));
      assert.ok(s.choices.every((c) => c.continuation.startsWith(' ')), 'continuations carry the target delimiter');
      if (!s.truncated) assert.ok(/^Q\d:/.test(s.context) && s.context.split('\n\n').length === 3, s.context);
      // a cut sample logs the cut context every choice read: seq + 1 - longest continuation bytes
      else assert.equal(Buffer.byteLength(s.context), 64 + 1 - Math.max(...s.choices.map((c) => c.tokens)), s.context);
    }
    // re-scoring a cut sample's logged strings (nothing cut now) gives its logged numbers
    const cutSample = samples.find((x) => x.truncated)!;
    const rescored = scoreChoices(model, tok, [{ context: cutSample.context, continuations: cutSample.choices.map((c) => c.continuation) }])[0];
    rescored.forEach((c, k) => {
      assert.equal(c.truncated, false);
      assert.ok(Math.abs(c.logLik - cutSample.choices[k].logLik) <= 1e-5 * Math.abs(c.logLik));
    });
    // re-scoring a logged sample's exact strings gives its logged numbers
    const s0 = samples[4];
    const again = scoreChoices(model, tok, [{ context: s0.context, continuations: s0.choices.map((c) => c.continuation) }])[0];
    assert.deepEqual(again.map((c) => c.logLik), s0.choices.map((c) => c.logLik));
    for (let t = 0; t < 3; t++) {
      const acc = samples.filter((s) => s.trial === t).reduce((a, s) => a + +(s.prediction.acc === s.gold), 0) / 11;
      assert.ok(Math.abs(r.perTrial[t].acc - acc) < 1e-12);
    }
    assert.ok(Math.abs(r.metrics.acc.mean - (r.perTrial[0].acc + r.perTrial[1].acc + r.perTrial[2].acc) / 3) < 1e-12);
    assert.ok(new Set(samples.filter((s) => s.item === 0).map((s) => s.context)).size > 1, 'trials draw different shots');
    assert.ok(Math.abs(r.chance - (10 / 3 + 1 / 2) / 11) < 1e-12);
    // same seed, same numbers
    const again2 = evaluateTask(model, tok, task, { shots: 2, trials: 3, seed: 7 });
    assert.deepEqual(again2.perTrial, r.perTrial);
  });

  test('zero-shot runs one trial (with a notice); bad options are refused', () => {
    const notices: string[] = [];
    const r = evaluateTask(model, tok, task, { shots: 0, trials: 5, onNotice: (m) => notices.push(m) });
    assert.equal(r.trials, 1);
    assert.match(notices.join(), /zero-shot prompts are the same in every trial/);
    assert.equal(evaluateTask(model, tok, task, { shots: 1 }).trials, 25, 'default 25 trials with shots');
    assert.throws(() => evaluateTask(model, tok, task, { shots: -1 }), /shots must be an integer >= 0/);
    assert.throws(() => evaluateTask(model, tok, task, { shots: 7 }), /--shots 7 needs 7 examples/);
  });
});

describe('built-in tasks', () => {
  test('300 items each, 50 train, gold within choices, deterministic, chance as documented', () => {
    const chance = { 'next-sentence': 0.25, 'last-word': 0.25, 'word-polarity': 0.5 };
    for (const name of ['next-sentence', 'last-word', 'word-polarity'] as const) {
      const t = builtinTask(name);
      assert.equal(t.items.length, 300, name);
      assert.equal(t.items.filter((i) => i.split === 'train').length, 50, name);
      for (const it of t.items) {
        assert.ok(it.gold >= 0 && it.gold < it.choices.length && it.choices.every((c) => c.length > 0), `${name}: ${JSON.stringify(it)}`);
        assert.equal(new Set(it.choices).size, it.choices.length, `${name}: repeated choice ${JSON.stringify(it.choices)}`);
        assert.equal(1 / it.choices.length, chance[name]);
      }
      assert.deepEqual(builtinTask(name).items, t.items, `${name} is deterministic`);
      // gold positions are spread over the choices (no position bias to exploit)
      const counts = new Map<number, number>();
      for (const it of t.items) counts.set(it.gold, (counts.get(it.gold) ?? 0) + 1);
      assert.ok(Math.min(...counts.values()) > 300 / t.items[0].choices.length / 2, `${name}: gold positions ${[...counts]}`);
    }
    const brown = builtinTask('brown-genre');
    assert.equal(brown.items.length, 500);
    assert.deepEqual(brown.items[0].choices.slice(0, 3), ['news', 'editorial', 'reviews']);
    assert.equal(brown.items[0].choices.length, 15);
    assert.ok(brown.items.every((it) => it.gold >= 0 && it.context.startsWith('Text: ') && it.context.endsWith('\nGenre:') && it.context.length <= 320 && !/\/(at|nn)\b/.test(it.context)));
    assert.deepEqual(new Set(brown.items.map((it) => it.gold)).size, 15);
    assert.deepEqual(BUILTIN_TASK_NAMES.slice(0, 4), ['next-sentence', 'last-word', 'word-polarity', 'brown-genre']);
    assert.deepEqual(splitSentences('He said "Go." Then he left!  Was it   so? yes.'), ['He said "Go."', 'Then he left!', 'Was it so? yes.']);
  });

  test('test items in a fixed shuffled order: the first 50 mix the classes; train items and the test set unchanged', () => {
    const brown = builtinTask('brown-genre');
    const test50 = brown.items.filter((i) => i.split === 'test').slice(0, 50);
    assert.ok(new Set(test50.map((i) => i.gold)).size >= 10, `--limit 50 sees ${new Set(test50.map((i) => i.gold)).size} of 15 genres`);
    // undoing the shuffle gives the construction order back: train items in place, test items permuted
    const built = shuffleTestItems(brown.items); // a second shuffle of the same test list is a different order
    assert.notDeepEqual(built.map((i) => i.context), brown.items.map((i) => i.context));
    brown.items.forEach((it, k) => { if (it.split === 'train') assert.equal(built[k], it); });
    assert.deepEqual(new Set(built.map((i) => i.context)), new Set(brown.items.map((i) => i.context)));
    // built order is genre order: its first 50 test items hold at most 2 genres, so the shuffle matters
    const raw = brownGenre().filter((i) => i.split === 'test').slice(0, 50);
    assert.ok(new Set(raw.map((i) => i.gold)).size <= 2);
  });
});
