// The dashboard in a real browser: playwright-core driving Debian's chromium (apt-get install -y
// chromium; CI installs it, so a missing browser fails the test rather than skipping it). A real
// finished dense run, a real MoE run training in this process (paused at evals by a listener, so
// the test knows what the page must show), and a 5,000-line fake run for downsampling.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { loadConfig, startDashboard, train, type Dashboard, type TrainResult } from '../src/index.js';
import { writeFakeRun } from './dashboard_fixtures.js';
import { writeEvalResults, writeFakeSweep } from './dashboard_study_fixtures.js';

const CHROMIUM = process.env.MOELAB_CHROMIUM ?? '/usr/bin/chromium';
/** Screenshots go here (kept after the run; MOELAB_TEST_OUTPUT overrides). */
const OUT = process.env.MOELAB_TEST_OUTPUT ?? join(process.cwd(), 'dist', 'test-output', 'dashboard');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let tmp = '', root = '';
let dash: Dashboard;
let browser: BrowserContext;
let page: Page;
const pageErrors: string[] = [];
const stop = new AbortController();
let training: Promise<TrainResult> | null = null;
/** Evals the MoE run pauses at; release() lets it go on to the next one. */
const pauses = new Map<number, { reached: Promise<void>; release: () => void; arrive: () => void }>();
for (const step of [10, 20]) {
  let arrive = () => {}, release = () => {};
  const reached = new Promise<void>((r) => (arrive = r));
  const released = new Promise<void>((r) => (release = r));
  pauses.set(step, { reached, release, arrive: () => { arrive(); return released; } } as never);
}

function config(preset: string, steps: number) {
  return loadConfig({
    preset,
    overrides: {
      'data.paths': [join(tmp, 'corpus.txt')], 'model.d': 16, 'model.layers': 2, 'model.heads': 2, 'model.seq': 16,
      'train.batch': 2, 'train.steps': steps, 'train.warmup': 2, 'train.logEvery': 1, 'train.evalEvery': 5, 'train.evalBatches': 1,
    },
  });
}

function assertChromium(): void {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`the dashboard's browser tests need Chromium at ${CHROMIUM}, which is missing: install it with 'apt-get install -y chromium' (Debian/Ubuntu; scripts/ci-browser.sh does it) or point MOELAB_CHROMIUM at a Chromium binary`);
  }
}

function launchChromium(userDataDir: string): Promise<BrowserContext> {
  assertChromium();
  return chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 1500 } });
}

const count = (id: string, split: string) => page.evaluate(([i, s]) => (window as any).moelabDashboard.chart.count(i, s), [id, split]);
async function waitCount(id: string, split: string, n: number, ms = 8000): Promise<void> {
  await page.waitForFunction(([i, s, k]) => (window as any).moelabDashboard?.chart.count(i, s) === k, [id, split, n] as const, { timeout: ms })
    .catch(async () => assert.fail(`chart: ${id} ${split} has ${await count(id, split)} points, expected ${n}`));
}
const ids = () => page.$$eval('#runs tbody tr', (trs) => trs.map((t) => (t as HTMLElement).dataset.run));
const column = (col: string) => page.$$eval(`#runs tbody td[data-col="${col}"]`, (tds) => tds.map((t) => t.textContent!.trim()));

before(async () => {
  assertChromium(); // before training anything
  tmp = mkdtempSync(join(tmpdir(), 'moelab-dash-browser-'));
  root = join(tmp, 'runs');
  const words = ['alpha', 'beta', 'gamma', 'delta', 'experts', 'route', 'tokens', 'to', 'the', 'model'];
  let text = '';
  for (let i = 0; i < 3000; i++) text += words[(i * 7 + (i >> 2)) % words.length] + (i % 9 === 8 ? '.\n' : ' ');
  writeFileSync(join(tmp, 'corpus.txt'), text);
  writeFakeRun(root, 'long', { done: 5000, steps: 5000, evalEvery: 250 });
  await train({ config: config('tiny', 20), dir: join(root, 'dense') });
  training = train({
    config: config('tiny-moe', 30), dir: join(root, 'moe'), signal: stop.signal,
    listeners: [async (e) => { if (e.type === 'eval') await (pauses.get(e.step) as any)?.arrive(); }],
  });
  await pauses.get(10)!.reached;
  writeEvalResults(join(root, 'dense'));
  await writeFakeSweep(join(root, 'study'));
  mkdirSync(OUT, { recursive: true });
  dash = await startDashboard({ runs: root, port: 0 });
  browser = await launchChromium(mkdtempSync(join(tmp, 'chromium-')));
  page = await browser.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
});

after(async () => {
  stop.abort();
  for (const p of pauses.values()) p.release();
  await training?.catch(() => {});
  await browser?.close();
  await dash?.close();
});

