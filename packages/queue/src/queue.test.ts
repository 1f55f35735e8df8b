/**
 * The queue library against a real redis-server (started here on a free port, no persistence): enqueue is
 * idempotent, workers store one result per image content and checkpoint, failures are recorded, results of another
 * checkpoint are never reused, export lists every image once in enqueue order, and bad URLs fail fast and clearly.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S2CPNetError } from '@s2cpnet/core';
import { ensureBackend } from '@s2cpnet/core/backend';
import { loadCaptioner } from '@s2cpnet/model';
import { redisServerPath, REDIS_SKIP_REASON, startRedisServer, type RedisServer } from '../../../scripts/redis-server';
import { checkpointId, enqueue, exportResults, parseRedisUrl, queueStatus, runWorker, type ExportedCaption } from './index';
import { saveTinyCheckpoint, writeTinyImages } from './queue.test-util';

const binary = redisServerPath();
let root = '';
let server: RedisServer | null = null;
let images: string[] = [];
const redis = () => server!.url;
const quiet = { backend: 'cpu', cacheDir: false as const, lockSeconds: 5, exitWhenEmpty: true };

describe('Redis URLs and connections', () => {
  it('parses redis:// and rediss:// URLs and names what is wrong in others', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6380/2')).toMatchObject({ host: '127.0.0.1', port: 6380, db: 2, tls: false });
    expect(parseRedisUrl('rediss://user:p%40ss@cache.example:6390')).toMatchObject({ host: 'cache.example', port: 6390, username: 'user', password: 'p@ss', tls: true });
    expect(parseRedisUrl('redis://:secret@h').display).not.toContain('secret');
    expect(() => parseRedisUrl('localhost:6379', '--redis')).toThrow(/--redis: expected redis:\/\//);
    expect(() => parseRedisUrl('http://h:1', '--redis')).toThrow(/scheme "http:"/);
    expect(() => parseRedisUrl('redis://h:99999', '--redis')).toThrow(/port/);
    expect(() => parseRedisUrl('redis://h/x', '--redis')).toThrow(/database/);
  });

  it('no server at the URL is a ConfigError within seconds, naming the URL', async () => {
    const started = Date.now();
    const error = await queueStatus({ redis: 'redis://127.0.0.1:1', queue: 'q' }).catch((e: unknown) => e);
    expect(S2CPNetError.isInstance(error) && error.code).toBe('CONFIG');
    expect(String((error as Error).message)).toMatch(/cannot reach a Redis server at redis:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/);
    expect(Date.now() - started).toBeLessThan(6000);
  });
});

describe.skipIf(!binary)(`queue on a real redis-server${binary ? '' : ` (${REDIS_SKIP_REASON})`}`, () => {
  beforeAll(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-queue-'));
    await ensureBackend({ backend: 'cpu' });
    await saveTinyCheckpoint(path.join(root, 'ckpt-a'), 1);
    await saveTinyCheckpoint(path.join(root, 'ckpt-b'), 2);
    images = writeTinyImages(path.join(root, 'images'), 12);
    server = await startRedisServer(binary!);
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('enqueue is idempotent: the same images again add no job and no image', async () => {
    const first = await enqueue({ redis: redis(), queue: 'idem', images: path.join(root, 'images'), batch: 5 });
    expect(first).toMatchObject({ images: 12, batches: 3, added: 3, existing: 0, newImages: 12 });
    const again = await enqueue({ redis: redis(), queue: 'idem', images: path.join(root, 'images'), batch: 5 });
    expect(again).toMatchObject({ images: 12, batches: 3, added: 0, existing: 3, newImages: 0 });
    const status = await queueStatus({ redis: redis(), queue: 'idem' });
    expect(status.jobs.waiting).toBe(3);
    expect(status.images).toEqual({ total: 12, done: 0, failed: 0, remaining: 12 });
    expect(status.binding).toBeNull();
    // Not captioned yet: export refuses with the count, or lists what is done with allowMissing.
    await expect(exportResults({ redis: redis(), queue: 'idem' })).rejects.toThrow(/12 of 12 images are not captioned yet/);
    expect((await exportResults({ redis: redis(), queue: 'idem', allowMissing: true })).missing).toHaveLength(12);
  });

  it('a worker captions every image once, as the captioner does; a broken image is recorded, not retried', async () => {
    const broken = path.join(root, 'broken', 'broken.png');
    writeTinyImages(path.join(root, 'broken'), 0);
    writeFileSync(broken, 'not an image');
    const list = path.join(root, 'list.txt');
    writeFileSync(list, `# images and one broken file\n${images.slice(0, 6).join('\n')}\n${path.relative(root, broken)}\n\n${images.slice(6).join('\n')}\n`);
    await enqueue({ redis: redis(), queue: 'main', list: path.join(root, 'broken', '..', 'list.txt'), batch: 4 });
    const summary = await runWorker({ redis: redis(), queue: 'main', checkpoint: path.join(root, 'ckpt-a'), ...quiet });
    expect(summary).toMatchObject({ batches: 4, captioned: 12, cached: 0, failed: 1, stopped: 'empty' });

    const status = await queueStatus({ redis: redis(), queue: 'main' });
    expect(status.jobs).toMatchObject({ completed: 4, failed: 0, waiting: 0, active: 0 });
    expect(status.images).toEqual({ total: 13, done: 12, failed: 1, remaining: 0 });
    expect(status.failures).toHaveLength(1);
    expect(status.failures[0]!.file).toBe(broken);
    expect(status.binding?.checkpointId).toBe(await checkpointId(path.join(root, 'ckpt-a')));

    const { records } = await exportResults({ redis: redis(), queue: 'main' });
    expect(records.map((r) => r.file)).toEqual([...images.slice(0, 6), broken, ...images.slice(6)]);
    expect(records[6]).toEqual({ file: broken, error: expect.stringContaining('broken.png') });

    // The same captions as the library's captionFiles (what `s2cpnet caption` runs), probabilities rounded the same.
    const captioner = await loadCaptioner(path.join(root, 'ckpt-a'), { backend: 'cpu', cacheDir: false });
    try {
      const direct = await captioner.captionFiles(images);
      const exported = records.filter((r): r is ExportedCaption => 'caption' in r);
      expect(exported.map((r) => r.caption)).toEqual(direct.map((r) => ('caption' in r ? r.caption : null)));
      expect(exported.map((r) => r.categories)).toEqual(
        direct.map((r) => ('categories' in r ? r.categories.map((c) => ({ name: c.name, probability: Math.round(c.probability * 1000) / 1000 })) : null)),
      );
    } finally {
      captioner.dispose();
    }
  });

  it('the same images on another queue with the same checkpoint are not captioned again', async () => {
    await enqueue({ redis: redis(), queue: 'again', files: images, batch: 6 });
    const summary = await runWorker({ redis: redis(), queue: 'again', checkpoint: path.join(root, 'ckpt-a'), ...quiet });
    expect(summary).toMatchObject({ captioned: 0, cached: 12, failed: 0 });
    const [a, b] = await Promise.all([exportResults({ redis: redis(), queue: 'main' }), exportResults({ redis: redis(), queue: 'again' })]);
    expect(b.records).toEqual(a.records.filter((r) => 'caption' in r));
  });

  it('results of another checkpoint are never reused, and a queue keeps to its checkpoint', async () => {
    await enqueue({ redis: redis(), queue: 'other', files: images, batch: 6 });
    const summary = await runWorker({ redis: redis(), queue: 'other', checkpoint: path.join(root, 'ckpt-b'), ...quiet });
    expect(summary).toMatchObject({ captioned: 12, cached: 0 });
    const [a, b] = await Promise.all([exportResults({ redis: redis(), queue: 'main' }), exportResults({ redis: redis(), queue: 'other' })]);
    expect(b.binding!.id).not.toBe(a.binding!.id);
    // Other random weights: other captions or categories (their probabilities at least).
    expect(JSON.stringify(b.records)).not.toBe(JSON.stringify(a.records.filter((r) => 'caption' in r)));
    // Other decoding settings count as another captioner too.
    await expect(runWorker({ redis: redis(), queue: 'main', checkpoint: path.join(root, 'ckpt-b'), ...quiet })).rejects.toThrow(/queue main is captioned with checkpoint .*ckpt-a/);
    await expect(runWorker({ redis: redis(), queue: 'main', checkpoint: path.join(root, 'ckpt-a'), beam: 1, ...quiet })).rejects.toThrow(/beam 3.*beam 1/);
  });

  it('a batch that is enqueued twice or retried stores nothing twice', async () => {
    // Same images in two overlapping batches of two enqueues: one record per image, and the second batch is cached.
    await enqueue({ redis: redis(), queue: 'overlap', files: images.slice(0, 8), batch: 8 });
    await enqueue({ redis: redis(), queue: 'overlap', files: images.slice(4), batch: 8 });
    const summary = await runWorker({ redis: redis(), queue: 'overlap', checkpoint: path.join(root, 'ckpt-b'), ...quiet });
    expect(summary.captioned + summary.cached).toBe(16);
    expect(summary.captioned).toBe(0); // queue 'other' stored them all for ckpt-b already
    const { records } = await exportResults({ redis: redis(), queue: 'overlap' });
    expect(records.map((r) => r.file)).toEqual(images);
  });

  it('--runtime onnx and a bad queue name are clear errors before anything loads', async () => {
    await expect(runWorker({ redis: redis(), queue: 'main', checkpoint: 'x', runtime: 'onnx' })).rejects.toThrow(/onnx.*not available to queue workers yet/);
    await expect(enqueue({ redis: redis(), queue: 'a b', files: images })).rejects.toThrow(/queue name/);
    await expect(enqueue({ redis: redis(), queue: 'q', scene: path.join(root, 'no-such.tif') })).rejects.toThrow(/no-such\.tif/);
    await expect(enqueue({ redis: redis(), queue: 'q', files: images, sceneSettings: { tile: 32 } })).rejects.toThrow(/only used with scene/);
  });
});
