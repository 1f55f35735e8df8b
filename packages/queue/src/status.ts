/** `queueStatus()`: jobs, images, rate and failures of a queue. */
import { openQueue, type QueueTarget } from './connection';
import type { QueueBinding } from './worker';

export interface QueueStatus {
  queue: string;
  /** The Redis URL, without its password. */
  redis: string;
  /** The checkpoint and settings the queue is captioned with, or null before the first worker started. */
  binding: QueueBinding | null;
  /** BullMQ jobs (batches) by state. */
  jobs: { waiting: number; active: number; delayed: number; completed: number; failed: number };
  images: {
    /** Distinct images enqueued. */
    total: number;
    /** Captioned (or found already captioned by this checkpoint). */
    done: number;
    /** Recorded as failed with their error (not captioned). */
    failed: number;
    /** Neither yet. */
    remaining: number;
  };
  rate: {
    /** Images captioned per second over the last minute. */
    lastMinute: number;
    /** Images per second from the first to the last one captioned. */
    overall: number;
    /** Seconds until `remaining` are done at the last minute's rate (at the overall rate when the last minute saw none); null when nothing is left or nothing was done. */
    etaSeconds: number | null;
    /** When the first image was captioned, and the last (ISO times), or null. */
    first: string | null;
    last: string | null;
  };
  /** Failed images (up to `failureLimit`), oldest first. */
  failures: { file: string; error: string }[];
  /** Batches that failed for good (their attempts used up), up to `failureLimit`. */
  failedBatches: { id: string; files: number; reason: string; attempts: number }[];
}

/**
 * Counts and rates of a queue, its failed images (with their errors) and failed batches.
 *
 * @example
 * ```ts
 * const status = await queueStatus({ redis: 'redis://127.0.0.1:6379', queue: 'ucm' });
 * console.log(`${status.images.done} of ${status.images.total} images`);
 * ```
 */
export async function queueStatus(options: QueueTarget & { failureLimit?: number; now?: number }): Promise<QueueStatus> {
  const limit = options.failureLimit ?? 20;
  const opened = await openQueue(options);
  try {
    const { client, keys, queue } = opened;
    const now = options.now ?? Date.now();
    const [counts, total, done, failedCount, bindingText, lastMinute, first, last] = await Promise.all([
      queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized'),
      client.llen(keys.images),
      client.zcard(keys.done),
      client.hlen(keys.failures),
      client.get(keys.captioner),
      client.zcount(keys.done, now - 60_000, '+inf'),
      client.zrange(keys.done, 0, 0, 'WITHSCORES'),
      client.zrange(keys.done, -1, -1, 'WITHSCORES'),
    ]);
    const failures: QueueStatus['failures'] = [];
    if (failedCount > 0) {
      const all = await client.hgetall(keys.failures);
      const rows = Object.entries(all).map(([file, json]) => ({ file, ...(JSON.parse(json) as { error: string; at: number }) }));
      rows.sort((a, b) => a.at - b.at);
      for (const row of rows.slice(0, limit)) failures.push({ file: row.file, error: row.error });
    }
    const failedJobs = counts.failed > 0 ? await queue.getFailed(0, limit - 1) : [];
    const firstAt = first.length ? Number(first[1]) : null;
    const lastAt = last.length ? Number(last[1]) : null;
    const remaining = Math.max(0, total - done - failedCount);
    const perSecondLastMinute = lastMinute / 60;
    const overall = firstAt !== null && lastAt !== null && lastAt > firstAt ? (done - 1) / ((lastAt - firstAt) / 1000) : 0;
    const rate = perSecondLastMinute > 0 ? perSecondLastMinute : overall;
    return {
      queue: options.queue,
      redis: opened.connection.display,
      binding: bindingText ? (JSON.parse(bindingText) as QueueBinding) : null,
      jobs: {
        waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
        active: counts.active ?? 0,
        delayed: counts.delayed ?? 0,
        completed: counts.completed ?? 0,
        failed: counts.failed ?? 0,
      },
      images: { total, done, failed: failedCount, remaining },
      rate: {
        lastMinute: perSecondLastMinute,
        overall,
        etaSeconds: remaining > 0 && rate > 0 ? remaining / rate : null,
        first: firstAt !== null ? new Date(firstAt).toISOString() : null,
        last: lastAt !== null ? new Date(lastAt).toISOString() : null,
      },
      failures,
      failedBatches: failedJobs.map((job) => ({
        id: String(job.id),
        files: Array.isArray((job.data as { files?: unknown[] })?.files) ? (job.data as { files: unknown[] }).files.length : 0,
        reason: job.failedReason ?? '',
        attempts: job.attemptsMade,
      })),
    };
  } finally {
    await opened.close();
  }
}
