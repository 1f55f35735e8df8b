/**
 * `@s2cpnet/queue` (BullMQ and ioredis) is an optional peer of the CLI: the `queue` and `worker` commands load it on
 * first use, and its absence is a message naming the package and the install command.
 */
import { ConfigError } from '@s2cpnet/core';

export type QueuePackage = typeof import('@s2cpnet/queue');

/** Loads `@s2cpnet/queue`; `importer` is for tests. */
export async function loadQueuePackage(importer: () => Promise<QueuePackage> = () => import('@s2cpnet/queue')): Promise<QueuePackage> {
  try {
    return await importer();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && /@s2cpnet\/queue|bullmq|ioredis/.test(String((error as Error).message))) {
      throw new ConfigError(
        'queue',
        'the queue and worker commands need the optional package @s2cpnet/queue (BullMQ on Redis): npm install @s2cpnet/queue',
        { cause: error },
      );
    }
    throw error;
  }
}

/** The --redis flag's help text and default. */
export const REDIS_FLAG_HELP = '--redis URL             redis://[[user]:password@]host[:port][/db], rediss:// for TLS\n                          [default: S2CPNET_REDIS_URL, else redis://127.0.0.1:6379]';
