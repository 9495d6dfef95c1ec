// The dashboard's server without a browser: downsampling, the incremental tail, run summaries,
// the series and routing endpoints, the live event stream (appends, a malformed line, a rewrite, a
// deleted folder), result tables, path escapes sent as raw HTTP, and that nothing is ever written.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { get } from 'node:http';
import { spawn, spawnSync } from 'node:child_process';
import { startDashboard, type Dashboard } from '../src/index.js';
import { lttbIndices, rangeIndices } from '../src/dashboard/downsample.js';
import { FileTail } from '../src/dashboard/tail.js';
import { appendSteps, evalLine, writeFakeRun, BATCH, SEQ, FLOPS_PER_TOKEN } from './dashboard_fixtures.js';

describe('downsampling (LTTB)', () => {
  test('keeps first and last, at most n points, ascending, and a lone spike', () => {
    const n = 10_000;
    const xs = Array.from({ length: n }, (_, i) => i);
    const ys = xs.map((x) => Math.exp(-x / 3000) + (x === 6543 ? 50 : 0));
    const idx = lttbIndices(xs, ys, 1000);
    assert.equal(idx.length, 1000);
    assert.equal(idx[0], 0);
    assert.equal(idx[idx.length - 1], n - 1);
    for (let i = 1; i < idx.length; i++) assert.ok(idx[i] > idx[i - 1]);
    assert.ok(idx.includes(6543), 'the spike survives');
    // fewer points than asked for: all of them
    assert.deepEqual(lttbIndices([1, 2, 3], [3, 2, 1], 1000), [0, 1, 2]);
  });

  test('a range keeps one point beyond each edge', () => {
    const xs = [1, 2, 3, 4, 5, 6, 7, 8];
    assert.deepEqual(rangeIndices(xs, 3, 5), [1, 6]); // xs[1..5] = 2..6
    assert.deepEqual(rangeIndices(xs, null, null), [0, 8]);
    assert.deepEqual(rangeIndices(xs, 100, null), [7, 8]);
  });
});

describe('FileTail', () => {
  test('returns complete new lines only, survives a split UTF-8 character, restarts on a rewrite', () => {
    const dir = mkdtempSync(join(tmpdir(), 'moelab-tail-'));
    const f = join(dir, 'm.jsonl');
    writeFileSync(f, 'a\nb\npart');
    const t = new FileTail(f);
    assert.deepEqual(t.read(), { lines: ['a', 'b'], reset: false, missing: false });
    const euro = Buffer.from('€'); // 3 bytes, written in two pieces
    appendFileSync(f, Buffer.concat([Buffer.from('ial '), euro.subarray(0, 1)]));
    assert.deepEqual(t.read().lines, []);
    appendFileSync(f, Buffer.concat([euro.subarray(1), Buffer.from('\nc\n')]));
    assert.deepEqual(t.read().lines, ['partial €', 'c']);
    writeFileSync(f + '.new', 'x\n');
    rmSync(f);
    writeFileSync(f, 'x\n'); // a new file (as a resume rewrites metrics.jsonl)
    assert.deepEqual(t.read(), { lines: ['x'], reset: true, missing: false });
    rmSync(f);
    assert.equal(t.read().missing, true);
  });
});

// ---------------------------------------------------------------------------------------------

let root = '', outside = '';
let dash: Dashboard;
let before0: Map<string, string>;

/** Every file under dir with size and mtime: the dashboard must not change any. */
function snapshot(dir: string, out = new Map<string, string>()): Map<string, string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) snapshot(p, out);
    else { const s = statSync(p); out.set(p, `${s.size}:${s.mtimeMs}`); }
  }
  return out;
}

async function getJson(path: string): Promise<{ status: number; body: any }> {
  const r = await fetch(new URL(path, dash.url));
  return { status: r.status, body: await r.json() };
}

