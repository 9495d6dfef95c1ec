// A private redis-server for tests: a free port, a temp folder, no persistence unless asked, stopped
// by stop(). Fails with a clear message when redis-server is not installed (CI installs it:
// scripts/ci-redis.sh); tests that need Redis are never skipped.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = createServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => done(port));
    });
  });
}

function answers(port: number): Promise<boolean> {
  return new Promise((done) => {
    const c = connect(port, '127.0.0.1');
    c.on('connect', () => c.write('PING\r\n'));
    c.on('data', (d) => { c.destroy(); done(d.toString().startsWith('+PONG')); });
    c.on('error', () => done(false));
  });
}

export class RedisServer {
  private proc: ChildProcess | null = null;
  private constructor(readonly port: number, readonly dir: string, private readonly persist: boolean) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  /** Start on a free port. persist: keep an append-only file in the temp folder, so a restart keeps the data. */
  static async start(opts: { persist?: boolean } = {}): Promise<RedisServer> {
    const which = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
    if (which.error || which.status !== 0) {
      throw new Error('redis-server is not installed: the queue tests need it. Install it with `apt-get install -y redis-server` (or run scripts/ci-redis.sh)');
    }
    const r = new RedisServer(await freePort(), mkdtempSync(join(tmpdir(), 'moelab-redis-')), Boolean(opts.persist));
    await r.restart();
    return r;
  }

  /** (Re)start the server on the same port and folder. */
  async restart(): Promise<void> {
    if (this.proc) throw new Error('redis-server is already running');
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', this.persist ? 'yes' : 'no', '--daemonize', 'no'];
    const p = spawn('redis-server', args, { stdio: 'ignore' });
    this.proc = p;
    p.on('exit', () => { if (this.proc === p) this.proc = null; });
    for (let i = 0; i < 200; i++) {
      if (await answers(this.port)) return;
      if (!this.proc) throw new Error(`redis-server exited at start (port ${this.port}, folder ${this.dir})`);
      await new Promise((d) => setTimeout(d, 25));
    }
    throw new Error(`redis-server did not answer on port ${this.port} within 5 s`);
  }

  /** Stop it (SIGTERM; without persistence everything in it is lost). */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    await new Promise<void>((done) => {
      p.once('exit', () => done());
      p.kill('SIGTERM');
    });
    this.proc = null;
  }
}
