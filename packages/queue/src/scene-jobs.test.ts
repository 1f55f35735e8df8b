/**
 * Scene jobs against a real redis-server: the tiles of a georeferenced GeoTIFF (UTM zone 10N, one mostly-nodata
 * corner) enqueued with `scene`, captioned by a worker, exported as GeoJSON: the same features, polygons and captions
 * as `captionScene` (what `s2cpnet caption-scene` runs) writes for the same scene and settings; enqueuing again adds
 * nothing, and a second queue finds every tile's result stored under its pixel content.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBackend } from '@s2cpnet/core/backend';
import { benchmarkImage } from '@s2cpnet/data';
import { loadCaptioner } from '@s2cpnet/model';
import { captionScene, sceneToGeoJSON } from '@s2cpnet/scene';
import { redisServerPath, REDIS_SKIP_REASON, startRedisServer, type RedisServer } from '../../../scripts/redis-server';
import { writeTiff, type GeoSpec } from '../../scene/src/tiff-writer.test-util';
import { enqueue, exportGeoJSON, exportResults, queueStatus, runWorker } from './index';
import { saveTinyCheckpoint } from './queue.test-util';

const binary = redisServerPath();
const UTM10: GeoSpec = { epsg: 32610, tiepoint: { i: 0, j: 0, x: 552000, y: 4182000 }, scale: [0.3048, 0.3048] };
let root = '';
let server: RedisServer | null = null;
let sceneFile = '';
const settings = { tile: 48, overlap: 8, maxNodata: 0.5 };

describe.skipIf(!binary)(`scene jobs on a real redis-server${binary ? '' : ` (${REDIS_SKIP_REASON})`}`, () => {
  beforeAll(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-queue-scene-'));
    await ensureBackend({ backend: 'cpu' });
    await saveTinyCheckpoint(path.join(root, 'ckpt'), 3);
    // A 150 x 100 px RGB scene; its top-left 48 x 48 px are nodata (0, 0, 0): the first tile is skipped.
    const image = benchmarkImage(150, 11);
    const data = new Uint8Array(150 * 100 * 3);
    data.set(image.data.subarray(0, data.length));
    for (let y = 0; y < 48; y++) data.fill(0, y * 150 * 3, (y * 150 + 48) * 3);
    for (let i = 3 * 48 * 150; i < data.length; i += 3) if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 0) data[i] = 1; // no stray nodata elsewhere
    sceneFile = path.join(root, 'scene.tif');
    writeFileSync(sceneFile, writeTiff([{ width: 150, height: 100, samples: 3, bits: 8, data, tileSize: 32 }], UTM10, '0'));
    server = await startRedisServer(binary!);
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('enqueue, a worker, export .geojson: the features caption-scene writes for the same scene and settings', async () => {
    const redis = server!.url;
    const first = await enqueue({ redis, queue: 'scene', scene: sceneFile, sceneSettings: settings, batch: 3 });
    // 150 x 100 px in 48 px tiles 40 px apart: 4 columns x 3 rows (the last ones moved back to the edges).
    expect(first).toMatchObject({ images: 12, batches: 4, added: 4, newImages: 12 });
    expect(await enqueue({ redis, queue: 'scene', scene: sceneFile, sceneSettings: settings, batch: 3 })).toMatchObject({ added: 0, existing: 4, newImages: 0 });

    const summary = await runWorker({ redis, queue: 'scene', checkpoint: path.join(root, 'ckpt'), backend: 'cpu', cacheDir: false, lockSeconds: 5, exitWhenEmpty: true, batchSize: 2 });
    expect(summary).toMatchObject({ batches: 4, captioned: 11, cached: 0, failed: 1, stopped: 'empty' });
    const status = await queueStatus({ redis, queue: 'scene' });
    expect(status.images).toEqual({ total: 12, done: 11, failed: 1, remaining: 0 });
    expect(status.failures[0]).toMatchObject({ file: `${sceneFile}#0,0,48,48`, error: expect.stringMatching(/^skipped: 100\.0 % of the tile is nodata/) });

    const { geojson, missing } = await exportGeoJSON({ redis, queue: 'scene' });
    expect(missing).toEqual([]);
    const captioner = await loadCaptioner(path.join(root, 'ckpt'), { backend: 'cpu', cacheDir: false, batchSize: 2 });
    try {
      const direct = sceneToGeoJSON(await captionScene(captioner, sceneFile, { ...settings, batchSize: 2 }));
      // Everything equal but probabilities, which the queue stores rounded to 3 decimals (as caption --out does) and
      // GeoJSON writes with 4: they agree to within the rounding.
      type Category = { name: string; probability: number };
      const categories = (fc: typeof geojson) => fc.features.map((f) => f.properties.categories as Category[]);
      const withoutProbabilities = (fc: typeof geojson) =>
        fc.features.map((f) => ({ ...f, properties: { ...f.properties, categories: (f.properties.categories as Category[]).map((c) => c.name) } }));
      expect(withoutProbabilities(geojson)).toEqual(withoutProbabilities(direct));
      const [queued, captioned] = [categories(geojson).flat(), categories(direct).flat()];
      expect(queued.length).toBe(captioned.length);
      queued.forEach((c, i) => expect(Math.abs(c.probability - captioned[i]!.probability)).toBeLessThanOrEqual(0.00051));
      expect(geojson.features.map((f) => f.properties.status)).toEqual(['skipped', ...Array(11).fill('captioned')]);
      expect(geojson.s2cpnet).toMatchObject({ coordinates: 'EPSG:4326', tiles: 12, captioned: 11, skipped: 1, tile: 48, overlap: 8 });
      expect(geojson.s2cpnet).toEqual({ ...direct.s2cpnet });
    } finally {
      captioner.dispose();
    }

    // JSON export: one record per tile, named by its window; the skipped tile with why.
    const { records } = await exportResults({ redis, queue: 'scene' });
    expect(records).toHaveLength(12);
    expect(records[0]).toEqual({ file: `${sceneFile}#0,0,48,48`, error: expect.stringContaining('nodata') });
    expect(records[1]!.file).toBe(`${sceneFile}#40,0,88,48`);

    // Another queue, same checkpoint, same tiles: every result is found by the tiles' pixel content.
    await enqueue({ redis, queue: 'scene-again', scene: sceneFile, sceneSettings: settings, batch: 6 });
    const again = await runWorker({ redis, queue: 'scene-again', checkpoint: path.join(root, 'ckpt'), backend: 'cpu', cacheDir: false, lockSeconds: 5, exitWhenEmpty: true });
    expect(again).toMatchObject({ captioned: 0, cached: 11, failed: 1 });
    expect((await exportGeoJSON({ redis, queue: 'scene-again' })).geojson).toEqual(geojson);
  });

  it('GeoJSON export of image files is refused: their places are unknown', async () => {
    const redis = server!.url;
    await enqueue({ redis, queue: 'files-only', files: [sceneFile], batch: 1 });
    await runWorker({ redis, queue: 'files-only', checkpoint: path.join(root, 'ckpt'), backend: 'cpu', cacheDir: false, lockSeconds: 5, exitWhenEmpty: true });
    await expect(exportGeoJSON({ redis, queue: 'files-only' })).rejects.toThrow(/is an image file, not a tile of a scene enqueued with --scene/);
  });
});
