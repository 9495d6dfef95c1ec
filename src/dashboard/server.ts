/**
 * `moelab dashboard`: a read-only web page over a runs folder. node:http, no framework; the page's
 * files ship in src/dashboard/public and vega / vega-lite's browser builds come from node_modules,
 * so nothing is fetched from the network.
 *
 *   GET /                      the page          GET /static/<file>   its scripts and styles
 *   GET /vendor/<lib>.min.js   vega, vega-lite   GET /api/runs        run summaries and sweeps
 *   GET /api/series?run=..&x=step|tokens|flops&from=&to=&points=   loss curves, downsampled
 *   GET /api/routing?run=..    MoE / PEER statistics of the eval lines
 *   GET /api/run?run=..        one run's summary and config      GET /api/results   sweeps' results.json tables
 *   GET /api/evals?run=..      the run's evaluation results (domain and task tables; history from metrics.jsonl)
 *   GET /api/sweep?sweep=..    a sweep's plots: vega-lite specs from the study's spec functions
 *   GET /api/stream?run=..     server-sent events: appended points, resets, removals, run list
 *
 * Bound to 127.0.0.1 unless told otherwise; on a loopback address it also refuses requests whose
 * Host header names another machine (DNS rebinding). Run ids are checked by paths.ts.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { packageRoot } from '../util/package.js';
import { BadRunPath } from './paths.js';
import { RunStore } from './store.js';
import { RunWatcher } from './watch.js';
import { runSeries, routingData, X_AXES, type XAxis } from './series.js';
import { openStream } from './sse.js';

export interface DashboardOptions {
  /** Folder holding run folders (searched recursively). */
  runs: string;
  /** 0 picks a free port. Default 8080. */
  port?: number;
  /** Default 127.0.0.1 (this machine only). */
  host?: string;
  /** Where request errors are reported (default: nowhere). */
  log?: (message: string) => void;
}

export interface Dashboard {
  url: string;
  host: string;
  port: number;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const CSP = "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'";

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function vendorFiles(): Record<string, string> {
  const req = createRequire(import.meta.url);
  const files: Record<string, string> = {};
  for (const [name, pkg] of [['vega.min.js', 'vega'], ['vega-lite.min.js', 'vega-lite']] as const) {
    let path = '';
    try {
      path = join(dirname(req.resolve(pkg)), name);
    } catch {
      /* reported below */
    }
    if (!existsSync(path)) throw new Error(`dashboard: cannot find ${pkg}'s browser build (${name}); reinstall moelab's dependencies (npm install)`);
    files[name] = path;
  }
  return files;
}

function sendJson(res: ServerResponse, body: unknown, status = 200): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

function numberParam(u: URL, name: string): number | null {
  const v = u.searchParams.get(name);
  if (v === null || v === '') return null;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new HttpError(400, `${name} must be a number, got '${v}'`);
  return n;
}

function runParams(u: URL, max = 64): string[] {
  const ids = u.searchParams.getAll('run');
  if (ids.length > max) throw new HttpError(400, `at most ${max} runs per request`);
  return ids;
}

export async function startDashboard(o: DashboardOptions): Promise<Dashboard> {
  const store = new RunStore(o.runs);
  const watcher = new RunWatcher(store);
  const publicDir = join(packageRoot(), 'src', 'dashboard', 'public');
  const statics = new Set(readdirSync(publicDir));
  const vendor = vendorFiles();
  const host = o.host ?? '127.0.0.1';
  const loopbackOnly = LOOPBACK.has(host);
  const streams = new Set<() => void>();

  const serveFile = (res: ServerResponse, path: string) => {
    res.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream', 'cache-control': 'no-cache' });
    res.end(readFileSync(path));
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('content-security-policy', CSP);
    res.setHeader('referrer-policy', 'no-referrer');
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'read-only: only GET and HEAD');
    if (loopbackOnly) {
      const h = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
      if (!LOOPBACK.has(h)) throw new HttpError(403, `host '${req.headers.host}' refused: the dashboard only answers to localhost (start it with --host to expose it)`);
    }
    const u = new URL(req.url ?? '/', 'http://localhost');
    const p = u.pathname;
    if (p === '/' || p === '/index.html') return serveFile(res, join(publicDir, 'index.html'));
    if (p === '/favicon.ico') return void res.writeHead(204).end();
    if (p.startsWith('/static/')) {
      const name = p.slice('/static/'.length);
      if (!statics.has(name)) throw new HttpError(404, 'not found');
      return serveFile(res, join(publicDir, name));
    }
    if (p.startsWith('/vendor/')) {
      const path = vendor[p.slice('/vendor/'.length)];
      if (!path) throw new HttpError(404, 'not found');
      return serveFile(res, path);
    }
    switch (p) {
      case '/api/runs':
        return sendJson(res, { root: store.root, ...store.list() });
      case '/api/run': {
        const run = store.get(u.searchParams.get('run') ?? '');
        return sendJson(res, { summary: run.summary(), config: run.configJson() });
      }
      case '/api/series': {
        const x = (u.searchParams.get('x') ?? 'step') as XAxis;
        if (!X_AXES.includes(x)) throw new HttpError(400, `x must be one of ${X_AXES.join(', ')}`);
        const points = numberParam(u, 'points') ?? 1000;
        if (points < 3 || points > 20000) throw new HttpError(400, 'points must be between 3 and 20000');
        const q = { x, from: numberParam(u, 'from'), to: numberParam(u, 'to'), points: Math.floor(points) };
        return sendJson(res, { x, runs: runParams(u).map((id) => runSeries(store.get(id), q)) });
      }
      case '/api/routing':
        return sendJson(res, routingData(store.get(u.searchParams.get('run') ?? '')));
      case '/api/results':
        return sendJson(res, store.results());
      case '/api/evals':
        return sendJson(res, store.evals(u.searchParams.get('run') ?? ''));
      case '/api/sweep':
        return sendJson(res, store.sweep(u.searchParams.get('sweep') ?? ''));
      case '/api/stream': {
        const ids = runParams(u);
        for (const id of ids) store.get(id); // refuse bad ids before the stream starts
        const close = openStream(req, res, ids, store, watcher);
        streams.add(close);
        res.on('close', () => streams.delete(close));
        return;
      }
      default:
        throw new HttpError(404, 'not found');
    }
  };

  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      const status = e instanceof HttpError || e instanceof BadRunPath ? e.status : 500;
      if (status === 500) o.log?.(`dashboard: ${req.method} ${req.url}: ${(e as Error).stack ?? e}`);
      if (!res.headersSent) sendJson(res, { error: (e as Error).message }, status);
      else res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'EADDRINUSE' ? new Error(`port ${o.port} on ${host} is in use: pick another with --port`) : e));
    server.listen(o.port ?? 8080, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${shown}:${addr.port}/`,
    host: addr.address,
    port: addr.port,
    close: () => new Promise<void>((resolve) => {
      for (const c of [...streams]) c();
      watcher.close();
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