/** Sends the request bytes as given (no client-side URL normalisation). */
function raw(request: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(dash.port, '127.0.0.1', () => s.write(request));
    let data = '';
    s.on('data', (d) => (data += d));
    s.on('end', () => resolve({ status: Number(data.split(' ')[1]), text: data }));
    s.on('error', reject);
  });
}
const rawGet = (path: string, host = 'localhost') => raw(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'moelab-dash-'));
  outside = mkdtempSync(join(tmpdir(), 'moelab-outside-'));
  writeFakeRun(root, 'done-dense', { done: 50, steps: 50, evalEvery: 10 });
  writeFakeRun(root, 'live-moe', { kind: 'moe', done: 20, steps: 100, evalEvery: 5, experts: 8, moeLayers: 2 });
  writeFakeRun(root, 'long', { done: 5000, steps: 5000, evalEvery: 100 });
  writeFakeRun(root, 'fresh', { kind: 'moe', done: 3, steps: 60, noCheckpoint: true, name: 'fresh-moe' });
  const failed = writeFakeRun(root, 'crashed', { done: 10, steps: 100 });
  const old = new Date(Date.now() - 3600_000);
  utimesSync(join(failed, 'metrics.jsonl'), old, old);
  const div = writeFakeRun(root, 'blew-up', { done: 30, steps: 100 });
  appendFileSync(join(div, 'metrics.jsonl'), JSON.stringify({ type: 'diverged', step: 31, message: 'loss is NaN at step 31', checkpoint_step: 30 }) + '\n');
  const sweep = join(root, 'sweep-a');
  writeFakeRun(root, 'sweep-a/runs/3fa2', { kind: 'peer', done: 40, steps: 40, evalEvery: 10 });
  writeFileSync(join(sweep, 'results.json'), JSON.stringify({ law: { a: 1 }, rows: [{ run: '3fa2', loss: 3.2, flops: 1e12 }] }));
  const ev = join(root, 'done-dense', 'eval');
  mkdirSync(ev);
  writeFileSync(join(ev, 'domains.json'), JSON.stringify([{ domain: 'web', loss: 3.1, bpb: 1.2 }, { domain: 'code', loss: 2.5, bpb: 0.9 }]));
  writeFileSync(join(ev, 'broken.json'), '{"not json');
  // a run outside the folder, reachable only through a symlink inside it
  writeFakeRun(outside, 'secret', { done: 5, steps: 5 });
  symlinkSync(join(outside, 'secret'), join(root, 'link-out'));
  before0 = snapshot(root);
  dash = await startDashboard({ runs: root, port: 0 });
});

after(async () => {
  await dash?.close();
});

