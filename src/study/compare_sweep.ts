// compare on a sweep folder: collect its results (writing results.json/.csv), compare, and write
// compare.json beside them for reports and plots.
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { compareResults, type CompareOptions, type Comparison } from './compare.js';
import { writeResults, type SweepResults } from './results.js';

export const COMPARE_JSON = 'compare.json';

export function compareSweep(sweepDir: string, opts: CompareOptions = {}): { results: SweepResults; comparison: Comparison } {
  const results = writeResults(sweepDir);
  const comparison = compareResults(results.results, opts);
  writeFileAtomic(join(results.dir, COMPARE_JSON), JSON.stringify(comparison, null, 2) + '\n');
  return { results, comparison };
}