describe('dashboard in Chromium', { timeout: 120_000 }, () => {
  test('lists the runs with their status; sorts and filters', async () => {
    await page.goto(dash.url);
    await page.waitForFunction(() => document.querySelectorAll('#runs tbody tr').length === 3);
    assert.deepEqual(await ids(), ['long', 'dense', 'moe']); // sorted by name: long, tiny, tiny-moe
    assert.deepEqual(await column('name'), ['long', 'tinydense', 'tiny-moemoe']); // name, then the folder when it differs
    assert.deepEqual(await column('kind'), ['dense', 'dense', 'moe']);
    assert.deepEqual(await column('status'), ['finished', 'finished', 'running']);
    assert.deepEqual(await column('step'), ['5000 / 5000', '20 / 20', '10 / 30']);
    await page.click('#runs th[data-key="paramsTotal"]'); // numbers sort largest first
    const params = (await page.evaluate(() => (window as any).moelabDashboard.table.visible().map((r: any) => [r.id, r.paramsTotal]))) as [string, number][];
    assert.deepEqual(await ids(), params.map((p) => p[0]));
    assert.ok(params[0][1] >= params[1][1] && params[1][1] >= params[2][1], JSON.stringify(params));
    assert.equal(params[0][0], 'moe');
    await page.click('#runs th[data-key="paramsTotal"]');
    assert.equal((await ids())[2], 'moe');
    await page.fill('#filter', 'moe');
    assert.deepEqual(await ids(), ['moe']);
    await page.fill('#filter', 'finished dense');
    assert.deepEqual((await ids()).sort(), ['dense', 'long']);
    await page.fill('#filter', '');
    assert.equal((await ids()).length, 3);
  });

  test('draws every point of short runs and 1000 of the long one', async () => {
    await waitCount('dense', 'train', 20);
    await waitCount('dense', 'val', 4);
    await waitCount('moe', 'train', 10);
    await waitCount('moe', 'val', 2);
    await waitCount('long', 'train', 1000);
    await waitCount('long', 'val', 20);
    assert.match(await page.textContent('#loss-note') ?? '', /points drawn \(downsampled/);
  });

  test("draws a sweep's plots from the study specs, and its results table", async () => {
    await page.waitForSelector('#compute-chart[data-points="3"] svg');
    await page.waitForSelector('#sweeps [data-sweep="study"][data-plots="4"]', { timeout: 20_000 });
    const marks = (plot: string, mark: string) => page.locator(`#sweeps [data-sweep="study"] [data-plot="${plot}"] svg g.mark-${mark}.role-mark > *`).count(); // data marks, not the legend's
    assert.equal(await marks('loss_vs_compute', 'symbol'), 18); // 9 configs x 2 families (two seeds drawn as their mean)
    assert.equal(await marks('loss_vs_compute', 'line'), 3 + 3 + 1); // one line per model (3 sizes x 2 families) and the dense frontier
    assert.equal(await marks('compute_multiplier', 'symbol'), 9);
    assert.equal(await marks('compute_multiplier', 'rule'), 1);
    assert.equal(await marks('fit_vs_points', 'symbol'), 19);
    assert.ok((await marks('fit_vs_points', 'line')) >= 1);
    assert.equal(await marks('isoflop', 'symbol'), 18 + 3); // 3 sizes x 2 sparsities x 3 budgets (seeds averaged) + the fit's 3 minima
    await page.waitForSelector('#results [data-file="study/results.json"] table');
    const head = await page.$$eval('#results [data-file="study/results.json"] th', (ths) => ths.map((t) => t.textContent));
    for (const c of ['family', 'valLoss', 'trainingFlops']) assert.ok(head.includes(c), `${c} in ${head}`);
    assert.equal(await page.locator('#results [data-file="study/results.json"] tr').count(), 20);
    const shot = join(OUT, 'dashboard-sweep.png');
    await page.locator('#sweeps-section').screenshot({ path: shot });
    process.stdout.write(`# sweep plots screenshot: ${shot}\n`);
  });

  test("a run's evaluation results: domain and task tables in its detail view", async () => {
    await page.click('#runs tr[data-run="dense"] .runname');
    await page.waitForSelector('#evals[data-run="dense"] table[data-table="domains"]');
    const rows = (t: string) => page.$$eval(`#evals table[data-table="${t}"] tr`, (trs) => trs.slice(1).map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    assert.deepEqual((await rows('domains')).map((r) => r.slice(0, 5)), [['in-domain', '2.5000', '12.182', '3.6067', '4096'], ['fiction', '3.2500', '25.790', '4.6888', '2048']]);
    assert.deepEqual((await rows('tasks')).map((r) => r.slice(0, 5)), [['copa-mini', '2', 'acc', '0.6250', '0.0766'], ['copa-mini', '2', 'acc_norm', '0.6000', '0.0775'],
      ['copa-mini', '2', 'acc_bytes', '0.5750', '0.0782'], ['copa-mini', '2', 'gold_ll', '-7.2500', '0.5000']]);
    assert.deepEqual(await page.$$eval('#evals [data-other]', (ds) => ds.map((d) => (d as HTMLElement).dataset.other)), ['eval/cut.json', 'eval/notes.json']);
    await page.locator('#detail-section').screenshot({ path: join(OUT, 'dashboard-evals.png') });
  });

  test('shows the MoE expert-load heatmap and routing statistics', async () => {
    await page.click('#runs tr[data-run="moe"] .runname');
    await page.waitForSelector('#heatmap[data-cells="8"] canvas'); // 2 evals x 1 MoE layer x 4 experts
    for (const stat of ['deadExperts', 'dropRate', 'routerEntropy', 'balanceLoss', 'loadCV']) {
      await page.waitForSelector(`#routing-charts [data-stat="${stat}"] svg`);
    }
  });

  test('the chart and the heatmap gain points while the MoE run trains', async () => {
    const t0 = Date.now();
    pauses.get(10)!.release();
    await pauses.get(20)!.reached;
    await waitCount('moe', 'train', 20, 5000);
    await waitCount('moe', 'val', 4, 5000);
    const latency = Date.now() - t0;
    await page.waitForSelector('#heatmap[data-cells="16"] canvas', { timeout: 5000 });
    assert.deepEqual((await column('step'))[(await ids()).indexOf('moe')], '20 / 30');
    pauses.get(20)!.release();
    await training;
    await waitCount('moe', 'train', 30, 5000);
    await page.waitForFunction(() => document.querySelector('#runs tr[data-run="moe"] td[data-col="status"]')?.textContent === 'finished', null, { timeout: 8000 });
    // a different x axis keeps every point; tokens are steps x batch x seq
    await page.selectOption('#x-axis', 'tokens');
    await page.check('#log-x');
    await waitCount('moe', 'train', 30);
    const first = await page.evaluate(() => (window as any).moelabDashboard.chart.view.data('points').find((r: any) => r.run === 'moe' && r.step === 1).x);
    assert.equal(first, 2 * 16);
    await page.selectOption('#x-axis', 'step');
    await page.uncheck('#log-x');
    await waitCount('moe', 'train', 30);
    const shot = join(OUT, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    process.stdout.write(`# live points reached the chart ${latency} ms after training resumed; screenshot: ${shot}\n`);
  });
});

describe('dashboard zoom', { timeout: 60_000 }, () => {
  test('zooming in fetches the visible range of a long run at full detail; double-click resets', async () => {
    await page.uncheck('#show-val');
    await waitCount('long', 'val', 0);
    await page.evaluate(() => { for (const b of document.querySelectorAll<HTMLInputElement>('#runs td[data-col="plot"] input')) if (b.closest('tr')!.dataset.run !== 'long' && b.checked) b.click(); });
    await waitCount('moe', 'train', 0);
    const box = (await page.locator('#loss-chart svg').boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    for (let i = 0; i < 6; i++) await page.mouse.wheel(0, -400);
    // the refetched range holds fewer than 1000 steps, so every step in it is drawn
    await page.waitForFunction(() => {
      const rows = (window as any).moelabDashboard.chart.view.data('points').filter((r: any) => r.run === 'long');
      const steps = rows.map((r: any) => r.step);
      return rows.length > 10 && rows.length < 1000 && Math.max(...steps) - Math.min(...steps) + 1 === rows.length;
    }, null, { timeout: 10_000 });
    await page.mouse.dblclick(box.x + box.width / 2, box.y + box.height / 2);
    await waitCount('long', 'train', 1000);
    // a malformed line is skipped and reported; the page goes on
    appendFileSync(join(root, 'long', 'metrics.jsonl'), '{"type":"train","step":5001,"loss":\n');
    await page.waitForFunction(() => /run long: 1 malformed metrics line\(s\) skipped/.test(document.querySelector('#notices')!.textContent!), null, { timeout: 8000 });
    await waitCount('long', 'train', 1000);
    assert.deepEqual(pageErrors, []);
  });
});

describe('dashboard load time', { timeout: 120_000 }, () => {
  test('50 runs of 2,000 lines each load and plot', async () => {
    const many = join(tmp, 'many');
    for (let i = 0; i < 50; i++) writeFakeRun(many, `run${String(i).padStart(2, '0')}`, { kind: i % 3 === 0 ? 'moe' : 'dense', done: 1980, steps: 2000, evalEvery: 100, experts: 8 });
    const d2 = await startDashboard({ runs: many, port: 0 });
    const p2 = await browser.newPage();
    try {
      const t0 = Date.now();
      await p2.goto(d2.url);
      await p2.waitForFunction(() => document.querySelectorAll('#runs tbody tr').length === 50 && Number((document.querySelector('#loss-chart') as HTMLElement).dataset.points) === 8 * (1000 + 19), null, { timeout: 60_000 });
      const ms = Date.now() - t0;
      process.stdout.write(`# 50 runs x 2,000 lines: table and 8 plotted runs (downsampled to 1000 points each) in ${ms} ms\n`);
      assert.ok(ms < 30_000, `page took ${ms} ms`);
      await p2.screenshot({ path: join(OUT, 'dashboard-50-runs.png'), fullPage: true });
    } finally {
      await p2.close();
      await d2.close();
    }
  });
});
