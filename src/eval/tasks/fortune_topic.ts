/**
 * fortune-topic: the topic (file name) of a quote from Debian's `fortunes` package (BSD), read from
 * /usr/share/games/fortunes, or the folder in MOELAB_FORTUNES_DIR or the `fortunesDir` option.
 * Topics: FORTUNE_TOPICS (ten files of the `fortunes` package); entries are separated by lines
 * holding only `%`; whitespace runs become one space; entries of 20-300 characters kept. Context =
 * `Quote: <entry>\nTopic:`, choices = the ten topic names in the order below. 30 entries of each
 * topic drawn at random (all when fewer), shuffled together. 300 items; chance 10%.
 * When the folder or any topic file is missing, the task is unavailable (TaskUnavailableError:
 * callers skip it with a notice), never half-built.
 * Test items are served in a fixed shuffled order (builtin_tasks.ts shuffleTestItems), so --limit N
 * takes a class-mixed sample.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../../util/random.js';
import type { TaskItem } from '../task_format.js';
import { balanced, labelled, TaskUnavailableError } from './common.js';

export const DEFAULT_FORTUNES_DIR = '/usr/share/games/fortunes';
export const FORTUNE_TOPICS = ['computers', 'education', 'food', 'law', 'love', 'medicine', 'politics', 'science', 'sports', 'work'] as const;
const PER_TOPIC = 30;

/** The fortunes folder in effect: the option, else $MOELAB_FORTUNES_DIR, else the Debian path. */
export function fortunesDir(dir?: string): string {
  return dir ?? (process.env.MOELAB_FORTUNES_DIR || DEFAULT_FORTUNES_DIR);
}

/** Entries of one fortune file: split at `%` lines, whitespace collapsed, 20-300 characters. */
export function fortuneEntries(text: string): string[] {
  return text.split(/^%[ \t]*$/m).map((e) => e.replace(/\s+/g, ' ').trim()).filter((e) => e.length >= 20 && e.length <= 300);
}

export function fortuneTopic(dir?: string): TaskItem[] {
  const root = fortunesDir(dir);
  const missing: string[] = [];
  const byTopic = FORTUNE_TOPICS.map((t, k) => {
    try {
      return fortuneEntries(readFileSync(join(root, t), 'utf8')).map((text) => ({ k, text }));
    } catch {
      missing.push(t);
      return [];
    }
  });
  if (missing.length) {
    const what = missing.length === FORTUNE_TOPICS.length ? `no fortune files in ${root}` : `${root} lacks the topic file(s) ${missing.join(', ')}`;
    throw new TaskUnavailableError('fortune-topic', `fortune-topic skipped: ${what} (install Debian's fortunes package, apt-get install fortunes, or point MOELAB_FORTUNES_DIR at a folder holding ${FORTUNE_TOPICS.join(', ')})`);
  }
  const empty = FORTUNE_TOPICS.filter((_, k) => byTopic[k].length === 0);
  if (empty.length) throw new TaskUnavailableError('fortune-topic', `fortune-topic skipped: no entries of 20-300 characters in ${empty.map((t) => join(root, t)).join(', ')}`);
  return balanced(byTopic, PER_TOPIC, new Rng(17, 0)).map((x, n) => labelled(`Quote: ${x.text}\nTopic:`, [...FORTUNE_TOPICS], x.k, n));
}
