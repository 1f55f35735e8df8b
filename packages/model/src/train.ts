import { promises as fsp, existsSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  CheckpointError,
  ConfigError,
  InputError,
  InterruptedError,
  acquireLock,
  crashPoint,
  deriveSeed,
  isAtomicLeftover,
  recoverAtomicLeftovers,
  writeFileAtomic,
  type HeldLock,
} from '@s2cpnet/core';
import {
  BatchPipeline,
  CategoryLabels,
  FeatureCache,
  Vocabulary,
  imagesOfSplit,
  loadPreparedDataset,
  preparedMaskKey,
  type Batch,
  type CachedFeature,
  type PreparedDataset,
  type Split,
} from '@s2cpnet/data';
import { scoreCaptions, type CaptionScores } from '@s2cpnet/metrics';
import type { S2CPNetConfig } from './config';
import { buildS2CPNet, type ComponentFactories, type S2CPNet } from './s2cpnet';
import { Adam, PlateauSchedule, type NamedVariable } from './optimizer';
import { accumulateGradients, readScalars } from './gradients';
import { loadCheckpoint, saveCheckpoint, type LoadedCheckpoint, type TrainingState } from './checkpoint';
import { captionBatchAsync, type CaptionOptions, type CaptionResult } from './inference';
import { loadEncoderWeights } from './encoder-weights';
import { resolveScstOptions, scstStep, trainingRewardScorer, type ScstOptions } from './scst';

export interface TrainOptions {
  /** Folder written by `s2cpnet prepare` (or an already loaded prepared dataset). */
  data: string | PreparedDataset;
  /** Run folder: `last/` and `best/` checkpoints, `log.jsonl`, `features/` cache (and `epoch-N/` with `keepEpochs`). */
  runDir: string;
  config: S2CPNetConfig;
  /** Images per optimiser step (each with all its captions). Paper: 48. */
  batchSize?: number;
  /** Images per forward/backward pass; gradients are accumulated up to `batchSize`. Default `batchSize`. */
  microBatchSize?: number;
  learningRate?: number;
  /**
   * Learning rate of the backbone's trainable weights (partial fine-tuning, `encoder.trainableFrom`); the schedule's
   * decays scale it with `learningRate`. Default: `learningRate`.
   */
  encoderLearningRate?: number;
  clipNorm?: number;
  /** Most epochs. Default 100 (the plateau schedule usually stops earlier). */
  maxEpochs?: number;
  /** lr x factor after `patience` epochs without improvement of val METEOR; stop after `stopPatience`. */
  schedule?: { factor: number; patience: number; stopPatience: number };
  /** Seed of data order, dropout and (through the config) weights. Default: config.seed. */
  seed?: number;
  /** Decoding used for the per-epoch validation. Default greedy (beam 1). */
  validation?: CaptionOptions & { maxImages?: number; split?: Split };
  /** Cache backbone features on disk and train on them (needs a fully frozen encoder). Default: when frozen. */
  featureCache?: boolean;
  /**
   * Computes the frozen backbone's features for the cache in another runtime, e.g. ONNX Runtime through
   * `@s2cpnet/runtime-onnx`'s `onnxFeatureExtractor` (about 4x faster than tfjs-wasm). Called once with the model
   * when the cache is used; its `dispose` is called when training ends. Default: the tfjs backbone.
   */
  featureExtractor?: (model: S2CPNet) => Promise<FeatureExtractor>;
  /** Stop after the epoch during which this many minutes have passed. */
  timeBudgetMinutes?: number;
  /**
   * Continue the run in `runDir/last` (CLI `--resume`): from the newest complete checkpoint, with what a crash left
   * half-written recovered and `log.jsonl` cut back to the epochs that checkpoint has.
   */
  resume?: boolean;
  /**
   * Start over in a `runDir` that holds a previous run (CLI `--force`): removes its `log.jsonl`, `last/`, `best/`,
   * `epoch-N/` and leftover temp files; keeps `features/` (a cache checked against the backbone) and files that are
   * not the run's. Without `resume` or `force`, a non-empty `runDir` is refused (ConfigError) and left untouched.
   */
  force?: boolean;
  /** Also keep the weights after every epoch N in `runDir/epoch-N` (no optimiser state), e.g. for averaging. */
  keepEpochs?: boolean;
  /**
   * Fine-tune (CLI `--init-from`): start from this checkpoint's weights instead of a fresh initialisation. `config`
   * must be the checkpoint's config (a different `seed` is fine). The run uses the checkpoint's vocabulary and noun
   * classes, so every word and class it knows keeps its trained rows. Words or classes of the new data that the
   * checkpoint lacks are refused (a ConfigError naming how many and a few of them) unless `extendVocabulary`:
   * then they are appended after the checkpoint's ids, and their new rows (word embedding, output layer, class
   * head) keep the seeded random initialisation of a freshly built model. Ignored when resuming (checkpoints in
   * the run folder hold every weight), except that the vocabulary is taken from `last/` as before.
   */
  initFrom?: LoadedCheckpoint;
  /** With `initFrom`: append the new data's unknown words and noun classes instead of refusing them. */
  extendVocabulary?: boolean;
  /**
   * `ce` (default): cross-entropy on the reference captions, best/ and the schedule on val METEOR. `scst`:
   * self-critical sequence training on the CIDEr-D reward (see `scst.ts`), fine-tuning `initFrom`; best/ and the
   * schedule on val CIDEr, the metric it optimises.
   */
  objective?: 'ce' | 'scst';
  /** SCST settings (with `objective: 'scst'`): samples per image, baseline, max length. */
  scst?: ScstOptions;
  factories?: ComponentFactories;
  signal?: AbortSignal;
  onProgress?: (progress: TrainProgress) => void;
  onEpoch?: (record: EpochRecord) => void;
  log?: (line: string) => void;
}

