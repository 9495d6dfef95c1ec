// Folder walking: every real file read once, symlink loops not followed, duplicates named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, symlinkSync, linkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getTokenizer } from '../src/data/tokenizer.js';
import { loadCorpus, resolveCorpusFiles, CorpusError } from '../src/data/corpus.js';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'moelab-walk-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('walk: a symlink loop inside a data folder is not followed; each file read once', () => {
  withDir((dir) => {
    const data = join(dir, 'data');
    mkdirSync(join(data, 'sub'), { recursive: true });
    writeFileSync(join(data, 'a.txt'), 'alpha\n');
    writeFileSync(join(data, 'sub', 'b.txt'), 'beta\n');
    symlinkSync(data, join(data, 'sub', 'loop')); // data/sub/loop -> data
    symlinkSync('..', join(data, 'sub', 'up')); // relative loop: data/sub/up -> data
    const r = resolveCorpusFiles([data]);
    assert.deepEqual(r.files, [join(data, 'a.txt'), join(data, 'sub', 'b.txt')]);
    const loops = r.notices.filter((n) => n.startsWith('symlink loop:'));
    assert.equal(loops.length, 2, r.notices.join('\n'));
    assert.match(loops[0], /symlink loop: .*sub\/loop leads back to .*data, which is being read; not followed/);
    const c = loadCorpus([data], getTokenizer('bytes'), { cache: false });
    assert.equal(getTokenizer('bytes').decode(c.tokens), 'alpha\nbeta\n');
    assert.deepEqual(c.notices, r.notices);
  });
});

test('walk: symlink chains that never reach a file (ELOOP) are named, not read or crashed on', () => {
  withDir((dir) => {
    writeFileSync(join(dir, 'a.txt'), 'alpha\n');
    symlinkSync(join(dir, 'y.txt'), join(dir, 'x.txt'));
    symlinkSync(join(dir, 'x.txt'), join(dir, 'y.txt'));
    const r = resolveCorpusFiles([dir]);
    assert.deepEqual(r.files, [join(dir, 'a.txt')]);
    assert.equal(r.notices.length, 2);
    assert.match(r.notices[0], /symlink loop: .*x\.txt never reaches a real file or folder; skipped/);
    assert.throws(() => resolveCorpusFiles([join(dir, 'x.txt')]), (e: unknown) => e instanceof CorpusError && /data path is a symlink loop .*x\.txt/.test((e as Error).message));
  });
});

test('walk: the same file or folder reached by several paths is read once, with a notice', () => {
  withDir((dir) => {
    const data = join(dir, 'data');
    mkdirSync(join(data, 'real'), { recursive: true });
    writeFileSync(join(data, 'real', 'a.txt'), 'alpha\n');
    writeFileSync(join(data, 'real', 'b.txt'), 'beta\n');
    symlinkSync(join(data, 'real'), join(data, 'z-alias')); // a second name for the folder
    symlinkSync(join(data, 'real', 'a.txt'), join(data, 'link.txt')); // a second name for a file
    linkSync(join(data, 'real', 'b.txt'), join(data, 'hard.txt')); // a hard link
    const r = resolveCorpusFiles([data]);
    // hard.txt and link.txt come first in name order, so they are the names kept
    assert.deepEqual(r.files, [join(data, 'hard.txt'), join(data, 'link.txt')]);
    assert.ok(r.notices.some((n) => /z-alias is the same folder as .*real, already read; not read again/.test(n)), r.notices.join('\n'));
    assert.ok(r.notices.some((n) => /2 files were reached a second time .* read only once/.test(n)), r.notices.join('\n'));
    const c = loadCorpus([data], getTokenizer('bytes'), { cache: false });
    assert.equal(getTokenizer('bytes').decode(c.tokens), 'beta\nalpha\n');

    // the same file given twice on the command line, by different spellings
    const f = join(data, 'real', 'a.txt');
    const r2 = resolveCorpusFiles([f, join(data, 'real', '..', 'real', 'a.txt'), join(data, 'link.txt')]);
    assert.deepEqual(r2.files, [f]);
    assert.equal(r2.notices.length, 2);
    assert.match(r2.notices[0], /1 file was reached a second time .* e\.g\. .*real\/a\.txt is .*real\/a\.txt/);
    // a folder given twice: read once; a folder whose files were all read already is no error
    const r3 = resolveCorpusFiles([join(data, 'real'), join(data, 'z-alias'), join(data, 'real', 'b.txt')]);
    assert.deepEqual(r3.files, [join(data, 'real', 'a.txt'), join(data, 'real', 'b.txt')]);
    assert.equal(r3.notices.length, 2);
    assert.throws(() => loadCorpus([join(dir, 'nothing-here')], getTokenizer('bytes'), { cache: false }), /data path not found/);
  });
});
