/**
 * Few-shot prompts as lm-evaluation-harness builds them:
 *   context = shot_1.context + td + shot_1.gold_choice + fd + ... + shot_K.gold_choice + fd + item.context
 *   continuation_i = td + choice_i
 * with target delimiter td (default " ") and few-shot delimiter fd (default "\n\n").
 *
 * Shots are drawn without replacement from the task's train items, or, when it has none, from its
 * other test items. Never the item itself, nor any item with the same context (a duplicate line
 * would leak the answer). The draw for (seed, trial, item index) uses its own generator, so the
 * same seed gives the same shots whatever else is evaluated.
 */
import { Rng } from '../util/random.js';
import type { TaskItem } from './task_format.js';

export interface PromptOptions {
  targetDelimiter: string;
  fewshotDelimiter: string;
}

export const DEFAULT_PROMPT: PromptOptions = { targetDelimiter: ' ', fewshotDelimiter: '\n\n' };

const ITEMS_PER_TRIAL = 2 ** 26;

/** K shots for test item `index` (position in the test list) of trial `trial`. */
export function drawShots(pool: TaskItem[], item: TaskItem, k: number, seed: number, trial: number, index: number): TaskItem[] {
  if (k === 0) return [];
  if (!(Number.isSafeInteger(trial) && trial >= 0 && trial < 2 ** 26 && index < ITEMS_PER_TRIAL)) throw new RangeError(`trial ${trial} / item ${index} out of range`);
  const cand: number[] = [];
  for (let i = 0; i < pool.length; i++) if (pool[i] !== item && pool[i].context !== item.context) cand.push(i);
  if (cand.length < k) throw new RangeError(`--shots ${k} needs ${k} examples other than the item, but the shot pool has ${cand.length}`);
  const rng = new Rng(seed, trial * ITEMS_PER_TRIAL + index);
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(cand.length - i);
    [cand[i], cand[j]] = [cand[j], cand[i]];
  }
  return cand.slice(0, k).map((i) => pool[i]);
}

/** The context string of an item primed with its shots. */
export function buildContext(item: TaskItem, shots: TaskItem[], p: PromptOptions): string {
  if (!shots.length) return item.context;
  return shots.map((s) => s.context + p.targetDelimiter + s.choices[s.gold]).join(p.fewshotDelimiter) + p.fewshotDelimiter + item.context;
}