export interface TrainProgress {
  epoch: number;
  batch: number;
  batchesPerEpoch: number;
  step: number;
  loss: number;
  captionLoss: number;
  categoryLoss: number | null;
  /** Caption samples (image x caption pairs) per second over the epoch so far. */
  samplesPerSecond: number;
  /** Seconds left in this epoch at the current rate. */
  etaSeconds: number;
  /** SCST: mean CIDEr-D of this step's sampled captions. */
  reward?: number;
  /** SCST: mean baseline of this step. */
  baseline?: number;
}

export interface EpochRecord {
  epoch: number;
  step: number;
  learningRate: number;
  trainLoss: number;
  trainCaptionLoss: number;
  trainCategoryLoss: number | null;
  val: CaptionScores;
  improved: boolean;
  seconds: number;
  samplesPerSecond: number;
  /** Present for SCST epochs only (cross-entropy records are as before). */
  objective?: 'scst';
  /** SCST: mean CIDEr-D of the sampled training captions over the epoch. */
  trainReward?: number;
  /** SCST: mean baseline over the epoch (the greedy captions' reward with `baseline: 'greedy'`). */
  trainBaseline?: number;
  /** SCST: mean words per sampled caption over the epoch. */
  trainSampleLength?: number;
}

export interface TrainResult {
  model: S2CPNet;
  prepared: PreparedDataset;
  history: EpochRecord[];
  bestEpoch: number;
  bestScore: number;
  stoppedBecause: 'schedule' | 'max-epochs' | 'time-budget' | 'finished-before';
  lastDir: string;
  bestDir: string;
}

/** The model's trainable weights with their paths, as the optimiser and `trainStep` take them. */
export function trainableVariables(model: S2CPNet): NamedVariable[] {
  const trainable = new Set(model.trainableWeights);
  return model
    .namedWeights()
    .filter(({ variable }) => trainable.has(variable))
    .map(({ path: p, variable }) => ({ path: p, variable: (variable as unknown as { val: tf.Variable }).val }));
}

/** Captions the images of a split and scores them against their references. */
export async function evaluateSplit(
  model: S2CPNet,
  prepared: PreparedDataset,
  split: Split,
  options: CaptionOptions & { maxImages?: number; batchSize?: number; featureCache?: FeatureCache | null; computeFeatures?: ComputeFeatures; signal?: AbortSignal } = {},
): Promise<{ scores: CaptionScores; predictions: { image_id: string; caption: string; result: CaptionResult }[] }> {
  const images = imagesOfSplit(prepared.dataset, split).slice(0, options.maxImages ?? Infinity);
  if (images.length === 0) throw new ConfigError('$.split', `split "${split}" of ${prepared.dir} has no images`);
  const pipeline = await makePipeline(model, prepared, split, options.batchSize ?? 16, 0, { shuffle: false, featureCache: options.featureCache ?? null, computeFeatures: options.computeFeatures, subset: images.map((i) => i.id) });
  const predictions: { image_id: string; caption: string; result: CaptionResult }[] = [];
  for await (const batch of pipeline.epoch(0)) {
    if (options.signal?.aborted) throw new InterruptedError('evaluation interrupted');
    const inputs = batchInputs(model, batch);
    let results: CaptionResult[];
    try {
      results = await captionBatchAsync(model, inputs, prepared.vocabulary, prepared.categories.classes, options);
    } finally {
      tf.dispose(Object.values(inputs));
    }
    results.forEach((result, i) => predictions.push({ image_id: batch.imageIds[i]!, caption: result.caption, result }));
  }
  const byId = new Map(images.map((i) => [i.id, i]));
  const report = await scoreCaptions(
    predictions.map((p) => ({ imageId: p.image_id, candidate: p.caption, references: byId.get(p.image_id)!.captions.map((c) => c.raw) })),
  );
  return { scores: report.corpus, predictions };
}

function backboneNormalization(model: S2CPNet): 'resnet' | 'mobilenet' {
  return model.encoder.normalization === 'symmetric' ? 'mobilenet' : 'resnet';
}

/** A batch pipeline for a model: its input size and normalisation, masks when it reads them, features when cached. */
/** Computes backbone features of `count` normalised images [count, S, S, 3] for the feature cache. */
export type ComputeFeatures = (pixels: Float32Array, count: number) => Promise<CachedFeature[]> | CachedFeature[];

/** A backbone feature extractor for training's feature cache (see `TrainOptions.featureExtractor`). */
export interface FeatureExtractor {
  /** Shown in the training log, e.g. `onnxruntime (1 thread)`. */
  name: string;
  compute(pixels: Float32Array, count: number): Promise<CachedFeature[]>;
  dispose(): void | Promise<void>;
}

async function makePipeline(
  model: S2CPNet,
  prepared: PreparedDataset,
  split: Split,
  batchSize: number,
  seed: number,
  options: { shuffle: boolean; featureCache: FeatureCache | null; computeFeatures?: ComputeFeatures; subset?: string[] },
): Promise<BatchPipeline> {
  const subset = options.subset ? new Set(options.subset) : null;
  const dataset = subset ? { images: prepared.dataset.images.filter((i) => subset.has(i.id)) } : prepared.dataset;
  return new BatchPipeline({
    dataset,
    split,
    vocabulary: prepared.vocabulary,
    categories: prepared.categories,
    imageSize: model.inputSize,
    backbone: backboneNormalization(model),
    batchSize,
    seed,
    shuffle: options.shuffle,
    masks: model.config.useMaskView ? prepared.maskSource : undefined,
    features: options.featureCache
      ? {
          cache: options.featureCache,
          backboneId: await backboneId(model),
          maskKey: preparedMaskKey(prepared.manifest),
          compute:
            options.computeFeatures ??
            (async (pixels: Float32Array, count: number): Promise<CachedFeature[]> => {
              const s = model.inputSize;
              const f = tf.tidy(() => model.encoder.frozenFeatures(tf.tensor4d(pixels, [count, s, s, 3])));
              try {
                const data = (await f.data()) as Float32Array;
                const per = data.length / count;
                return Array.from({ length: count }, (_, i) => ({ shape: f.shape.slice(1), data: data.slice(i * per, (i + 1) * per) }));
              } finally {
                f.dispose();
              }
            }),
        }
      : undefined,
  });
}

