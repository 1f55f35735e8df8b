/**
 * What the README promises when Redis restarts: a worker keeps its connections, waits while the server is away and
 * goes on when it is back (same port, same append-only file); the batch that was running while Redis was killed is
 * run again (its stored results found by content), and the export holds every image once with the caption the
 * captioner gives.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBackend } from '@s2cpnet/core/backend';
import { loadCaptioner } from '@s2cpnet/model';
import { redisServerPath, REDIS_SKIP_REASON, startRedisServer, type RedisServer } from '../../../scripts/redis-server';
import { enqueue, exportResults, runWorker, type ExportedCaption } from './index';
import { saveTinyCheckpoint, writeTinyImages } from './queue.test-util';

const binary = redisServerPath();
let root = '';
let server: RedisServer | null = null;

describe.skipIf(!binary)(`a Redis restart under a running worker${binary ? '' : ` (${REDIS_SKIP_REASON})`}`, () => {
  beforeAll(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-queue-restart-'));
    await ensureBackend({ backend: 'cpu' });
    await saveTinyCheckpoint(path.join(root, 'ckpt'), 4);
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('the worker reconnects and finishes; every image is exported once, as the captioner captions it', async () => {
    const images = writeTinyImages(path.join(root, 'images'), 12, 96);
    const persistDir = path.join(root, 'redis');
    mkdirSync(persistDir);
    // fsync on every write: this test checks reconnecting, not how much a crash may lose (at most a second with
    // everysec, which the README states).
    server = await startRedisServer(binary!, { persistDir, appendfsync: 'always' });
    const { port, url } = server;
    await enqueue({ redis: url, queue: 'restart', files: images, batch: 3 });

    const log: string[] = [];
    let restarted: Promise<void> | null = null;
    const worker = runWorker({
      redis: url,
      queue: 'restart',
      checkpoint: path.join(root, 'ckpt'),
      backend: 'cpu',
      cacheDir: false,
      batchSize: 1,
      lockSeconds: 2,
      exitWhenEmpty: true,
      onLog: (line) => {
        log.push(line);
        // After the first batch is stored, while the second runs: kill Redis, and start it again a second later.
        if (!restarted && /batch \S+ started/.test(line) && log.some((l) => /batch \S+ done/.test(l))) {
          restarted = (async () => {
            await server!.stop();
            await new Promise((r) => setTimeout(r, 1000));
            server = await startRedisServer(binary!, { port, persistDir, appendfsync: 'always' });
          })();
        }
      },
    });
    const summary = await worker;
    expect(restarted, log.join('\n')).not.toBeNull();
    await restarted;
    expect(summary.stopped).toBe('empty');

    const { records, missing } = await exportResults({ redis: url, queue: 'restart' });
    expect(missing).toEqual([]);
    expect(records.map((r) => r.file)).toEqual(images);
    const captioner = await loadCaptioner(path.join(root, 'ckpt'), { backend: 'cpu', cacheDir: false });
    try {
      const direct = await captioner.captionFiles(images);
      expect(records.map((r) => (r as ExportedCaption).caption)).toEqual(direct.map((r) => ('caption' in r ? r.caption : null)));
    } finally {
      captioner.dispose();
    }
  }, 180_000);
});
