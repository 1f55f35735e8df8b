/** `exportResults()`: one record per enqueued image, in enqueue order, as `s2cpnet caption --out x.json` writes them. */
import * as path from 'node:path';
import { InputError } from '@s2cpnet/core';
import { openQueue, type QueueTarget } from './connection';
import { resultsKey } from './keys';
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