describe('dashboard server', () => {
  test('binds 127.0.0.1 by default', () => {
    assert.equal(dash.host, '127.0.0.1');
    assert.match(dash.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  });

  test('lists runs found recursively with counts, progress and status', async () => {
    const { status, body } = await getJson('/api/runs');
    assert.equal(status, 200);
    const byId = new Map<string, any>(body.runs.map((r: any) => [r.id, r]));
    assert.deepEqual([...byId.keys()].sort(), ['blew-up', 'crashed', 'done-dense', 'fresh', 'live-moe', 'long', 'sweep-a/runs/3fa2']);
    assert.ok(!byId.has('link-out'), 'a symlink is not followed');
    const moe = byId.get('live-moe');
    assert.equal(moe.kind, 'moe');
    assert.equal(moe.paramsTotal, 40_000);
    assert.equal(moe.paramsActive, 10_000);
    assert.equal(moe.flopsPerToken, FLOPS_PER_TOKEN);
    assert.equal(moe.step, 20);
    assert.equal(moe.steps, 100);
    assert.equal(moe.tokensPerSecond, 1020);
    assert.equal(moe.tokensPerStep, BATCH * SEQ);
    assert.equal(moe.status, 'running');
    assert.equal(byId.get('done-dense').status, 'finished');
    assert.equal(byId.get('crashed').status, 'failed');
    assert.equal(byId.get('blew-up').status, 'diverged');
    assert.match(byId.get('blew-up').statusReason, /NaN at step 31/);
    assert.equal(byId.get('sweep-a/runs/3fa2').kind, 'peer');
    // best validation loss is the minimum of the eval lines (the curve decreases: the last one)
    assert.ok(Math.abs(byId.get('done-dense').bestValLoss - (5 * Math.exp(-50 / 400) + 0.05 * Math.sin(50) + 0.1)) < 1e-9);
    assert.deepEqual(body.sweeps, ['sweep-a']);
    // before its first checkpoint a run has only metrics.jsonl: name, kind and length from the start line
    const fresh = byId.get('fresh');
    assert.deepEqual([fresh.name, fresh.kind, fresh.step, fresh.steps, fresh.tokensPerStep, fresh.status], ['fresh-moe', 'moe', 3, 60, BATCH * SEQ, 'running']);
  });

  test('series are downsampled to the points asked for, per range, on every x axis', async () => {
    const all = (await getJson('/api/series?run=long&run=done-dense')).body;
    const long = all.runs.find((r: any) => r.id === 'long');
    assert.equal(long.train.length, 1000);
    assert.deepEqual(long.total, [5000, 50]);
    assert.equal(long.val.length, 50);
    assert.deepEqual(long.train[0][0], 1);
    assert.deepEqual(long.train[999][0], 5000);
    assert.equal(all.runs.find((r: any) => r.id === 'done-dense').train.length, 50, 'short runs are sent whole');
    // zoomed to steps 1000..1100: every point in the range, one beyond each edge
    const zoom = (await getJson('/api/series?run=long&from=1000&to=1100')).body.runs[0];
    assert.equal(zoom.train.length, 103);
    assert.equal(zoom.train[0][0], 999);
    // the same range in tokens and FLOPs
    const perStep = BATCH * SEQ;
    const tok = (await getJson(`/api/series?run=long&x=tokens&from=${1000 * perStep}&to=${1100 * perStep}`)).body.runs[0];
    assert.deepEqual(tok.train, zoom.train);
    const fl = (await getJson(`/api/series?run=long&x=flops&from=${1000 * perStep * FLOPS_PER_TOKEN}&to=${1100 * perStep * FLOPS_PER_TOKEN}&points=50`)).body.runs[0];
    assert.equal(fl.train.length, 50);
    assert.equal((await getJson('/api/series?run=long&x=bogus')).status, 400);
    assert.equal((await getJson('/api/series?run=long&points=1')).status, 400);
  });

  test('routing: expert load heatmap cells, dead experts and scalar statistics per layer', async () => {
    const { body } = await getJson('/api/routing?run=live-moe');
    assert.equal(body.kind, 'moe');
    assert.equal(body.totalEvals, 4);
    assert.equal(body.load.length, 4 * 2 * 8); // evals x layers x experts
    assert.deepEqual([...new Set(body.load.map((c: any) => c.layer))], ['layer1', 'layer3']);
    const dead = body.scalars.deadExperts.filter((p: any) => p.layer === 'layer1').map((p: any) => [p.step, p.value]);
    assert.deepEqual(dead, [[5, 0], [10, 0], [15, 0], [20, 0]]);
    for (const k of ['dropRate', 'routerEntropy', 'balanceLoss', 'zLoss', 'loadCV']) assert.equal(body.scalars[k].length, 8, k);
    const peer = (await getJson('/api/routing?run=' + encodeURIComponent('sweep-a/runs/3fa2'))).body;
    assert.equal(peer.load.length, 0);
    assert.equal(peer.scalars.peerUsedFraction.length, 4);
    const dense = (await getJson('/api/routing?run=done-dense')).body;
    assert.deepEqual(dense.scalars, {});
  });

  test('sweep results.json is read as a table; eval files go to the run, a broken one reported', async () => {
    const { body } = await getJson('/api/results');
    assert.deepEqual(body.sweeps.map((f: any) => [f.owner, f.file, f.data.rows.length]), [['sweep-a', 'results.json', 1]]);
    assert.equal(body.evals, undefined);
    const ev = (await getJson('/api/evals?run=done-dense')).body;
    const other = new Map(ev.other.map((o: any) => [o.file, o.reason]));
    assert.match(other.get('eval/broken.json') as string, /not valid JSON/);
    assert.match(other.get('eval/domains.json') as string, /not a JSON object/); // a bare array: not what moelab eval writes
  });

  test('path escapes are refused: .., encoded .., absolute, backslash, symlink out, static traversal', async () => {
    const cases: [string, number][] = [
      ['/api/series?run=../' + outside.split('/').pop() + '/secret', 400],
      ['/api/series?run=%2e%2e%2f%2e%2e%2fetc', 400],
      ['/api/series?run=%2E%2E', 400],
      ['/api/run?run=' + encodeURIComponent(join(outside, 'secret')), 400],
      ['/api/run?run=done-dense%2f..%2f..%2fx', 400],
      ['/api/run?run=..%5c..%5cx', 400],
      ['/api/routing?run=link-out', 404],
      ['/api/evals?run=link-out', 404],
      ['/api/evals?run=..%2f..%2fetc', 400],
      ['/api/sweep?sweep=..%2f' + outside.split('/').pop(), 404],
      ['/api/sweep?sweep=link-out', 404],
      ['/api/stream?run=link-out', 404],
      ['/api/run?run=no-such-run', 404],
      ['/api/run?run=sweep-a', 404], // a folder, not a run
      ['/api/run?run=done-dense%00', 400],
      ['/static/../package.json', 404],
      ['/static/%2e%2e/%2e%2e/package.json', 404],
      ['/static/..%2f..%2fpackage.json', 404],
      ['/vendor/../../package.json', 404],
      ['/../../../etc/passwd', 404],
    ];
    for (const [path, want] of cases) {
      const r = await rawGet(path);
      assert.equal(r.status, want, `${path}: ${r.text.slice(0, 300)}`);
      assert.ok(!r.text.includes('secret') || want !== 200);
      assert.ok(!r.text.includes('"version"'), `${path} leaked package.json`);
    }
    assert.equal((await rawGet('/api/run?run=done-dense')).status, 200);
  });

  test('only GET/HEAD, and only for localhost names (DNS rebinding)', async () => {
    assert.equal((await raw('POST /api/runs HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')).status, 405);
    assert.equal((await rawGet('/api/runs', 'evil.example:80')).status, 403);
    assert.equal((await rawGet('/api/runs', '127.0.0.1:1234')).status, 200);
  });

  test('serves the page, its modules and vega from the package', async () => {
    for (const p of ['/', '/static/app.js', '/static/style.css', '/static/evals.js', '/static/sweeps.js', '/vendor/vega.min.js', '/vendor/vega-lite.min.js']) {
      const r = await fetch(new URL(p, dash.url));
      assert.equal(r.status, 200, p);
      assert.ok((await r.text()).length > 100, p);
    }
  });
});

interface Sse { events: { event: string; data: any }[]; close(): void }

function openSse(path: string): Promise<Sse> {
  return new Promise((resolve, reject) => {
    const events: Sse['events'] = [];
    const req = get(new URL(path, dash.url), (res) => {
      assert.equal(res.statusCode, 200);
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (ev && data) events.push({ event: ev, data: JSON.parse(data) });
        }
      });
      resolve({ events, close: () => req.destroy() });
    });
    req.on('error', (e) => { if ((e as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(e); });
  });
}

