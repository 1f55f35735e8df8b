/** `runWorker()`: captions the queue's batches with one loaded checkpoint until stopped. */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { ConfigError } from '@s2cpnet/core';
import { loadCaptioner, type Captioner, type CaptionerLoadProgress, type LoadCaptionerOptions } from '@s2cpnet/model';
import { captionerId, checkpointId, type CaptionSettings } from './checkpoint-id';
import { resolveConnection, type QueueTarget } from './connection';
import type { BatchResult, CaptionJobData, SceneJobData } from './jobs';
import { openSceneWith, tileContentHash } from './scene-jobs';
import type { Scene } from '@s2cpnet/scene';
import { checkQueueName, queueKeys, resultsKey } from './keys';
import { connectRedis, redisOptions } from './redis';

/** A stored result: what `caption --out x.json` writes for an image, less its file name. */
export interface StoredResult {
  caption: string;
  /** Probabilities rounded to 3 decimals, as `s2cpnet caption` writes them. */
  categories: { name: string; probability: number }[];
}

/** What the first worker of a queue records: every later worker must have the same id. */
export interface QueueBinding {
  /** Results key: checkpoint id and decoding settings (see `captionerId`). */
  id: string;
  checkpointId: string;
  settings: CaptionSettings;
  /** The checkpoint as the first worker named it, and the folder it resolved to there. */
  checkpoint: string;
  dir: string;
  boundAt: string;
}

/** The captioner settings a worker takes, as `s2cpnet caption` takes them (the same values give the same captions). */
export type WorkerCaptionerOptions = Pick<
  LoadCaptionerOptions,
  'backend' | 'threads' | 'beam' | 'maxLength' | 'lengthPenalty' | 'batchSize' | 'maskSize' | 'cacheDir' | 'cacheHint' | 'maxPixels' | 'cwd' | 'warn'
>;

export interface RunWorkerOptions extends QueueTarget, WorkerCaptionerOptions {
  /** Checkpoint folder, installed weights package or archive URL with `#sha256=HEX`, as `loadCaptioner` takes it. */
  checkpoint: string;
  /** 'tfjs' (default). 'onnx' is not available to workers yet (caption and evaluate have it). */
  runtime?: 'tfjs' | 'onnx';
  /** Jobs this worker runs at once (BullMQ concurrency). Default 1: tfjs runs one batch at a time per process. */
  concurrency?: number;
  /** Job lock, in seconds (default 30): extended after every forward pass; a worker silent for longer loses its batch. */
  lockSeconds?: number;
  /** Stop once the queue holds no waiting, delayed or running job. Default false: wait for more work. */
  exitWhenEmpty?: boolean;
  /** Aborted: finish the running batches (their results are stored), then stop. */
  signal?: AbortSignal;
  /** One line per event (ready, batch started/finished, retries, errors), without a newline. */
  onLog?: (line: string) => void;
  onLoadProgress?: (progress: CaptionerLoadProgress) => void;
  /** Called when a batch starts, with its job id and image count (tests watch it). */
  onBatchStart?: (jobId: string, images: number) => void;
}

export interface WorkerSummary {
  batches: number;
  captioned: number;
  cached: number;
  failed: number;
  seconds: number;
  /** Why the worker stopped. */
  stopped: 'signal' | 'empty';
  binding: QueueBinding;
}

/** Rounds as `s2cpnet caption` does for its output files. */
export function roundProbability(p: number): number {
  return Math.round(p * 1000) / 1000;
}

async function sha256OfFile(file: string): Promise<string | null> {
  try {
    return createHash('sha256').update(await fsp.readFile(file)).digest('hex');
  } catch {
    return null; // the captioner reads it again and records why it failed
  }
}

/**
 * Binds the queue to this captioner (first worker) or checks that it is the one bound: results of two checkpoints,
 * or of two decoding settings, are never mixed in one queue.
 */
