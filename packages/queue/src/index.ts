/**
 * @s2cpnet/queue: caption image archives across machines with S²CPNet on BullMQ and a stock Redis server. Batches of
 * images are jobs; results are stored once per image content (sha256) and checkpoint; any number of workers on any
 * number of machines caption them; `queueStatus` and `exportResults` read the progress and the results.
 *
 * @example
 * ```ts
 * import { enqueue, runWorker, exportResults } from '@s2cpnet/queue';
 * await enqueue({ redis: 'redis://127.0.0.1:6379', queue: 'ucm', images: '/data/ucm/images' });
 * await runWorker({ redis: 'redis://127.0.0.1:6379', queue: 'ucm', checkpoint: '@s2cpnet/weights-ucm-mobilenet', exitWhenEmpty: true });
 * const { records } = await exportResults({ redis: 'redis://127.0.0.1:6379', queue: 'ucm' });
 * ```
 * @packageDocumentation
 */
export { parseRedisUrl, connectRedis, defaultRedisUrl, redisOptions, type RedisConnection } from './redis';
export { checkQueueName, queueKeys, resultsKey } from './keys';
export { checkpointId, captionerId, type CaptionSettings } from './checkpoint-id';
export { readImageList } from './images';
export { batchJobId, IMAGES_JOB, SCENE_JOB, JOB_ATTEMPTS, JOB_BACKOFF_MS, type BatchResult, type CaptionJobData, type ImagesJobData, type SceneJobData } from './jobs';
export type { QueueTarget, RedisTarget } from './connection';
export { enqueue, type EnqueueOptions, type EnqueueSummary } from './enqueue';
export { runWorker, roundProbability, type RunWorkerOptions, type WorkerCaptionerOptions, type WorkerSummary, type QueueBinding, type StoredResult } from './worker';
export { queueStatus, type QueueStatus } from './status';
export {
  normalizeSceneSettings,
  planScene,
  sceneTileKey,
  sceneBatchJobId,
  tileContentHash,
  type SceneJobSettings,
  type SceneJobTile,
  type StoredScene,
  type StoredSceneTile,
} from './scene-jobs';
export { exportResults, exportGeoJSON, type GeoJsonExportResult, type ExportOptions, type ExportResult, type ExportedRecord, type ExportedCaption, type ExportedFailure } from './export';