/** Identifies the frozen backbone (config + a digest of its weights), so stale cached features are never reused. */
async function backboneId(model: S2CPNet): Promise<string> {
  // Only the frozen part's weights: with trainableFrom the trainable blocks change every step, their inputs do not.
  const frozenPart = new Set(model.encoder.frozenPartWeights());
  const weights = model.encoder.namedWeights().filter(({ variable }) => frozenPart.has(variable));
  let digest = 0;
  for (const { variable } of weights.slice(0, 8)) {
    const v = await variable.read().data();
    for (let i = 0; i < v.length; i += Math.max(1, Math.floor(v.length / 64))) digest = (Math.imul(digest, 31) + Math.round(v[i]! * 1e6)) | 0;
  }
  return `${JSON.stringify(model.config.encoder)}#${(digest >>> 0).toString(16)}`;
}

function batchInputs(model: S2CPNet, batch: Batch) {
  const s = model.inputSize;
  const b = batch.batchSize;
  const out: { images?: tf.Tensor4D; masks?: tf.Tensor4D; imageFeatures?: tf.Tensor4D; maskFeatures?: tf.Tensor4D } = {};
  if (batch.imageFeatures && batch.featureShape) {
    out.imageFeatures = tf.tensor4d(batch.imageFeatures, [b, ...batch.featureShape] as [number, number, number, number]);
    if (batch.maskFeatures) out.maskFeatures = tf.tensor4d(batch.maskFeatures, [b, ...batch.featureShape] as [number, number, number, number]);
  } else {
    out.images = tf.tensor4d(batch.images!, [b, s, s, 3]);
    if (batch.masks) out.masks = tf.tensor4d(batch.masks, [b, s, s, 3]);
  }
  return out;
}

/** Rows [from, to) of a batch's tensors. */
function sliceInputs<T extends Record<string, tf.Tensor | undefined>>(inputs: T, from: number, to: number): T {
  const out: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(inputs)) {
    if (v) out[k] = tf.slice(v, [from, ...new Array(v.rank - 1).fill(0)], [to - from, ...v.shape.slice(1)]);
  }
  return out as T;
}

/** The frozen backbone's feature cache inside a run folder (checked against the backbone when used). */
const FEATURE_CACHE_DIR = 'features';
/** The backbone's weight paths start with this (`S2CPNet`'s child name). */
const ENCODER_PATH = 'encoder';
/** The lock file of a run folder: one training process per folder. */
export const RUN_LOCK_FILE = 'train.lock';
/** What a run writes in its folder (besides `features/`, a cache, and the lock): what `force` removes. */
const RUN_ENTRY = /^(log\.jsonl|last|best|epoch-\d+)$/;

/** A checkpoint folder that was written to the end (`checkpoint.json` is written last, and parses). */
function isCompleteCheckpoint(dir: string): boolean {
  try {
    JSON.parse(readFileSync(path.join(dir, 'checkpoint.json'), 'utf8'));
    return true;
  } catch {
    return false;
  }
}

function entryLabel(dir: string, name: string): string {
  return statSync(path.join(dir, name), { throwIfNoEntry: false })?.isDirectory() ? `${name}/` : name;
}

/** The first existing part of `target` (itself or an ancestor) that is not a folder. */
function fileInTheWay(target: string): string {
  let p = path.resolve(target);
  for (;;) {
    let isFile = false;
    try {
      isFile = !statSync(p).isDirectory();
    } catch {
      // missing, or under a file (ENOTDIR): look further up
    }
    if (isFile) return p;
    const up = path.dirname(p);
    if (up === p) return target;
    p = up;
  }
}

/**
 * Opens a run folder for training: creates it, takes its lock (a live owner: LockedError naming its pid; a dead
 * one's is taken over), then with `force` removes the previous run, with `resume` recovers checkpoint writes a
 * crash cut short and removes temp leftovers, and otherwise refuses a folder that is not empty.
 */
