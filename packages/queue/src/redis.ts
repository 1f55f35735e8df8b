/**
 * Redis connections: a URL parser with clear errors, and a connection check that fails fast (ioredis retries
 * forever by default, so a wrong URL would otherwise hang).
 */
import { ConfigError } from '@s2cpnet/core';
import { Redis, type RedisOptions } from 'ioredis';

/** Where the Redis server is, as parsed from a `redis://` or `rediss://` URL. */
export interface RedisConnection {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls: boolean;
  /** The URL without its password, for messages. */
  display: string;
}

/** The default server: `S2CPNET_REDIS_URL`, else `redis://127.0.0.1:6379`. */
export function defaultRedisUrl(env: NodeJS.ProcessEnv = process.env): string {
  return env.S2CPNET_REDIS_URL || 'redis://127.0.0.1:6379';
}

/**
 * Parses `redis://[[user]:password@]host[:port][/db]` (or `rediss://` for TLS). `name` names the setting in errors
 * (the CLI passes `--redis`). Anything else is a `ConfigError` saying what was expected.
 */
export function parseRedisUrl(url: string, name = 'redis'): RedisConnection {
  const expected = 'expected redis://[[user]:password@]host[:port][/db] (or rediss:// for TLS)';
  if (typeof url !== 'string' || url.trim() === '') throw new ConfigError(name, `${expected}, found ${JSON.stringify(url)}`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(name, `${expected}, found ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new ConfigError(name, `${expected}, found the scheme ${JSON.stringify(parsed.protocol)} in ${JSON.stringify(redact(parsed))}`);
  if (!parsed.hostname) throw new ConfigError(name, `${expected}: no host in ${JSON.stringify(redact(parsed))}`);
  const port = parsed.port === '' ? 6379 : Number(parsed.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError(name, `port: expected 1 to 65535, found ${JSON.stringify(parsed.port)}`);
  const dbText = parsed.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!/^\d*$/.test(dbText) || !Number.isInteger(db) || db < 0) throw new ConfigError(name, `database: expected a number after the host (redis://host:port/0), found ${JSON.stringify(parsed.pathname)}`);
  if (parsed.search || parsed.hash) throw new ConfigError(name, `${expected}; query strings and fragments are not supported, found ${JSON.stringify(redact(parsed))}`);
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    db,
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    tls: parsed.protocol === 'rediss:',
    display: redact(parsed),
  };
}

function redact(url: URL): string {
  const copy = new URL(url.href);
  if (copy.password) copy.password = '***';
  return copy.href.replace(/\/$/, '');
}

/** ioredis options for a connection; `worker: true` gives what BullMQ workers need (retry every command, forever). */
export function redisOptions(connection: RedisConnection, options: { worker?: boolean; connectTimeoutMs?: number } = {}): RedisOptions {
  return {
    host: connection.host,
    port: connection.port,
    db: connection.db,
    username: connection.username,
    password: connection.password,
    ...(connection.tls ? { tls: {} } : {}),
    connectTimeout: options.connectTimeoutMs ?? 5000,
    // Workers ride out a Redis restart (BullMQ requires null here); short-lived commands give up after a few tries.
    maxRetriesPerRequest: options.worker ? null : 3,
  };
}

/**
 * Connects to Redis and checks that it answers, within `timeoutMs` (default 5 s): no server, a wrong password or a
 * wrong database number is a `ConfigError` naming the URL (without its password) and the reason. The client returned
 * reconnects on its own afterwards.
 */
export async function connectRedis(connection: RedisConnection, options: { name?: string; timeoutMs?: number; worker?: boolean } = {}): Promise<Redis> {
  const timeoutMs = options.timeoutMs ?? 5000;
  let lastError: Error | null = null;
  const client = new Redis({ ...redisOptions(connection, { worker: options.worker, connectTimeoutMs: timeoutMs }), lazyConnect: true, retryStrategy: () => null, enableOfflineQueue: false });
  // ioredis reports connection errors as events too: keep the last one for the message instead of printing it.
  client.on('error', (error: Error) => void (lastError = error));
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      (async () => {
        await client.connect();
        await client.ping();
      })(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
      }),
    ]);
  } catch (error) {
    client.disconnect();
    const reason = (lastError as Error | null)?.message ?? (error as Error).message;
    throw new ConfigError(options.name ?? 'redis', `cannot reach a Redis server at ${connection.display}: ${reason} (is redis-server running there, and is the URL right?)`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
  // From here on, reconnect after a Redis restart like any client (the check above gave up at once by design).
  client.options.retryStrategy = (times: number) => Math.min(times * 200, 2000);
  client.options.enableOfflineQueue = true;
  client.removeAllListeners('error');
  client.on('error', () => undefined);
  return client;
}