async function waitFor<T>(what: string, f: () => T | undefined | false, ms = 5000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('live stream', () => {
  test('appended lines arrive as points; a malformed line is skipped and reported', async () => {
    const dir = join(root, 'live-moe');
    const s = await openSse('/api/stream?run=live-moe');
    try {
      await waitFor('the run list', () => s.events.find((e) => e.event === 'runs'));
      const t0 = Date.now();
      appendSteps(dir, 21, 25, { kind: 'moe', evalEvery: 5, experts: 8, moeLayers: 2 });
      const pts = await waitFor('points', () => s.events.find((e) => e.event === 'points'));
      const latency = Date.now() - t0;
      assert.ok(latency < 3000, `points after ${latency} ms`);
      assert.deepEqual(pts.data.train.map((p: number[]) => p[0]), [21, 22, 23, 24, 25]);
      assert.deepEqual(pts.data.val.map((p: number[]) => p[0]), [25]);
      assert.equal(pts.data.summary.step, 25);
      appendFileSync(join(dir, 'metrics.jsonl'), '{"type":"train","step":26,"loss":\n' + evalLine(30, { kind: 'moe', experts: 8, moeLayers: 2 }).replace('"step":30', '"step":26'));
      const bad = await waitFor('malformed', () => s.events.find((e) => e.event === 'malformed'));
      assert.equal(bad.data.count, 1);
      assert.match(bad.data.lines[0], /"step":26,"loss":$/);
      // the run still reads: its series and summary go on, with the malformed line counted
      const runs = (await getJson('/api/runs')).body.runs;
      const moe = runs.find((r: any) => r.id === 'live-moe');
      assert.equal(moe.malformedLines, 1);
      assert.equal((await getJson('/api/series?run=live-moe')).body.runs[0].train.length, 25);
    } finally {
      s.close();
    }
  });

  test('a rewritten metrics file (resume) sends reset; a deleted run folder sends removed', async () => {
    const dir = writeFakeRun(root, 'doomed', { done: 10, steps: 100 });
    const s = await openSse('/api/stream?run=doomed');
    try {
      await waitFor('the run list', () => s.events.find((e) => e.event === 'runs'));
      writeFakeRun(root, 'doomed', { done: 5, steps: 100 }); // new file, fewer lines
      await waitFor('reset', () => s.events.find((e) => e.event === 'reset' && e.data.run === 'doomed'));
      assert.equal((await getJson('/api/series?run=doomed')).body.runs[0].train.length, 5);
      rmSync(dir, { recursive: true });
      await waitFor('removed', () => s.events.find((e) => e.event === 'removed' && e.data.run === 'doomed'));
      assert.equal((await getJson('/api/run?run=doomed')).status, 404);
      // the server goes on
      assert.equal((await getJson('/api/runs')).status, 200);
    } finally {
      s.close();
    }
  });

  test('the dashboard never wrote into the runs folder', () => {
    const now = snapshot(root);
    for (const [p, v] of before0) {
      if (p.includes('/live-moe/')) continue; // the test itself appended there
      assert.equal(now.get(p), v, `${p} changed`);
    }
    for (const p of now.keys()) assert.ok(before0.has(p) || p.includes('/live-moe/'), `${p} appeared`);
  });
});

describe('moelab dashboard (command)', () => {
  const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');

  test('prints its loopback URL, serves, and exits cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, [CLI, 'dashboard', '--runs', root, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const url = await waitFor('the URL', () => /http:\/\/127\.0\.0\.1:\d+\//.exec(out)?.[0], 15000);
      const r = await fetch(new URL('/api/runs', url));
      assert.equal(r.status, 200);
      assert.ok(((await r.json()) as any).runs.length >= 6);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
  });

  test('a missing runs folder is a clear error', () => {
    const r = spawnSync(process.execPath, [CLI, 'dashboard', '--runs', join(root, 'nope'), '--port', '0'], { encoding: 'utf8', timeout: 30000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /runs folder '.*nope' does not exist: pass --runs/);
  });
});