async function openRunDir(options: TrainOptions, log: (line: string) => void): Promise<HeldLock> {
  const runDir = options.runDir;
  if (options.resume && options.force) {
    throw new ConfigError('--resume/--force', 'give one of them: --resume continues the run in the folder, --force starts it over');
  }
  try {
    await fsp.mkdir(runDir, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') {
      throw new ConfigError(runDir, `${fileInTheWay(runDir)} is a file, not a folder: the run needs a folder (--out DIR)`, { cause: error });
    }
    throw error;
  }
  const lockFile = path.join(runDir, RUN_LOCK_FILE);
  const lock = acquireLock(lockFile, {
    what: `run folder ${runDir}`,
    onStale: (owner) =>
      log(owner ? `taking over stale lock of pid ${owner.pid} (${owner.host}, since ${owner.started}): that process is gone` : `taking over the unreadable stale lock ${lockFile}`),
  });
  try {
    const names = (await fsp.readdir(runDir)).filter((n) => n !== RUN_LOCK_FILE && !n.startsWith(`${RUN_LOCK_FILE}.stale.`)).sort();
    if (options.force) {
      const removed = names.filter((n) => RUN_ENTRY.test(n) || isAtomicLeftover(n));
      const kept = names.filter((n) => !removed.includes(n));
      if (removed.length > 0) {
        log(
          `--force: removing the previous run in ${runDir}: ${removed.map((n) => entryLabel(runDir, n)).join(', ')}` +
            (kept.length ? `; keeping ${kept.map((n) => entryLabel(runDir, n)).join(', ')}` : ''),
        );
        // last/ first: once it is gone nothing is resumable, so a crash part-way leaves a folder --force clears again.
        for (const name of [...removed].sort((a, b) => Number(b === 'last') - Number(a === 'last'))) {
          await fsp.rm(path.join(runDir, name), { recursive: true, force: true });
        }
      }
    } else if (options.resume) {
      for (const report of await recoverAtomicLeftovers(runDir, { isComplete: isCompleteCheckpoint })) {
        const name = path.basename(report.target);
        if (report.restored) log(`recovered ${name}/ from ${path.basename(report.restored)} (a crash cut its last write short)`);
        if (report.removed.length) log(`removed leftover temp files of ${name}: ${report.removed.map((p) => path.basename(p)).join(', ')}`);
      }
      if (!isCompleteCheckpoint(path.join(runDir, 'last'))) {
        const logFile = path.join(runDir, 'log.jsonl');
        const previous = (await fsp.readdir(runDir)).filter(
          (n) => (RUN_ENTRY.test(n) && n !== 'log.jsonl') || (n === 'log.jsonl' && statSync(logFile).size > 0),
        );
        if (previous.length > 0) {
          throw new ConfigError(
            runDir,
            `nothing to resume from: no complete last/ checkpoint, but the folder holds a previous run (${previous.map((n) => entryLabel(runDir, n)).join(', ')}). ` +
              'Start over with --force (removes them), or give another --out',
          );
        }
      }
    } else if (names.some((n) => n !== FEATURE_CACHE_DIR)) {
      // features/ alone is a cache a new run may start with (runs of one backbone can share it); anything else is not
      const previousRun = names.some((n) => RUN_ENTRY.test(n));
      throw new ConfigError(
        runDir,
        `not empty (${names.slice(0, 6).map((n) => entryLabel(runDir, n)).join(', ')}${names.length > 6 ? ', ...' : ''}): ` +
          `${previousRun ? 'it holds a previous training run' : 'it holds other files'}. Continue that run with --resume, ` +
          'or start over with --force (removes log.jsonl, last/, best/, epoch-N/ and temp leftovers; keeps features/ and other files), or give another --out',
      );
    }
  } catch (error) {
    lock.release();
    throw error;
  }
  return lock;
}

/**
 * Rewrites `log.jsonl` to the epochs of the checkpoint being resumed (the checkpoint's history is the truth: a crash
 * may have cut the log short, or, before this order was kept, left lines of epochs the checkpoint does not have).
 */
async function syncLogWithHistory(logFile: string, history: readonly unknown[], log: (line: string) => void): Promise<void> {
  const expected = history.map((record) => `${JSON.stringify(record)}\n`).join('');
  let current = '';
  try {
    current = await fsp.readFile(logFile, 'utf8');
  } catch {
    // missing: written below
  }
  if (current === expected) return;
  await writeFileAtomic(logFile, expected);
  const had = current.split('\n').filter(Boolean).length;
  log(`log.jsonl: rewritten to the ${history.length} epoch(s) of the checkpoint (it had ${had} line(s))`);
}

/** The best epoch, 1-based like `EpochRecord.epoch` (the schedule counts epochs from 0); 0 before any epoch. */
function bestEpochOf(schedule: PlateauSchedule): number {
  return schedule.bestEpoch + 1;
}

/**
 * Trains a model (spec section 7): Adam, global-norm clipping, all captions of each image per step, validation
 * METEOR after every epoch, lr x 1/5 after 5 epochs without improvement, stop after 20; selection on VAL only.
 *
 * The run folder is locked (`train.lock`) while training. Checkpoints `best/`, `epoch-N/`, `last/` (every epoch, and
 * on interrupt) are written atomically, in that order, and only then the epoch's line of `log.jsonl`: `last/` is
 * the state of the run. `resume: true` continues from `last/` (recovering a write a crash cut short, and cutting the
 * log back to it) and gives the same result as an uninterrupted run.
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const log = options.log ?? (() => {});
  const lock = await openRunDir(options, log);
  try {
    return await trainInLockedDir(options, log);
  } finally {
    lock.release();
  }
}

/** A few words for an error message: `"a", "b", "c" and 7 more`. */
function someOf(items: readonly string[], shown = 5): string {
  const listed = items.slice(0, shown).map((w) => JSON.stringify(w)).join(', ');
  return items.length > shown ? `${listed} and ${items.length - shown} more` : listed;
}

/**
 * The prepared data re-expressed in a checkpoint's vocabulary and noun classes (`--init-from`): the checkpoint's
 * ids first, in its order, then (with `extend`) the data's words and classes it lacks. Without `extend`, any such
 * word or class is a ConfigError that says how many and shows a few.
 */
