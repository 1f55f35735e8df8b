/** `exportResults()`: one record per enqueued image, in enqueue order, as `s2cpnet caption --out x.json` writes them. */
import * as path from 'node:path';
import { InputError } from '@s2cpnet/core';
import { openQueue, type QueueTarget } from './connection';
import { sceneToGeoJSON, type SceneFeatureCollection, type SceneTileCaption, type SkippedSceneTile } from '@s2cpnet/scene';
import { resultsKey } from './keys';
import type { StoredScene, StoredSceneTile } from './scene-jobs';
import type { QueueBinding, StoredResult } from './worker';

/** A captioned image: the record of `caption --out x.json`. */
export interface ExportedCaption extends StoredResult {
  file: string;
}

/** An image that could not be captioned, with the error (as `caption --on-error skip` records it). */
export interface ExportedFailure {
  file: string;
  error: string;
}

export type ExportedRecord = ExportedCaption | ExportedFailure;

export interface ExportOptions extends QueueTarget {
  /** Leave out images not captioned yet instead of refusing (they are listed in `missing`). Default false. */
  allowMissing?: boolean;
  /** Write `file` relative to this folder (as `caption` does for its working folder). Default: absolute paths, as enqueued. */
  relativeTo?: string;
}

export interface ExportResult {
  records: ExportedRecord[];
  /** Images enqueued but neither captioned nor failed yet (left out of `records`). */
  missing: string[];
  binding: QueueBinding | null;
}

const CHUNK = 1000;

/**
 * Reads a queue's results: for every image enqueued (once each, in enqueue order) the caption record stored for its
 * content hash under the queue's checkpoint and settings, or its failure. Images not done yet are an `InputError`
 * giving their count and the first few, unless `allowMissing`.
 *
 * @example
 * ```ts
 * const { records } = await exportResults({ redis: 'redis://127.0.0.1:6379', queue: 'ucm' });
 * ```
 */
export async function exportResults(options: ExportOptions): Promise<ExportResult> {
  const opened = await openQueue(options);
  try {
    const { client, keys } = opened;
    const bindingText = await client.get(keys.captioner);
    const binding = bindingText ? (JSON.parse(bindingText) as QueueBinding) : null;
    const total = await client.llen(keys.images);
    if (total === 0) throw new InputError(`queue ${options.queue} on ${opened.connection.display} holds no images (was anything enqueued with queue add, on this Redis and database?)`);
    const records: ExportedRecord[] = [];
    const missing: string[] = [];
    const shown = (file: string) => (options.relativeTo ? path.relative(options.relativeTo, file) || file : file);
    for (let from = 0; from < total; from += CHUNK) {
      const files = await client.lrange(keys.images, from, from + CHUNK - 1);
      const [hashes, failures] = await Promise.all([client.hmget(keys.contentHash, ...files), client.hmget(keys.failures, ...files)]);
      const known = hashes.map((h, i) => (h && binding ? i : -1)).filter((i) => i >= 0);
      const stored = known.length > 0 ? await client.hmget(resultsKey(binding!.id), ...known.map((i) => hashes[i]!)) : [];
      const byIndex = new Map(known.map((fileIndex, k) => [fileIndex, stored[k]]));
      files.forEach((file, i) => {
        const result = byIndex.get(i);
        if (result) records.push({ file: shown(file), ...(JSON.parse(result) as StoredResult) });
        else if (failures[i]) records.push({ file: shown(file), error: (JSON.parse(failures[i]!) as { error: string }).error });
        else missing.push(file);
      });
    }
    if (missing.length > 0 && !options.allowMissing) {
      throw new InputError(
        `queue ${options.queue}: ${missing.length} of ${total} images are not captioned yet (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', ...' : ''}); ` +
          'wait for the workers (see queue status), or export what is done with allowMissing (--allow-missing)',
      );
    }
    return { records, missing, binding };
  } finally {
    await opened.close();
  }
}

export interface GeoJsonExportResult {
  /** One FeatureCollection: the tiles of every scene enqueued, in enqueue order (`sceneToGeoJSON`'s features). */
  geojson: SceneFeatureCollection;
  missing: string[];
  binding: QueueBinding | null;
}

/**
 * The results of a queue of scene jobs as GeoJSON, as `s2cpnet caption-scene` writes it: one Polygon per tile in
 * WGS84 with its caption and categories (`sceneToGeoJSON` of `@s2cpnet/scene`). Tiles skipped for nodata are
 * features with `status: 'skipped'`. With several scenes the features of all of them are in one collection (each
 * with a `scene` property) and the `s2cpnet` member lists the scenes. A queue holding image files (not scene tiles)
 * is refused: their places are unknown.
 */
export async function exportGeoJSON(options: ExportOptions): Promise<GeoJsonExportResult> {
  const { records, missing, binding } = await exportResults({ ...options, relativeTo: undefined });
  const opened = await openQueue(options);
  try {
    const { client, keys } = opened;
    const byScene = new Map<string, { stored: StoredScene; tiles: SceneTileCaption[]; skipped: SkippedSceneTile[] }>();
    for (let from = 0; from < records.length; from += CHUNK) {
      const chunk = records.slice(from, from + CHUNK);
      const [tiles, failures] = await Promise.all([client.hmget(keys.sceneTiles, ...chunk.map((r) => r.file)), client.hmget(keys.failures, ...chunk.map((r) => r.file))]);
      for (let i = 0; i < chunk.length; i++) {
        const record = chunk[i]!;
        if (!tiles[i]) {
          throw new InputError(`queue ${options.queue}: ${record.file} is an image file, not a tile of a scene enqueued with --scene: GeoJSON needs tile positions; export .json, .jsonl or .csv`);
        }
        const tile = JSON.parse(tiles[i]!) as StoredSceneTile;
        let entry = byScene.get(tile.scene);
        if (!entry) {
          const text = await client.hget(keys.scenes, tile.scene);
          if (!text) throw new InputError(`queue ${options.queue}: the description of scene ${tile.scene} is missing from Redis (was the queue partly deleted?)`);
          entry = { stored: JSON.parse(text) as StoredScene, tiles: [], skipped: [] };
          byScene.set(tile.scene, entry);
        }
        const base = { index: tile.index, row: tile.row, col: tile.col, window: tile.window, polygon: tile.polygon };
        if ('error' in record) {
          const failure = failures[i] ? (JSON.parse(failures[i]!) as { nodataFraction?: number }) : {};
          entry.skipped.push({ ...base, reason: 'nodata', nodataFraction: failure.nodataFraction ?? 1 });
        } else entry.tiles.push({ ...base, caption: record.caption, categories: record.categories });
      }
    }
    const collections = [...byScene.entries()].map(([scene, { stored, tiles, skipped }]) => ({
      scene,
      collection: sceneToGeoJSON({ scene: stored.summary, coordinates: stored.coordinates, plan: stored.plan, tiles, skipped, preview: null, seconds: 0 }),
    }));
    if (collections.length === 0) throw new InputError(`queue ${options.queue}: no tile is captioned yet`);
    if (collections.length === 1) return { geojson: collections[0]!.collection, missing, binding };
    let id = 0;
    return {
      geojson: {
        type: 'FeatureCollection',
        s2cpnet: { scenes: collections.map((c) => c.collection.s2cpnet) },
        features: collections.flatMap((c) => c.collection.features.map((f) => ({ ...f, id: id++, properties: { ...f.properties, scene: c.scene } }))),
      },
      missing,
      binding,
    };
  } finally {
    await opened.close();
  }
}