async function bindQueue(client: Redis, key: string, binding: QueueBinding, queue: string, flag: string): Promise<QueueBinding> {
  await client.set(key, JSON.stringify(binding), 'NX');
  const stored = JSON.parse((await client.get(key)) ?? 'null') as QueueBinding | null;
  if (!stored) throw new ConfigError(flag, `queue ${queue}: the binding to a checkpoint vanished while it was being set (was the queue removed?)`);
  if (stored.id !== binding.id) {
    throw new ConfigError(
      flag,
      `queue ${queue} is captioned with checkpoint ${stored.checkpoint} (id ${stored.checkpointId.slice(0, 12)}, beam ${stored.settings.beam}, max length ${stored.settings.maxLength}, ` +
        `length penalty ${stored.settings.lengthPenalty}, mask size ${stored.settings.maskSize ?? 'none'}); this worker has ${binding.checkpoint} (id ${binding.checkpointId.slice(0, 12)}, ` +
        `beam ${binding.settings.beam}, max length ${binding.settings.maxLength}, length penalty ${binding.settings.lengthPenalty}, mask size ${binding.settings.maskSize ?? 'none'}). ` +
        'One queue holds the results of one checkpoint with one set of decoding settings: start the worker with those, or enqueue the images on another queue',
    );
  }
  return stored;
}

/**
 * Runs a worker: loads the checkpoint once, binds the queue to it (see `QueueBinding`), then captions batches until
 * `signal` is aborted (the running batches are finished first) or, with `exitWhenEmpty`, the queue is empty.
 *
 * Per batch: each image's bytes are hashed; images whose result is stored under `<sha256>` for this checkpoint and
 * settings are not captioned again; the others are captioned in forward passes of `batchSize`, and each result is
 * stored (HSETNX: a retried or duplicated batch writes nothing new) as soon as it is made. After every pass the job's
 * lock is extended and its progress updated. An image that cannot be read or decoded is recorded with its error and
 * the batch goes on; a batch that throws for another reason is retried (3 attempts, exponential backoff).
 *
 * @example
 * ```ts
 * import { runWorker } from '@s2cpnet/queue';
 * const stop = new AbortController();
 * process.once('SIGTERM', () => stop.abort());
 * await runWorker({ redis: 'redis://10.0.0.5:6379', queue: 'ucm', checkpoint: '@s2cpnet/weights-ucm-mobilenet', signal: stop.signal });
 * ```
 */