export function adoptCheckpointVocabulary(
  prepared: PreparedDataset,
  checkpoint: Pick<LoadedCheckpoint, 'dir' | 'vocabulary' | 'classNames'>,
  extend: boolean,
): { prepared: PreparedDataset; newWords: string[]; newClasses: string[] } {
  const known = new Set(checkpoint.vocabulary.wordList);
  const newWords = prepared.vocabulary.wordList.filter((w) => !known.has(w));
  const knownClasses = new Set(checkpoint.classNames);
  const newClasses = prepared.categories.classes.filter((c) => !knownClasses.has(c));
  if (!extend && (newWords.length > 0 || newClasses.length > 0)) {
    const parts = [
      newWords.length > 0 ? `${newWords.length} word${newWords.length === 1 ? '' : 's'} its vocabulary lacks (${someOf(newWords)})` : '',
      newClasses.length > 0 ? `${newClasses.length} noun class${newClasses.length === 1 ? '' : 'es'} it lacks (${someOf(newClasses)})` : '',
    ].filter(Boolean);
    throw new ConfigError(
      '--init-from',
      `the training data in ${prepared.dir} has ${parts.join(' and ')} compared with the checkpoint ${checkpoint.dir}. ` +
        'Pass --extend-vocabulary to add them (their new embedding, output and class rows start from random), ' +
        'or prepare the data with a higher --min-word-freq / --min-noun-freq',
    );
  }
  const vocabularyJson = checkpoint.vocabulary.toJSON();
  const vocabulary = Vocabulary.fromJSON({
    ...vocabularyJson,
    words: [...vocabularyJson.words, ...newWords],
    trainCounts: [...vocabularyJson.trainCounts, ...newWords.map((w) => prepared.vocabulary.trainCount(w))],
  });
  const categoriesJson = prepared.categories.toJSON();
  const countOf = new Map(categoriesJson.classes.map((c, i) => [c, categoriesJson.trainCounts[i]!]));
  const classes = [...checkpoint.classNames, ...newClasses];
  const categories = CategoryLabels.fromJSON({ ...categoriesJson, classes, trainCounts: classes.map((c) => countOf.get(c) ?? 0) });
  return { prepared: { ...prepared, vocabulary, categories }, newWords, newClasses };
}

/**
 * Copies a checkpoint's weights into a model built with the same config. A weight that grew along one axis (the
 * vocabulary or the noun classes were extended; the new ids come last) keeps the checkpoint's values for the old
 * ids and its fresh initialisation for the new ones.
 */
export function copyCheckpointWeights(model: S2CPNet, from: S2CPNet, checkpointDir: string): { copied: number; extended: number } {
  const source = new Map(from.namedWeights().map((w) => [w.path, w.variable]));
  let copied = 0;
  let extended = 0;
  for (const { path: name, variable } of model.namedWeights()) {
    const old = source.get(name);
    if (!old) throw new CheckpointError(`${checkpointDir}: --init-from: the checkpoint has no weight ${name}`);
    const oldShape = old.shape;
    const newShape = variable.shape;
    const differing = newShape.map((d, i) => (d !== oldShape[i] ? i : -1)).filter((i) => i >= 0);
    if (oldShape.length !== newShape.length || differing.length > 1 || (differing.length === 1 && newShape[differing[0]!]! < oldShape[differing[0]!]!)) {
      throw new CheckpointError(`${checkpointDir}: --init-from: weight ${name} is [${oldShape.join(', ')}] in the checkpoint, [${newShape.join(', ')}] in the model`);
    }
    const value = tf.tidy(() => {
      if (differing.length === 0) return old.read().clone();
      const axis = differing[0]!;
      const begin = newShape.map((_, i) => (i === axis ? oldShape[axis]! : 0));
      const size = newShape.map((d, i) => (i === axis ? d! - oldShape[axis]! : -1));
      return tf.concat([old.read(), tf.slice(variable.read(), begin, size)], axis);
    });
    variable.write(value);
    value.dispose();
    if (differing.length === 0) copied += 1;
    else extended += 1;
  }
  return { copied, extended };
}

