// Pieces every built-in task shares: the train/test split rule, seeded draws, sentence splitting,
// and the error a task throws when its data is not installed (the caller skips it with a notice).
import { Rng } from '../../util/random.js';
import type { TaskItem } from '../task_format.js';

/** Every TRAIN_EVERY-th item (index % TRAIN_EVERY == 0) is a train item (the shot pool). */
export const TRAIN_EVERY = 6;

export const splitOf = (index: number): TaskItem['split'] => (index % TRAIN_EVERY === 0 ? 'train' : 'test');

/** A built-in task whose data is not on this machine (e.g. Debian's fortunes not installed). */
export class TaskUnavailableError extends Error {
  constructor(readonly task: string, message: string) {
    super(message);
    this.name = 'TaskUnavailableError';
  }
}

/** `n` of `xs` drawn without replacement, in their original order. */
export function pick<T>(xs: T[], n: number, rng: Rng): T[] {
  const idx = xs.map((_, i) => i);
  for (let i = 0; i < Math.min(n, idx.length); i++) {
    const j = i + rng.int(idx.length - i);
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx.slice(0, n).sort((a, b) => a - b).map((i) => xs[i]);
}

/** Fisher-Yates shuffle in place (from the end), so a class-balanced draw interleaves its classes. */
export function shuffle<T>(xs: T[], rng: Rng): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

/** Puts `gold` at a random position among the distractors. */
export function placeGold(context: string, gold: string, distractors: string[], rng: Rng, index: number): TaskItem {
  const at = rng.int(distractors.length + 1);
  const choices = [...distractors.slice(0, at), gold, ...distractors.slice(at)];
  return { context, choices, gold: at, split: splitOf(index), line: 0 };
}

/** An item with a fixed list of choices (classification tasks). */
export function labelled(context: string, choices: string[], gold: number, index: number): TaskItem {
  return { context, choices: [...choices], gold, split: splitOf(index), line: 0 };
}

/** Whitespace runs as one space; at most `max` characters, cut back to a word end (whole text if shorter). */
export function headChars(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat.length <= max) return flat;
  const cut = flat.lastIndexOf(' ', max);
  return cut > 0 ? flat.slice(0, cut) : flat.slice(0, max);
}

/**
 * Sentences: whitespace runs become one space; a sentence ends at . ! or ? (optionally followed by
 * a closing quote) before whitespace and an upper-case letter or opening quote.
 */
export function splitSentences(text: string): string[] {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.split(/(?<=[.!?]["'”’]?)\s+(?=["'“‘]?[A-Z])/u).map((s) => s.trim()).filter(Boolean);
}

/** Sentences kept for items: 30-200 characters. */
export const usable = (s: string): boolean => s.length >= 30 && s.length <= 200;

/** A class-balanced draw: `perClass` items of each class (all when fewer), shuffled together. */
export function balanced<T>(classes: T[][], perClass: number, rng: Rng): T[] {
  return shuffle(classes.flatMap((xs) => pick(xs, perClass, rng)), rng);
}
