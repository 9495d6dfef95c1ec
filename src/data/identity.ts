// The identity of a run's data: which files, with which content, in which order. A trainer stores
// it with the run (plain JSON) and, on resume, compares it with the corpus loaded now.
import type { Corpus, CorpusSource } from './corpus.js';

export interface DataIdentity {
  /** Corpus.dataHash: SHA-256 of the ordered file hashes. Equal hashes = the same token stream. */
  hash: string;
  files: CorpusSource[];
}

export function dataIdentity(c: Pick<Corpus, 'dataHash' | 'sources'>): DataIdentity {
  return { hash: c.dataHash, files: c.sources.map((s) => ({ path: s.path, sha256: s.sha256, size: s.size })) };
}

const list = (xs: string[]): string => (xs.length <= 3 ? xs.join(', ') : `${xs.slice(0, 3).join(', ')} and ${xs.length - 3} more`);

/**
 * Null when `now` holds the same data as `before` (same contents in the same order, wherever the
 * files now live); otherwise one sentence saying what changed, by path.
 */
export function describeDataChange(before: DataIdentity, now: DataIdentity): string | null {
  if (before.hash === now.hash) return null;
  const was = new Map(before.files.map((f) => [f.path, f.sha256]));
  const is = new Map(now.files.map((f) => [f.path, f.sha256]));
  const changed = now.files.filter((f) => was.has(f.path) && was.get(f.path) !== f.sha256).map((f) => f.path);
  const added = now.files.filter((f) => !was.has(f.path)).map((f) => f.path);
  const removed = before.files.filter((f) => !is.has(f.path)).map((f) => f.path);
  const parts: string[] = [];
  if (changed.length) parts.push(`${changed.length} file(s) changed (${list(changed)})`);
  if (added.length) parts.push(`${added.length} file(s) added (${list(added)})`);
  if (removed.length) parts.push(`${removed.length} file(s) removed (${list(removed)})`);
  if (!parts.length) parts.push('the same files are read in a different order');
  return `the data differs from the run's: ${parts.join('; ')}`;
}