async function trainInLockedDir(options: TrainOptions, log: (line: string) => void): Promise<TrainResult> {
  let prepared = typeof options.data === 'string' ? await loadPreparedDataset(options.data) : options.data;
  const valSplit = options.validation?.split ?? 'val';
  if (imagesOfSplit(prepared.dataset, valSplit).length === 0) {
    // Model selection (best/ by val METEOR) and the plateau schedule need it: say so before any epoch is spent.
    throw new InputError(
      `the prepared data has no ${valSplit} images: training scores every epoch on the ${valSplit} split to pick the best checkpoint. ` +
        `Give the caption file a ${valSplit} split and run \`s2cpnet prepare\` again`,
      { file: prepared.dir },
    );
  }
  const seed = options.seed ?? options.config.seed;
  const batchSize = options.batchSize ?? 48;
  const microBatchSize = Math.min(options.microBatchSize ?? batchSize, batchSize);
  const maxEpochs = options.maxEpochs ?? 100;
  const lastDir = path.join(options.runDir, 'last');
  const bestDir = path.join(options.runDir, 'best');
  const logFile = path.join(options.runDir, 'log.jsonl');
  const objective = options.objective ?? 'ce';
  if (objective !== 'ce' && objective !== 'scst') throw new ConfigError('--objective', `expected ce or scst, found ${JSON.stringify(objective)}`);
  const scst = objective === 'scst' ? resolveScstOptions(options.scst) : null;
  const resuming = options.resume === true && existsSync(path.join(lastDir, 'checkpoint.json'));
  if (scst && !options.initFrom && !resuming) {
    throw new ConfigError('--objective', 'scst fine-tunes a cross-entropy model: give the checkpoint to start from (--init-from CHECKPOINT)');
  }
  const run = {
    seed,
    batchSize,
    microBatchSize,
    data: prepared.dir,
    config: options.config,
    learningRate: options.learningRate ?? 1e-4,
    clipNorm: options.clipNorm ?? 5,
    ...(options.encoderLearningRate !== undefined ? { encoderLearningRate: options.encoderLearningRate } : {}),
    // Cross-entropy runs record nothing new, so their checkpoints stay as they were.
    ...(scst ? { objective, scst } : {}),
  };

  let model: S2CPNet;
  let state: TrainingState;
  const encoderLearningRate = options.encoderLearningRate;
  if (encoderLearningRate !== undefined && !(typeof encoderLearningRate === 'number' && encoderLearningRate >= 0 && Number.isFinite(encoderLearningRate))) {
    throw new ConfigError('--encoder-lr', `expected a learning rate >= 0, found ${JSON.stringify(encoderLearningRate)}`);
  }
  const optimizer = new Adam({
    learningRate: run.learningRate,
    clipNorm: run.clipNorm,
    // The backbone's own rate, as a multiple of the main one so that the schedule's decays apply to both.
    learningRateScales:
      encoderLearningRate !== undefined && run.learningRate > 0 ? [{ prefix: `${ENCODER_PATH}/`, scale: encoderLearningRate / run.learningRate }] : [],
  });
  let schedule = new PlateauSchedule(options.schedule);
  if (resuming) {
    const loaded = await loadCheckpoint(lastDir, { factories: options.factories });
    if (options.initFrom) prepared = adoptCheckpointVocabulary(prepared, loaded, true).prepared;
    if (!loaded.training) throw new CheckpointError(`${lastDir}: no training state to resume from`);
    const saved = loaded.training.run;
    for (const key of ['seed', 'batchSize', 'microBatchSize', 'encoderLearningRate'] as const) {
      if (saved[key] !== run[key]) throw new CheckpointError(`${lastDir}: cannot resume: ${key} was ${JSON.stringify(saved[key])}, now ${JSON.stringify(run[key])}`);
    }
    if (JSON.stringify(saved.config) !== JSON.stringify(run.config)) throw new CheckpointError(`${lastDir}: cannot resume: the model config differs from the checkpoint's`);
    if ((saved.objective ?? 'ce') !== objective || JSON.stringify(saved.scst ?? null) !== JSON.stringify(scst)) {
      throw new CheckpointError(`${lastDir}: cannot resume: the run's objective was ${JSON.stringify(saved.objective ?? 'ce')}${saved.scst ? ` ${JSON.stringify(saved.scst)}` : ''}, now ${JSON.stringify(objective)}${scst ? ` ${JSON.stringify(scst)}` : ''}`);
    }
    if (loaded.vocabulary.size !== prepared.vocabulary.size) throw new CheckpointError(`${lastDir}: cannot resume: vocabulary size ${loaded.vocabulary.size} vs data ${prepared.vocabulary.size}`);
    model = loaded.model;
    state = loaded.training;
    await optimizer.loadState(state.step, state.learningRate, loaded.optimizerState ?? new Map());
    schedule = PlateauSchedule.fromJSON({ ...state.schedule, best: state.schedule.best ?? -Infinity });
    await syncLogWithHistory(logFile, state.history, log);
    log(`resuming ${options.runDir} at epoch ${state.epoch + 1}, batch ${state.batchInEpoch}, step ${state.step}`);
  } else if (options.initFrom) {
    const from = options.initFrom;
    const adopted = adoptCheckpointVocabulary(prepared, from, options.extendVocabulary ?? false);
    prepared = adopted.prepared;
    model = buildS2CPNet(options.config, { vocabSize: prepared.vocabulary.size, numClasses: prepared.categories.classes.length, factories: options.factories });
    const report = copyCheckpointWeights(model, from.model, from.dir);
    log(
      `initialised from ${from.dir}: ${report.copied + report.extended} weights` +
        (adopted.newWords.length + adopted.newClasses.length > 0
          ? ` (${report.extended} extended with ${adopted.newWords.length} new words and ${adopted.newClasses.length} new noun classes, their rows random)`
          : ''),
    );
    state = { epoch: 0, batchInEpoch: 0, step: 0, learningRate: run.learningRate, schedule: { ...schedule.toJSON(), best: null }, run, history: [], finished: false };
    await fsp.writeFile(logFile, '');
  } else {
    model = buildS2CPNet(options.config, { vocabSize: prepared.vocabulary.size, numClasses: prepared.categories.classes.length, factories: options.factories });
    if (options.config.encoderWeights) {
      const report = await loadEncoderWeights(model, options.config.encoderWeights);
      log(`loaded ${report.assignedVariables} pretrained encoder weights (${report.scheme}) from ${report.source}`);
    }
    state = { epoch: 0, batchInEpoch: 0, step: 0, learningRate: run.learningRate, schedule: { ...schedule.toJSON(), best: null }, run, history: [], finished: false };
    await fsp.writeFile(logFile, '');
  }
  const history = state.history as unknown as EpochRecord[];
  if (state.finished) {
    return { model, prepared, history, bestEpoch: bestEpochOf(schedule), bestScore: schedule.best, stoppedBecause: 'finished-before', lastDir, bestDir };
  }

  // A fully frozen backbone caches its features; a partly trainable one (encoder.trainableFrom) its frozen part's.
  const partial = model.encoder.partlyTrainable;
  const cacheable = model.encoder.trainableWeights.length === 0 || partial;
  const useCache = options.featureCache ?? cacheable;
  if (useCache && !cacheable) {
    throw new ConfigError('$.encoder.freeze', 'a feature cache needs a fully frozen encoder (freeze: "all") or partial fine-tuning (freeze: "none" with trainableFrom)');
  }
  const featureCache = useCache ? new FeatureCache({ dir: path.join(options.runDir, FEATURE_CACHE_DIR) }) : null;
  if (featureCache && partial && options.featureExtractor) log('the frozen part of a partly trainable backbone is computed with tfjs (the feature runtime exports whole backbones)');
  const extractor = featureCache && options.featureExtractor && !partial ? await options.featureExtractor(model) : null;
  if (extractor) log(`backbone features for the cache are computed with ${extractor.name}`);
  try {
    return await trainEpochs();
  } finally {
    await extractor?.dispose();
  }

  async function trainEpochs(): Promise<TrainResult> {
    const computeFeatures = extractor ? (pixels: Float32Array, count: number) => extractor.compute(pixels, count) : undefined;
    const variables = trainableVariables(model);
    const started = Date.now();
    // SCST's reward: CIDEr-D with the training references' n-gram statistics, computed once for the run.
    const scorer = scst ? trainingRewardScorer(prepared) : null;
    const selectionMetric = scst ? 'CIDEr' : 'METEOR';

    const refreshState = () => {
      state.learningRate = optimizer.learningRate;
      state.step = optimizer.step;
      state.schedule = { ...schedule.toJSON(), best: Number.isFinite(schedule.best) ? schedule.best : null };
    };
    // Captioning must make mask views as this data's `prepare` did: its settings travel in every checkpoint.
    const masks = prepared.manifest.settings.masks;
    const save = async (dir: string, extra: Partial<TrainingState> = {}) => {
      refreshState();
      await saveCheckpoint(dir, { model, vocabulary: prepared.vocabulary, classNames: prepared.categories.classes, optimizer, training: { ...state, ...extra }, masks });
    };

    let stoppedBecause: TrainResult['stoppedBecause'] = 'max-epochs';
    for (let epoch = state.epoch; epoch < maxEpochs; epoch++) {
      const epochStart = Date.now();
      const pipeline = await makePipeline(model, prepared, 'train', batchSize, deriveSeed(seed, 'data'), { shuffle: true, featureCache, computeFeatures });
      const batchesPerEpoch = pipeline.batchesPerEpoch;
      let sums = { loss: 0, caption: 0, category: 0, hasCategory: false, batches: 0, samples: 0, ...(scst ? { reward: 0, baseline: 0, sampleLength: 0 } : {}) };
      if (state.batchInEpoch > 0 && state.run.partial) sums = state.run.partial as typeof sums;
      let index = 0;
      const resumedAtBatch = state.batchInEpoch;
      const samplesAtStart = sums.samples;
      for await (const batch of pipeline.epoch(epoch)) {
        if (index++ < state.batchInEpoch) continue; // resume inside an epoch: same order, skip what was done
        const inputs = batchInputs(model, batch);
        const stepResult: { loss: number; captionLoss: number; categoryLoss: number | null; reward?: number; baseline?: number; sampleLength?: number } = scst
          ? await scstStep(model, variables, optimizer, {
              inputs,
              imageIds: batch.imageIds,
              categories: batch.categories,
              numClasses: model.numClasses,
              microBatchSize,
              seed: deriveSeed(seed, `scst-step-${optimizer.step}`),
              scorer: scorer!,
              words: prepared.vocabulary,
              scst,
            })
          : await trainStep(model, variables, optimizer, {
              inputs,
              captions: batch.captions,
              captionShape: [batch.batchSize, batch.captionsPerImage, batch.captionLength],
              categories: batch.categories,
              numClasses: model.numClasses,
              microBatchSize,
              dropoutSeed: deriveSeed(seed, `step-${optimizer.step}`),
            });
        tf.dispose(Object.values(inputs));
        sums.loss += stepResult.loss;
        sums.caption += stepResult.captionLoss;
        if (stepResult.categoryLoss !== null) {
          sums.category += stepResult.categoryLoss;
          sums.hasCategory = true;
        }
        sums.batches += 1;
        if (scst) {
          sums.reward! += stepResult.reward!;
          sums.baseline! += stepResult.baseline!;
          sums.sampleLength! += stepResult.sampleLength!;
          sums.samples += batch.batchSize * scst.samples; // sampled captions
        } else sums.samples += Array.from(batch.captionCounts).reduce((a, b) => a + b, 0);
        state.batchInEpoch = index;
        const elapsed = (Date.now() - epochStart) / 1000;
        const rate = (sums.samples - samplesAtStart) / Math.max(elapsed, 1e-6);
        options.onProgress?.({
          epoch: epoch + 1,
          batch: index,
          batchesPerEpoch,
          step: optimizer.step,
          loss: stepResult.loss,
          captionLoss: stepResult.captionLoss,
          categoryLoss: stepResult.categoryLoss,
          samplesPerSecond: rate,
          etaSeconds: ((batchesPerEpoch - index) * elapsed) / Math.max(index - resumedAtBatch, 1),
          ...(scst ? { reward: stepResult.reward, baseline: stepResult.baseline } : {}),
        });
        if (options.signal?.aborted) {
          state.epoch = epoch;
          await save(lastDir, { run: { ...state.run, partial: sums } });
          optimizer.dispose();
          throw new InterruptedError(`training interrupted at epoch ${epoch + 1}, batch ${index}/${batchesPerEpoch}: saved ${lastDir}; continue with --resume`);
        }
      }
      // validation on VAL only
      const validation = options.validation ?? {};
      const { scores } = await evaluateSplit(model, prepared, validation.split ?? 'val', {
        ...validation,
        beamSize: validation.beamSize ?? 1,
        featureCache,
        computeFeatures,
        signal: options.signal,
      });
      const meteor = scores.METEOR ?? 0;
      const verdict = schedule.observe(epoch, scores[selectionMetric] ?? 0);
      const record: EpochRecord = {
        epoch: epoch + 1,
        step: optimizer.step,
        learningRate: optimizer.learningRate,
        trainLoss: sums.loss / Math.max(sums.batches, 1),
        trainCaptionLoss: sums.caption / Math.max(sums.batches, 1),
        trainCategoryLoss: sums.hasCategory ? sums.category / Math.max(sums.batches, 1) : null,
        val: scores,
        improved: verdict.improved,
        seconds: (Date.now() - epochStart) / 1000,
        samplesPerSecond: (sums.samples - samplesAtStart) / Math.max((Date.now() - epochStart) / 1000, 1e-6),
        ...(scst
          ? {
              objective: 'scst' as const,
              trainReward: sums.reward! / Math.max(sums.batches, 1),
              trainBaseline: sums.baseline! / Math.max(sums.batches, 1),
              trainSampleLength: sums.sampleLength! / Math.max(sums.batches, 1),
            }
          : {}),
      };
      if (verdict.decay) optimizer.learningRate *= schedule.options.factor;
      history.push(record);
      state.history = history as unknown as Record<string, unknown>[];
      state.epoch = epoch + 1;
      state.batchInEpoch = 0;
      delete state.run.partial;
      // Checkpoints first, last/ last of them (it is the run's state), then the log line: a crash in between is
      // resumed from last/, redoing at most this epoch, and the log is cut back to what last/ has.
      if (verdict.improved) await save(bestDir);
      const overBudget = options.timeBudgetMinutes !== undefined && (Date.now() - started) / 60000 >= options.timeBudgetMinutes;
      const done = verdict.stop || overBudget || epoch + 1 >= maxEpochs;
      if (done) {
        state.finished = true;
        stoppedBecause = verdict.stop ? 'schedule' : overBudget ? 'time-budget' : 'max-epochs';
      }
      if (options.keepEpochs) {
        // The training state travels along (where the weights came from), the optimiser moments do not.
        refreshState();
        await saveCheckpoint(path.join(options.runDir, `epoch-${epoch + 1}`), { model, vocabulary: prepared.vocabulary, classNames: prepared.categories.classes, training: state, masks });
      }
      await save(lastDir);
      crashPoint('train:checkpoint-saved');
      await fsp.appendFile(logFile, `${JSON.stringify(record)}\n`);
      options.onEpoch?.(record);
      log(`epoch ${epoch + 1}: loss ${record.trainLoss.toFixed(4)}${scst ? `, reward ${record.trainReward!.toFixed(4)} (baseline ${record.trainBaseline!.toFixed(4)})` : ''}, val METEOR ${meteor.toFixed(4)}, CIDEr ${(scores.CIDEr ?? 0).toFixed(4)}${verdict.improved ? ' (best)' : ''}`);
      if (done) break;
    }
    optimizer.dispose();
    return { model, prepared, history, bestEpoch: bestEpochOf(schedule), bestScore: schedule.best, stoppedBecause, lastDir, bestDir };
  }
}

