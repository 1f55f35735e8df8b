/**
 * The Redis keys this package writes beside BullMQ's own (`bull:<queue>:*`). Queue names are checked so that a key
 * can never run into another queue's.
 */
import { ConfigError } from '@s2cpnet/core';

/** Letters, digits, `.`, `_` and `-`, 1 to 100 characters. */
export function checkQueueName(name: string, flag = 'queue'): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9._-]{1,100}$/.test(name)) {
    throw new ConfigError(flag, `expected a queue name of letters, digits, '.', '_' and '-' (1 to 100 characters), found ${JSON.stringify(name)}`);
  }
  return name;
}

/** Keys of one queue. */
export function queueKeys(queue: string) {
  const base = `s2cpnet:queue:${checkQueueName(queue)}`;
  return {
    /** LIST of every image path enqueued, in enqueue order, each once (export's order). */
    images: `${base}:images`,
    /** SET of the same paths (membership, so that a path is listed once). */
    imageSet: `${base}:image-set`,
    /** HASH path -> sha256 of its bytes, written by the worker that read it. */
    contentHash: `${base}:content-hash`,
    /** ZSET path -> time (ms) it was first captioned (done count and rate). */
    done: `${base}:done`,
    /** HASH path -> JSON {error, at} of images that could not be captioned. */
    failures: `${base}:failures`,
    /** STRING: JSON of the captioner the queue is bound to (checkpoint id and settings), set by the first worker. */
    captioner: `${base}:captioner`,
    /** HASH tile key -> JSON StoredSceneTile (scene, index, row, col, window, WGS84 outline), for scene jobs. */
    sceneTiles: `${base}:scene-tiles`,
    /** HASH scene path -> JSON StoredScene (its description, plan and settings), for scene jobs. */
    scenes: `${base}:scenes`,
    /** STRING: time (ms) of the first enqueue. */
    created: `${base}:created`,
  };
}

/** HASH sha256 of image bytes -> JSON {caption, categories}: results of one checkpoint with one set of decoding settings, shared by all queues. */
export function resultsKey(captionerId: string): string {
  return `s2cpnet:results:${captionerId}`;
}
