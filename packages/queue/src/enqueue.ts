/** `enqueue()`: puts image batches on a queue, idempotently. */
import * as path from 'node:path';
import { ConfigError, InterruptedError } from '@s2cpnet/core';
import { openQueue, type QueueTarget } from './connection';
import { listImageFolder } from '@s2cpnet/data';
import { readImageList } from './images';
import { batchJobId, IMAGES_JOB, JOB_ATTEMPTS, JOB_BACKOFF_MS, SCENE_JOB, type CaptionJobData, type ImagesJobData, type SceneJobData } from './jobs';
import { normalizeSceneSettings, planScene, sceneBatchJobId, type SceneJobSettings } from './scene-jobs';

export interface EnqueueOptions extends QueueTarget {
  /** A folder of images (sorted by name, as `s2cpnet caption` takes them). */
  images?: string;
  /** With `images`: also the images in its subfolders. */
  recursive?: boolean;
  /** A list file: one path per line, relative to the file's folder. */
  list?: string;
  /** Image paths given directly (relative to `cwd`). */
  files?: readonly string[];
  /**
   * A GeoTIFF/COG scene: its tiles (planned as `caption-scene` plans them, with `sceneSettings`) are the items,
   * named `<scene>#<x0>,<y0>,<x1>,<y1>`; export can then write GeoJSON.
   */
  scene?: string;
  /** How the scene is read and cut (tile, overlap, gsd, bands, sourceCrs, nodata, maxNodata). */
  sceneSettings?: SceneJobSettings;
  /** Images (or scene tiles) per job. Default 64. */
  batch?: number;
  /** Relative paths are resolved against this. Default `process.cwd()`. */
  cwd?: string;
  signal?: AbortSignal;
  /** Batches handled of the total, after each. */
  onProgress?: (done: number, total: number) => void;
}

export interface EnqueueSummary {
  queue: string;
  /** Distinct images in what was given. */
  images: number;
  /** Batches formed from them. */
  batches: number;
  /** Batches added as new jobs. */
  added: number;
  /** Batches the queue already held (waiting, running or done): left as they are. */
  existing: number;
  /** Batches the queue held as failed: retried. */
  retried: number;
  /** Images new to the queue's image list (what `export` lists). */
  newImages: number;
}

/** Registers paths in the queue's ordered image list, each once; returns how many were new. */
const REGISTER_SCRIPT = `
local added = 0
for i = 1, #ARGV do
  if redis.call('SADD', KEYS[1], ARGV[i]) == 1 then
    redis.call('RPUSH', KEYS[2], ARGV[i])
    added = added + 1
  end
end
return added`;

/**
 * Enqueues images in batches of `batch` (default 64), one BullMQ job per batch, with absolute paths (every worker
 * must see the same paths: a shared file system). Idempotent: a batch's job id is the hash of its paths, so
 * enqueuing the same images with the same batch size again adds nothing (a batch that failed is retried); each path
 * is added once to the queue's image list, in the order first given, which is the order `exportResults` lists them.
 *
 * @example
 * ```ts
 * import { enqueue } from '@s2cpnet/queue';
 * await enqueue({ redis: 'redis://127.0.0.1:6379', queue: 'ucm', images: 'data/ucm/images', batch: 64 });
 * ```
 */
export async function enqueue(options: EnqueueOptions): Promise<EnqueueSummary> {
  const sources = [options.images, options.list, options.files, options.scene].filter((s) => s !== undefined).length;
  if (sources !== 1) throw new ConfigError('images/list/scene', `give exactly one of images (a folder), list (a file of paths), files or scene, found ${sources}`);
  const batch = options.batch ?? 64;
  if (!Number.isInteger(batch) || batch < 1) throw new ConfigError('batch', `expected a positive integer, found ${JSON.stringify(options.batch)}`);
  if (options.sceneSettings !== undefined && options.scene === undefined) throw new ConfigError('sceneSettings', 'only used with scene');
  const cwd = options.cwd ?? process.cwd();
  /** The items of each batch (the names export lists) and the job that captions them. */
  const batches: { items: string[]; jobId: string; name: string; data: CaptionJobData }[] = [];
  let sceneEntries: { file: string; scene: string; tiles: [string, string][] } | null = null;
  let files: string[];
  if (options.scene !== undefined) {
    const sceneFile = path.resolve(cwd, options.scene);
    const settings = normalizeSceneSettings(options.sceneSettings ?? {});
    const planned = await planScene(sceneFile, settings, options.signal);
    files = planned.tiles.map((t) => t.key);
    sceneEntries = {
      file: sceneFile,
      scene: JSON.stringify(planned.scene),
      tiles: planned.tiles.map((t) => [t.key, JSON.stringify({ scene: t.scene, index: t.index, row: t.row, col: t.col, window: t.window, polygon: t.polygon })]),
    };
    for (let i = 0; i < planned.tiles.length; i += batch) {
      const tiles = planned.tiles.slice(i, i + batch).map((t) => ({ key: t.key, index: t.index, readWindow: t.readWindow }));
      const data: SceneJobData = { kind: 'scene', scene: sceneFile, tiles, settings };
      batches.push({ items: tiles.map((t) => t.key), jobId: sceneBatchJobId(sceneFile, settings, tiles), name: SCENE_JOB, data });
    }
  } else {
    const given = options.images !== undefined ? await listImageFolder(path.resolve(cwd, options.images), { recursive: options.recursive }) : options.list !== undefined ? await readImageList(path.resolve(cwd, options.list)) : options.files!.map((f) => path.resolve(cwd, f));
    files = [...new Set(given)];
    for (let i = 0; i < files.length; i += batch) {
      const items = files.slice(i, i + batch);
      const data: ImagesJobData = { kind: 'images', files: items };
      batches.push({ items, jobId: batchJobId(items), name: IMAGES_JOB, data });
    }
  }

  const opened = await openQueue(options);
  const summary: EnqueueSummary = { queue: options.queue, images: files.length, batches: batches.length, added: 0, existing: 0, retried: 0, newImages: 0 };
  try {
    await opened.client.set(opened.keys.created, String(Date.now()), 'NX');
    if (sceneEntries) {
      // The scene's description and every tile's outline, before any job can finish (export reads them).
      await opened.client.hset(opened.keys.scenes, sceneEntries.file, sceneEntries.scene);
      for (let i = 0; i < sceneEntries.tiles.length; i += 1000) await opened.client.hset(opened.keys.sceneTiles, Object.fromEntries(sceneEntries.tiles.slice(i, i + 1000)));
    }
    for (let b = 0; b < batches.length; b++) {
      if (options.signal?.aborted) throw new InterruptedError(`enqueue interrupted after ${b} of ${batches.length} batches; run it again to add the rest (nothing is added twice)`);
      const { items, jobId, name, data } = batches[b]!;
      // The paths first, then the job: a crash in between is repaired by running the same enqueue again.
      summary.newImages += Number(await opened.client.eval(REGISTER_SCRIPT, 2, opened.keys.imageSet, opened.keys.images, ...items));
      const existing = await opened.queue.getJob(jobId);
      if (existing) {
        if ((await existing.getState()) === 'failed') {
          await existing.retry('failed');
          summary.retried++;
        } else summary.existing++;
      } else {
        await opened.queue.add(name, data, {
          jobId,
          attempts: JOB_ATTEMPTS,
          backoff: { type: 'exponential', delay: JOB_BACKOFF_MS },
          removeOnComplete: false,
          removeOnFail: false,
        });
        summary.added++;
      }
      options.onProgress?.(b + 1, batches.length);
    }
  } finally {
    await opened.close();
  }
  return summary;
}