export interface TrainStepInput {
  inputs: ReturnType<typeof batchInputs>;
  captions: Int32Array;
  captionShape: [number, number, number];
  categories: Float32Array | null;
  numClasses: number;
  microBatchSize: number;
  dropoutSeed: number;
}

/** One optimiser step over a batch, accumulating gradients over micro-batches. */
/**
 * Trims caption rows [B*C, T] to the longest real caption (+ its `<end>`): rows are padded to the dataset's
 * maximum length, but the decoder's cost grows with T, and `<pad>` positions add nothing to the loss.
 */
export function trimCaptionPadding(captions: Int32Array, shape: [number, number, number], padId = 0): { captions: Int32Array; length: number } {
  const [b, c, t] = shape;
  let length = 2;
  for (let row = 0; row < b * c; row++) {
    for (let k = t - 1; k >= length; k--) {
      if (captions[row * t + k] !== padId) {
        length = k + 1;
        break;
      }
    }
  }
  if (length >= t) return { captions, length: t };
  const out = new Int32Array(b * c * length);
  for (let row = 0; row < b * c; row++) out.set(captions.subarray(row * t, row * t + length), row * length);
  return { captions: out, length };
}

export async function trainStep(model: S2CPNet, variables: NamedVariable[], optimizer: Adam, input: TrainStepInput): Promise<{ loss: number; captionLoss: number; categoryLoss: number | null }> {
  const [b, c] = input.captionShape;
  const trimmed = trimCaptionPadding(input.captions, input.captionShape);
  const t = trimmed.length;
  const captions = tf.tensor3d(trimmed.captions, [b, c, t], 'int32');
  const categories = input.categories && input.numClasses > 0 ? tf.tensor2d(input.categories, [b, input.numClasses]) : undefined;
  const accumulated = new Map<string, tf.Tensor>();
  let loss = 0;
  let captionLoss = 0;
  let categoryLoss: number | null = null;
  try {
    for (let from = 0; from < b; from += input.microBatchSize) {
      const to = Math.min(b, from + input.microBatchSize);
      const weight = (to - from) / b;
      const part = sliceInputs({ ...input.inputs, captions, categories } as Record<string, tf.Tensor | undefined>, from, to);
      let parts: { caption: tf.Scalar; category: tf.Scalar | null } = { caption: null as unknown as tf.Scalar, category: null };
      const { value, grads } = tf.variableGrads(() => {
        const l = model.loss(part as never, { training: true, dropoutSeed: deriveSeed(input.dropoutSeed, `micro-${from}`) });
        parts = { caption: l.caption, category: l.category };
        return tf.mul(l.total, weight) as tf.Scalar;
      }, variables.map((v) => v.variable));
      tf.dispose(Object.values(part));
      accumulateGradients(accumulated, variables, grads);
      const read = await readScalars([value, parts.caption, parts.category]);
      loss += read[0]!;
      captionLoss += read[1]! * weight;
      if (parts.category) categoryLoss = (categoryLoss ?? 0) + read[2]! * weight;
    }
    await optimizer.apply(variables, accumulated);
    return { loss, captionLoss, categoryLoss };
  } finally {
    tf.dispose([captions, ...(categories ? [categories] : []), ...accumulated.values()]);
  }
}
