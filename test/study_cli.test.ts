// moelab study: --dry-run measures and lists the plan without training or writing anything; a tiny
// peer-isoflop study end to end through the library (d 16 models, a 15 s budget, or what a slower
// machine says it needs): runs, fit, plots,
// report.md with a verdict computed from the runs, and a re-run that resumes the kept plan.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runStudy, readStudyPlan, pngSize, StudyBudgetError, type StudyEvent } from '../src/index.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
let dir = '';
const TINY_SET = ['model.d=16', 'model.heads=2', 'model.seq=16', 'train.batch=2', 'train.evalBatches=2'];
const tinySet = (): Record<string, unknown> => Object.fromEntries(TINY_SET.map((kv) => { const [k, v] = kv.split('='); return [k, Number(v)]; }));

function run(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'moelab-study-'));
  const words = ['the', 'model', 'learns', 'to', 'predict', 'next', 'byte', 'of', 'text', 'and', 'experts', 'route', 'tokens'];
  let text = '';
  for (let i = 0; i < 4000; i++) text += words[(i * 7 + (i >> 3)) % words.length] + (i % 11 === 10 ? '.\n' : ' ');
  writeFileSync(join(dir, 'corpus.txt'), text);
});

describe('moelab study', () => {
  test('--dry-run lists the plan (measured step times, budgets, runs with steps) and writes nothing', () => {
    const r = run(['study', 'sparsity', '--dry-run', '--budget', '10m', '--out', 'st', '--data', 'corpus.txt', ...TINY_SET.flatMap((s) => ['--set', s])]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^study sparsity: new plan; budget 600 s = calibration [\d.]+ s \+ training \d+ s \(of \d+\) \+ report 27 s\n/);
    assert.match(r.out, /compute budgets: [\d.e+]+, [\d.e+]+ FLOPs; seeds \[0,1\]/);
    assert.equal((r.out.match(/^ {2}measured moe-E\d+-k2-d16-L2: [\d.]+ ms\/step/gm) ?? []).length, 4);
    assert.match(r.out, /16 runs in st:/);
    const rows = r.out.split('\n').filter((l) => /^ {2}start /.test(l));
    assert.equal(rows.length, 16);
    for (const row of rows) assert.ok(Number(/ (\d+) steps/.exec(row)![1]) >= 20, row);
    assert.ok(!existsSync(join(dir, 'st')), 'a dry run writes no folder');
  });

  test('refuses an unknown study, a bad budget and a budget too small, saying what to do', () => {
    assert.match(run(['study', 'nope']).err, /unknown study 'nope': choose one of moe-vs-dense, sparsity, peer-isoflop/);
    assert.match(run(['study', 'sparsity', '--budget', '1y', '--dry-run']).err, /cannot read the duration '1y'/);
    const small = run(['study', 'moe-vs-dense', '--budget', '12s', '--dry-run', '--out', 'x', '--data', 'corpus.txt']);
    assert.equal(small.code, 1);
    assert.match(small.err, /study moe-vs-dense: a budget of 12 s is too little on this machine: .* 8 runs at each of 3 budgets need about \d+ s .* Give a budget of at least \d+ s, or a smaller model \(--set\)\./);
  });

  test('a tiny peer-isoflop study end to end, then a re-run that trains nothing', async () => {
    const out = join(dir, 'peer');
    const events: StudyEvent[] = [];
    // 15 s fits on a quiet 2-core machine; a slower or busier one measures longer steps and is
    // refused with the budget it needs, which the test then gives (planning writes nothing)
    const study = (budgetSeconds: number) => runStudy({
      study: 'peer-isoflop', out, budgetSeconds, dataPaths: [join(dir, 'corpus.txt')], set: tinySet(),
      overheadSeconds: 0.3, reportSeconds: 4, minSteps: 5, bootstrap: 5, onEvent: (e) => void events.push(e),
    });
    let budget = 15, t0 = 0, r: Awaited<ReturnType<typeof study>> | null = null;
    for (let tries = 0; !r; tries++) {
      t0 = performance.now();
      r = await study(budget).catch((e: unknown) => {
        // each try measures the steps afresh, so the need it states moves a little: leave a margin
        if (!(e instanceof StudyBudgetError) || tries === 2) throw e;
        assert.ok(!existsSync(out), 'a refused plan writes nothing');
        budget = Math.ceil(e.neededSeconds * 1.5);
        return null;
      });
    }
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(r.sweep.finished, 12);
    assert.ok(seconds < budget * 2.7, `took ${seconds.toFixed(1)} s for a ${budget} s budget`);
    assert.deepEqual(readStudyPlan(out)!.budgets, r.plan.budgets);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    assert.match(md, /^# PEER vs dense vs MoE at equal FLOPs \(He 2024\)\n/);
    assert.match(md, /## Verdict: PEER beats dense at equal FLOPs\n\n\*\*(HOLDS|DOES NOT HOLD|INCONCLUSIVE) at this scale\.\*\* loss\(peer\) - loss\(dense\) at equal FLOPs: /);
    assert.equal(r.verdict!.outcome, /\*\*(HOLDS|DOES NOT HOLD|INCONCLUSIVE)/.exec(md)![1].toLowerCase());
    assert.match(md, /\| budget \(FLOPs\) \| peer loss \(seeds\) \| dense loss \(seeds\) \| dense - peer \| std\. error \| z \|/);
    assert.match(md, /## Study design\n\nHe 2024, Mixture of A Million Experts \(arXiv 2407\.04153\)\./);
    assert.match(md, /\| config \| family \| seconds\/step \(measured\) \| FLOPs\/step \| runs \|/);
    assert.match(md, /## Fit: chinchilla/);
    // tiny noisy runs may fit exponents with no optimum: the fit stays, the table gives way to the reason
    assert.match(md, /## Compute-optimal allocation \(C = 6ND\)|No optimal allocation table: compute-optimal allocation needs alpha > 0 and beta > 0/);
    for (const img of ['loss_vs_compute.png', 'fit-chinchilla/fit_vs_points.png']) {
      assert.ok(md.includes(`](${img})`), img);
      pngSize(readFileSync(join(out, img)));
    }
    assert.ok(events.some((e) => e.type === 'planned' && !e.reused) && events.some((e) => e.type === 'report'));
    // the verdict follows the numbers: recompute the first budget's difference from results.json
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).results as { family: string; budget: number; valLoss: number }[];
    const b0 = Math.min(...results.map((x) => x.budget));
    const mean = (f: string) => { const v = results.filter((x) => x.family === f && x.budget === b0).map((x) => x.valLoss); return v.reduce((a, b) => a + b, 0) / v.length; };
    assert.ok(md.includes(`| ${(mean('dense') - mean('peer')).toFixed(4)} |`), 'dense - peer at the first budget');

    const again = await runStudy({ study: 'peer-isoflop', out, bootstrap: 0 });
    assert.equal(again.sweep.finished, 0);
    assert.equal(again.sweep.skipped, 12);
    assert.deepEqual(again.plan, r.plan);
    await assert.rejects(runStudy({ study: 'sparsity', out }), /holds study 'peer-isoflop', not 'sparsity': choose another --out/);
  });
});
