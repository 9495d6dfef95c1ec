// Where the sweep queue lives: one Redis database, named by a redis:// URL. The URL may carry a
// password (redis://:pass@host:6379/0): it is passed to ioredis but never printed (redactUrl), and
// Redis itself must never be reachable without auth from outside a trusted network, since anyone who
// can write to the queue can submit jobs (the worker validates each one: queue/job_data.ts).
import { Redis, type RedisOptions } from 'ioredis';

/** The BullMQ queue every sweep and worker of one Redis database shares. */
export const QUEUE_NAME = 'moelab-sweep';

/** How long a worker's claim on a job lives without renewal, and how often expired claims are looked for. */
export interface QueueTimings {
  /** A worker renews its job's lock every lockDuration / 2; a job whose lock expires (its worker was killed) is taken by another worker. Default 30 s. */
  lockDurationMs?: number;
  /** How often workers look for jobs whose lock expired (stalled). Default 30 s. */
  stalledIntervalMs?: number;
  /** Times a job may stall (its worker die) before it fails. Default 5. */
  maxStalledCount?: number;
}

export const DEFAULT_TIMINGS: Required<QueueTimings> = { lockDurationMs: 30_000, stalledIntervalMs: 30_000, maxStalledCount: 5 };

export class QueueUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QueueUrlError';
  }
}

/** The URL with its password (and user) replaced by ***, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    if (u.username) u.username = '***';
    return u.toString();
  } catch {
    return '<unparsable queue URL>';
  }
}

/** ioredis options for a redis:// or rediss:// URL (BullMQ needs maxRetriesPerRequest null). */
export function redisOptions(url: string): RedisOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new QueueUrlError(`--queue must be a URL like redis://HOST:6379/0 (or redis://:PASSWORD@HOST:6379/0), got ${redactUrl(url)}`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new QueueUrlError(`--queue must start with redis:// or rediss://, got ${redactUrl(url)}`);
  const db = u.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw new QueueUrlError(`the database in ${redactUrl(url)} must be a number (redis://HOST:PORT/DB)`);
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    db: db ? Number(db) : 0,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
  };
}

/**
 * Check once that Redis answers, so a wrong URL is a clear error instead of a silent endless retry
 * (the connections BullMQ keeps afterwards reconnect on their own when Redis restarts).
 */
export async function checkRedis(url: string, timeoutMs = 5000): Promise<void> {
  const client = new Redis({ ...redisOptions(url), lazyConnect: true, connectTimeout: timeoutMs, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  client.on('error', () => {}); // reported through connect()'s rejection
  try {
    await client.connect();
    await client.ping();
  } catch (e) {
    throw new Error(`cannot reach the queue at ${redactUrl(url)}: ${(e as Error).message}. Start Redis there (redis-server) or fix --queue`);
  } finally {
    client.disconnect();
  }
}
