/**
 * The custom task format: JSONL, one multiple-choice item per line,
 *   {"context": str, "choices": [str, ...], "gold": int, "split"?: "train" | "test"}
 * `gold` indexes `choices` (0-based); items without `split` are test items; train items form the
 * pool few-shot examples are drawn from. Blank lines are skipped and other fields are ignored.
 * Every problem names the file, the line and the field.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

export interface TaskItem {
  context: string;
  choices: string[];
  gold: number;
  split: 'train' | 'test';
  /** 1-based line in the source (0 for built-in tasks' generated items). */
  line: number;
}

export interface Task {
  name: string;
  /** Where the items came from (a path or a built-in task's description). */
  source: string;
  items: TaskItem[];
}

export class TaskFormatError extends Error {}

/** Parses JSONL task text; `where` names the source in errors. */
export function parseTask(text: string, name: string, where = name): Task {
  const items: TaskItem[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = i + 1;
    if (!raw.trim()) return;
    const bad = (field: string, rule: string): never => {
      throw new TaskFormatError(`${where}:${line}: field "${field}" ${rule}`);
    };
    let o: unknown;
    try {
      o = JSON.parse(raw);
    } catch (e) {
      throw new TaskFormatError(`${where}:${line}: not valid JSON (${(e as Error).message})`);
    }
    if (!o || typeof o !== 'object' || Array.isArray(o)) throw new TaskFormatError(`${where}:${line}: expected a JSON object {"context", "choices", "gold"}`);
    const r = o as Record<string, unknown>;
    if (typeof r.context !== 'string') bad('context', r.context === undefined ? 'is missing' : 'must be a string');
    if (!Array.isArray(r.choices)) bad('choices', r.choices === undefined ? 'is missing' : 'must be an array of strings');
    const choices = r.choices as unknown[];
    if (choices.length === 0) bad('choices', 'is empty: an item needs at least one choice');
    choices.forEach((c, k) => {
      if (typeof c !== 'string') bad(`choices[${k}]`, 'must be a string');
      if (c === '') bad(`choices[${k}]`, 'is empty (acc_norm divides by its length)');
    });
    if (r.gold === undefined) bad('gold', 'is missing');
    if (!Number.isSafeInteger(r.gold) || (r.gold as number) < 0 || (r.gold as number) >= choices.length) {
      bad('gold', `must be an integer index into choices, 0..${choices.length - 1}, got ${JSON.stringify(r.gold)}`);
    }
    if (r.split !== undefined && r.split !== 'train' && r.split !== 'test') bad('split', `must be "train" or "test", got ${JSON.stringify(r.split)}`);
    items.push({ context: r.context as string, choices: choices as string[], gold: r.gold as number, split: (r.split as 'train' | 'test' | undefined) ?? 'test', line });
  });
  if (!items.length) throw new TaskFormatError(`${where}: no items (expected one JSON object per line)`);
  if (!items.some((it) => it.split === 'test')) throw new TaskFormatError(`${where}: every item is in the train split: nothing to evaluate (items without "split" are test items)`);
  return { name, source: where, items };
}

/** Reads a JSONL task file; its name is the file name without .jsonl. */
export function loadTaskFile(path: string): Task {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new TaskFormatError(`task file ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (e as Error).message}`);
  }
  return parseTask(text, basename(path).replace(/\.jsonl?$/, ''), path);
}
