// The README's library example, as a user would paste it: type-checked against the published
// declarations (dist/src/index.d.ts, under the package name 'moelab'), then run in a fresh folder
// with fewer steps. Guards the first program a user writes against drift in the API it shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';

const ROOT = process.cwd();

/** The first ```ts block after the "## Library" heading. */
function libraryExample(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Library\n'));
  const m = /```ts\n([\s\S]*?)```/.exec(section);
  assert.ok(m, 'README has a ```ts block under ## Library');
  return m[1];
}

test("the README's library example type-checks against the package's declarations and runs", () => {
  const code = libraryExample();
  assert.match(code, /from 'moelab'/);
  const dir = mkdtempSync(join(tmpdir(), 'moelab-readme-'));
  const file = join(dir, 'example.mts');
  writeFileSync(file, code);

  const program = ts.createProgram([file], {
    strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext, skipLibCheck: true,
    baseUrl: ROOT, paths: { moelab: [join(ROOT, 'dist', 'src', 'index.d.ts')] },
    types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')],
  });
  const errors = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  assert.deepEqual(errors, [], 'the example does not type-check');

  // the same program, 20 steps instead of 200, importing the built package
  const short = code.replace("'train.steps': 200", "'train.steps': 20");
  assert.notEqual(short, code, "the example sets 'train.steps': 200");
  const js = ts.transpileModule(short, { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } }).outputText
    .replace("from 'moelab'", `from '${pathToFileURL(join(ROOT, 'dist', 'src', 'index.js')).href}'`);
  writeFileSync(join(dir, 'example.mjs'), js);
  const words = ['the', 'model', 'learns', 'to', 'route', 'tokens', 'to', 'experts', 'and', 'back'];
  let text = '';
  for (let i = 0; i < 6000; i++) text += words[(i * 7 + (i >> 3)) % words.length] + (i % 11 === 10 ? '.\n' : ' ');
  writeFileSync(join(dir, 'corpus.txt'), text);
  writeFileSync(join(dir, 'held-out.txt'), text.slice(0, 4000));
  const r = spawnSync(process.execPath, ['example.mjs'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0], /^\d+$/, 'FLOPs per token');
  assert.match(lines[1], /^20 \d+\.\d+/, 'the eval listener saw the last step');
  assert.match(r.stdout, /loss: \d+\.\d+/, 'evaluateFile result');
  assert.match(r.stdout, /bpb: \d+\.\d+/);
  assert.ok(lines.at(-1)!.length > 0, 'generated text');
});