export async function runWorker(options: RunWorkerOptions): Promise<WorkerSummary> {
  const log = options.onLog ?? (() => undefined);
  const runtime = options.runtime ?? 'tfjs';
  if (runtime === 'onnx') throw new ConfigError('runtime', "the 'onnx' runtime is not available to queue workers yet (s2cpnet caption|evaluate --runtime onnx have it); use tfjs (the default)");
  if (runtime !== 'tfjs') throw new ConfigError('runtime', `expected tfjs or onnx, found ${JSON.stringify(runtime)}`);
  const name = checkQueueName(options.queue, options.names?.queue);
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new ConfigError('concurrency', `expected a positive integer, found ${JSON.stringify(options.concurrency)}`);
  const lockSeconds = options.lockSeconds ?? 30;
  if (!(lockSeconds >= 1) || !Number.isFinite(lockSeconds)) throw new ConfigError('lockSeconds', `expected a number of seconds >= 1, found ${JSON.stringify(options.lockSeconds)}`);
  const lockMs = Math.round(lockSeconds * 1000);
  const connection = resolveConnection(options.redis, options.names?.redis);
  const keys = queueKeys(name);
  const client = await connectRedis(connection, { name: options.names?.redis, timeoutMs: options.connectTimeoutMs, worker: true });

  let captioner: Captioner | null = null;
  let worker: Worker | null = null;
  let closeScenes = async () => undefined as void;
  const counter = new Queue(name, { connection: client });
  counter.on('error', () => undefined);
  try {
    captioner = await loadCaptioner(options.checkpoint, {
      backend: options.backend,
      threads: options.threads,
      cwd: options.cwd,
      beam: options.beam,
      maxLength: options.maxLength,
      lengthPenalty: options.lengthPenalty,
      batchSize: options.batchSize,
      maskSize: options.maskSize,
      cacheDir: options.cacheDir,
      cacheHint: options.cacheHint,
      maxPixels: options.maxPixels,
      signal: options.signal,
      warn: options.warn,
      onProgress: options.onLoadProgress,
    });
    const settings: CaptionSettings = { beam: options.beam ?? 3, maxLength: options.maxLength ?? 25, lengthPenalty: options.lengthPenalty ?? 0, maskSize: captioner.maskSize };
    const ckId = await checkpointId(captioner.checkpoint.dir);
    const mine: QueueBinding = { id: captionerId(ckId, settings), checkpointId: ckId, settings, checkpoint: options.checkpoint, dir: captioner.checkpoint.dir, boundAt: new Date().toISOString() };
    const binding = await bindQueue(client, keys.captioner, mine, name, 'checkpoint');
    const results = resultsKey(binding.id);
    const active = captioner;

    const totals = { batches: 0, captioned: 0, cached: 0, failed: 0 };
    const neverAborted = new AbortController().signal;
    let running = 0;
    // Scenes stay open while the worker runs (one per file and settings); closed when it stops.
    const scenes = new Map<string, Promise<Scene>>();
    closeScenes = async () => {
      for (const opening of scenes.values()) await opening.then((scene) => scene.close()).catch(() => undefined);
      scenes.clear();
    };
    const sceneOf = (data: SceneJobData): Promise<Scene> => {
      const id = `${data.scene}\n${JSON.stringify(data.settings)}`;
      let opening = scenes.get(id);
      if (!opening) {
        opening = openSceneWith(data.scene, data.settings);
        opening.catch(() => scenes.delete(id));
        scenes.set(id, opening);
      }
      return opening;
    };

    /** A batch of scene tiles: read each window as caption-scene reads it, skip mostly-nodata tiles, caption the rest. */
    const processSceneBatch = async (job: Job<CaptionJobData, BatchResult>, data: SceneJobData, token?: string): Promise<BatchResult> => {
      const started = Date.now();
      options.onBatchStart?.(String(job.id), data.tiles.length);
      log(`batch ${job.id} started (${data.tiles.length} tiles of ${data.scene}, attempt ${job.attemptsMade + 1})`);
      // A scene that cannot be opened fails the batch (retried, then failed), as any other error outside one tile.
      const scene = await sceneOf(data);
      const tileSize = data.settings.tile ?? 256;
      const maxNodata = data.settings.maxNodata ?? 0.5;
      const step = Math.max(1, options.batchSize ?? 8);
      let captioned = 0;
      let cachedCount = 0;
      let failed = 0;
      for (let from = 0; from < data.tiles.length; from += step) {
        const chunk = data.tiles.slice(from, from + step);
        const read: { key: string; hash: string; image: { width: number; height: number; data: Uint8Array } }[] = [];
        for (const tile of chunk) {
          const image = await scene.readWindow(tile.readWindow, tileSize, tileSize);
          if (image.nodataFraction > maxNodata) {
            const error = `skipped: ${(image.nodataFraction * 100).toFixed(1)} % of the tile is nodata (more than max nodata ${maxNodata})`;
            await client.hset(keys.failures, tile.key, JSON.stringify({ error, skipped: 'nodata', nodataFraction: image.nodataFraction, at: Date.now() }));
            failed++;
            continue;
          }
          read.push({ key: tile.key, hash: tileContentHash(image), image: { width: image.width, height: image.height, data: image.data } });
        }
        if (read.length > 0) await client.hset(keys.contentHash, Object.fromEntries(read.map((r) => [r.key, r.hash])));
        const stored = read.length > 0 ? await client.hmget(results, ...read.map((r) => r.hash)) : [];
        const todo = read.filter((_, i) => stored[i] === null);
        const cachedKeys = read.filter((_, i) => stored[i] !== null).map((r) => r.key);
        if (cachedKeys.length > 0) {
          const now = Date.now();
          const multi = client.multi();
          for (const key of cachedKeys) multi.zadd(keys.done, 'NX', now, key).hdel(keys.failures, key);
          await multi.exec();
          cachedCount += cachedKeys.length;
        }
        if (todo.length > 0) {
          const captions = await active.caption(todo.map((r) => r.image));
          const multi = client.multi();
          captions.forEach((result, i) => {
            const record: StoredResult = { caption: result.caption, categories: result.categories.map((c) => ({ name: c.name, probability: roundProbability(c.probability) })) };
            multi.hsetnx(results, todo[i]!.hash, JSON.stringify(record)).zadd(keys.done, 'NX', Date.now(), todo[i]!.key).hdel(keys.failures, todo[i]!.key);
          });
          await multi.exec();
          captioned += todo.length;
        }
        // tfjs ran synchronously: extend the lock after every pass, not only on BullMQ's timer.
        if (token) await job.extendLock(token, lockMs).catch((error: Error) => log(`batch ${job.id}: could not extend its lock: ${error.message}`));
        await job.updateProgress({ done: Math.min(from + step, data.tiles.length), total: data.tiles.length }).catch(() => undefined);
      }
      const seconds = (Date.now() - started) / 1000;
      totals.batches++;
      totals.captioned += captioned;
      totals.cached += cachedCount;
      totals.failed += failed;
      log(`batch ${job.id} done: ${captioned} tiles captioned, ${cachedCount} already stored, ${failed} skipped (nodata), in ${seconds.toFixed(1)} s`);
      return { captioned, cached: cachedCount, failed };
    };

    const processBatch = async (job: Job<CaptionJobData, BatchResult>, token?: string): Promise<BatchResult> => {
      const data = job.data;
      if (data.kind === 'scene') return processSceneBatch(job, data, token);
      if (data.kind !== 'images') throw new ConfigError('job', `job ${job.id}: unknown job kind ${JSON.stringify((data as { kind?: unknown }).kind)} (a newer @s2cpnet/queue enqueued it?)`);
      const started = Date.now();
      options.onBatchStart?.(String(job.id), data.files.length);
      log(`batch ${job.id} started (${data.files.length} images, attempt ${job.attemptsMade + 1})`);
      const hashes = new Map<string, string>();
      for (const file of data.files) {
        const hash = await sha256OfFile(file);
        if (hash) hashes.set(file, hash);
      }
      if (hashes.size > 0) await client.hset(keys.contentHash, Object.fromEntries(hashes));
      // Images whose result this checkpoint already stored (a retried batch, a duplicate, another queue) are done.
      const hashed = [...hashes.keys()];
      const stored = hashed.length > 0 ? await client.hmget(results, ...hashed.map((f) => hashes.get(f)!)) : [];
      const cachedFiles = hashed.filter((_, i) => stored[i] !== null);
      if (cachedFiles.length > 0) {
        const now = Date.now();
        const multi = client.multi();
        for (const file of cachedFiles) multi.zadd(keys.done, 'NX', now, file).hdel(keys.failures, file);
        await multi.exec();
      }
      const cached = new Set(cachedFiles);
      const todo = data.files.filter((f) => !cached.has(f));
      let captioned = 0;
      let failed = 0;
      const pending: Promise<unknown>[] = [];
      await active.captionFiles(todo, {
        // Not the worker's signal (the loading one): a stopping worker finishes its running batches.
        signal: neverAborted,
        onError: 'skip',
        onItem: async ({ result }) => {
          const file = result.file!;
          const hash = hashes.get(file) ?? (await sha256OfFile(file));
          const record: StoredResult = { caption: result.caption, categories: result.categories.map((c) => ({ name: c.name, probability: roundProbability(c.probability) })) };
          const multi = client.multi();
          if (hash) multi.hset(keys.contentHash, file, hash).hsetnx(results, hash, JSON.stringify(record));
          await multi.zadd(keys.done, 'NX', Date.now(), file).hdel(keys.failures, file).exec();
          captioned++;
        },
        onFailure: async (failure) => {
          await client.hset(keys.failures, failure.file, JSON.stringify({ error: failure.error, at: Date.now() }));
          failed++;
        },
        onProgress: (done, total) => {
          // tfjs runs synchronously between these calls: extend the lock after every pass, not only on BullMQ's timer.
          if (token) pending.push(job.extendLock(token, lockMs).catch((error: Error) => log(`batch ${job.id}: could not extend its lock: ${error.message}`)));
          pending.push(job.updateProgress({ done: cachedFiles.length + done, total: data.files.length }).catch(() => undefined));
          void total;
        },
      });
      await Promise.all(pending);
      const seconds = (Date.now() - started) / 1000;
      totals.batches++;
      totals.captioned += captioned;
      totals.cached += cachedFiles.length;
      totals.failed += failed;
      log(
        `batch ${job.id} done: ${captioned} captioned, ${cachedFiles.length} already stored, ${failed} failed, in ${seconds.toFixed(1)} s` +
          (captioned > 0 ? ` (${(captioned / Math.max(seconds, 1e-3)).toFixed(2)} img/s)` : ''),
      );
      return { captioned, cached: cachedFiles.length, failed };
    };

    const started = Date.now();
    worker = new Worker<CaptionJobData, BatchResult>(
      name,
      async (job, token) => {
        running++;
        try {
          return await processBatch(job, token);
        } finally {
          running--;
        }
      },
      {
        connection: redisOptions(connection, { worker: true }) as ConnectionOptions,
        name: `${os.hostname()}:${process.pid}`,
        concurrency,
        lockDuration: lockMs,
        // How often this worker looks for batches whose worker died (their lock expired): they go back to waiting.
        stalledInterval: Math.max(500, Math.round(lockMs / 2)),
        // A batch may lose its worker twice (killed, out of memory); the third time it is failed, so a batch that
        // kills every worker that takes it cannot stop the queue. Its stored results are kept.
        maxStalledCount: 2,
        autorun: false,
      },
    );
    worker.on('error', (error) => log(`error: ${error.message}`));
    worker.on('failed', (job, error) => {
      if (!job) return;
      const final = job.attemptsMade >= (job.opts.attempts ?? 1);
      log(`batch ${job.id} ${final ? 'failed' : 'will be retried'}: ${error.message} (attempt ${job.attemptsMade} of ${job.opts.attempts ?? 1})`);
    });
    worker.on('stalled', (jobId) => log(`batch ${jobId} had lost its worker: back to waiting`));

    let stopped: WorkerSummary['stopped'] = 'signal';
    const closing = new Promise<void>((resolve) => {
      let closed = false;
      const close = (why: WorkerSummary['stopped']) => {
        if (closed) return;
        closed = true;
        stopped = why;
        clearInterval(emptyCheck);
        options.signal?.removeEventListener('abort', onAbort);
        // close() waits for the running batches to finish and store their results.
        void worker!.close().then(resolve, (error: Error) => {
          log(`error while closing: ${error.message}`);
          resolve();
        });
      };
      const onAbort = () => close('signal');
      options.signal?.addEventListener('abort', onAbort);
      const emptyCheck = setInterval(() => {
        if (!options.exitWhenEmpty || running > 0) return;
        void (async () => {
          const counts = await counter.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
          const unfinished = Object.values(counts).reduce((a, b) => a + b, 0);
          if (running === 0 && unfinished === 0) close('empty');
        })().catch(() => undefined);
      }, 500);
      if (options.signal?.aborted) close('signal');
    });
    log(`ready: queue ${name} on ${connection.display}, checkpoint ${options.checkpoint} (id ${binding.checkpointId.slice(0, 12)}), backend ${active.backend}, concurrency ${concurrency}, lock ${lockSeconds} s`);
    if (!options.signal?.aborted) void worker.run().catch((error: Error) => log(`error: ${error.message}`));
    await closing;
    return { ...totals, seconds: (Date.now() - started) / 1000, stopped, binding };
  } finally {
    if (worker) await worker.close().catch(() => undefined);
    await closeScenes();
    await counter.close().catch(() => undefined);
    captioner?.dispose();
    client.disconnect();
  }
}
