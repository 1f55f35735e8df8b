/** One place that opens what the short-lived operations (enqueue, status, export) need: a checked client and the BullMQ queue. */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { checkQueueName, queueKeys } from './keys';
import { connectRedis, parseRedisUrl, type RedisConnection } from './redis';

/** A Redis URL (`redis://host:port/db`) or a parsed connection. */
export type RedisTarget = string | RedisConnection;

/** Common options of the queue operations. */
export interface QueueTarget {
  /** The Redis server: a `redis://` / `rediss://` URL or a parsed connection. */
  redis: RedisTarget;
  /** The queue's name (letters, digits, `.`, `_`, `-`). */
  queue: string;
  /** How the Redis URL and queue settings are named in errors (the CLI passes its flags). Default `redis` / `queue`. */
  names?: { redis?: string; queue?: string };
  /** How long to wait for Redis to answer at first, in ms (default 5000). */
  connectTimeoutMs?: number;
}

export function resolveConnection(target: RedisTarget, name?: string): RedisConnection {
  return typeof target === 'string' ? parseRedisUrl(target, name) : target;
}

export interface OpenedQueue {
  connection: RedisConnection;
  client: Redis;
  queue: Queue;
  keys: ReturnType<typeof queueKeys>;
  close(): Promise<void>;
}

export async function openQueue(target: QueueTarget): Promise<OpenedQueue> {
  const name = checkQueueName(target.queue, target.names?.queue);
  const connection = resolveConnection(target.redis, target.names?.redis);
  const client = await connectRedis(connection, { name: target.names?.redis, timeoutMs: target.connectTimeoutMs });
  const queue = new Queue(name, { connection: client });
  queue.on('error', () => undefined);
  return {
    connection,
    client,
    queue,
    keys: queueKeys(name),
    async close() {
      await queue.close().catch(() => undefined);
      client.disconnect();
    },
  };
}
