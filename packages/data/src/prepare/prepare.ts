import { createHash } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ConfigError, InputError, InterruptedError, S2CPNetError, writeFileAtomic, writeJsonAtomic } from '@s2cpnet/core';
import { countBySplit, loadCaptionDataset } from '../dataset/load';
import type { CaptionDataset, CaptionFormat, DatasetImage, OnErrorPolicy, SkippedItem, Split } from '../dataset/types';
import { SPLITS } from '../dataset/types';
import { realImagePath } from '../dataset/paths';
import { decodeImageFile, maxImagePixels } from '../image/codec';
import { builtInMasksVersion, createBuiltInSegmenter, FolderMaskProvider, MaskCache, parseMasksVersion, type MaskProvider, type MasksVersion } from '../masks/index';
import type { RgbImage } from '../masks/types';
import { buildCategoryLabels, DEFAULT_MIN_NOUN_FREQ, DEFAULT_NOUN_RULES, type NounRules } from '../nouns/categories';
import { DEFAULT_MAX_CAPTION_WORDS, DEFAULT_MIN_WORD_FREQ, Vocabulary, countLongCaptions } from '../vocab/vocabulary';
import { PREPARED_FILES, type PreparedManifest, type PreparedDatasetJson } from './manifest';

/** Default working size of images for mask computation (the model's default input side). */
export const DEFAULT_WORKING_SIZE = 224;

export interface PrepareOptions {
  /** Caption file (Karpathy, NWPU-Captions or COCO JSON). */
  annotations: string;
  /** Folder the caption file's image names are relative to. */
  imagesDir: string;
  /** Output folder. */
  outDir: string;
  /** Folder of precomputed masks, named like the images. Default: masks computed by the Felzenszwalb segmenter. */
  masksDir?: string;
  /** A custom mask provider (e.g. a SAM-class model); overrides `masksDir` and the default segmenter. */
  maskProvider?: MaskProvider;
  /**
   * Version of the built-in segmenter when neither `masksDir` nor `maskProvider` is given: `v1` (default,
   * `FelzenszwalbSegmenter`) or `v2` (targets on a background, `TargetSegmenter`). Recorded in the manifest.
   */
  masksVersion?: MasksVersion;
  /** Side of the square working size images are resized to before segmentation (default 224). */
  size?: number;
  minWordFreq?: number;
  maxCaptionWords?: number;
  minNounFreq?: number;
  /** Rules that make target classes of caption nouns (default `v2`: plurals merged, layout words left out). */
  nounRules?: NounRules;
  format?: CaptionFormat | 'auto';
  /** Split for caption-file entries without one (COCO). */
  defaultSplit?: Split;
  /** `stop` (default) at the first bad item, or `skip` it and list it in the manifest. */
  onError?: OnErrorPolicy;
  /** Images processed at once (default 2: one decodes while another is segmented). */
  concurrency?: number;
  /**
   * Largest image accepted, in pixels (width x height); bigger ones are refused from their header, before decoding.
   * Default `S2CPNET_MAX_IMAGE_PIXELS` or 64 megapixels (`DEFAULT_MAX_IMAGE_PIXELS`).
   */
  maxImagePixels?: number;
  /** Aborting saves progress and throws an `InterruptedError`; the next run resumes. */
  signal?: AbortSignal;
}

export type PreparePhase = 'captions' | 'images' | 'vocabulary' | 'nouns' | 'writing' | 'done';

/** Progress report; `done`/`total` count images during the `images` phase. */
export interface PrepareProgress {
  phase: PreparePhase;
  done: number;
  total: number;
  /** Images already finished by an earlier run (not redone). */
  resumed: number;
  skipped: number;
  /** Image id just finished, during the `images` phase. */
  item?: string;
  /** A human-readable note (warnings, what is being written). */
  message?: string;
}

export interface PrepareResult {
  outDir: string;
  manifest: PreparedManifest;
  /** Images finished in this run. */
  processed: number;
  /** Images finished by an earlier run and not redone. */
  resumed: number;
}

/** What is kept between runs to resume: finished images with their file's size and time, under one settings key. */
interface ProgressState {
  format: 's2cpnet-prepare-progress';
  version: 1;
  settingsKey: string;
  done: Record<string, { size: number; mtimeMs: number; width: number; height: number }>;
}

interface ResolvedSettings {
  size: number;
  minWordFreq: number;
  maxCaptionWords: number;
  minNounFreq: number;
  nounRules: NounRules;
  onError: OnErrorPolicy;
  concurrency: number;
}

function integerOption(value: unknown, name: string, fallback: number, minimum: number, maximum = Number.MAX_SAFE_INTEGER): number {
  const chosen = value ?? fallback;
  if (!Number.isInteger(chosen) || (chosen as number) < minimum || (chosen as number) > maximum) {
    throw new ConfigError(`$.${name}`, `expected an integer in ${minimum}..${maximum}, found ${JSON.stringify(value)}`);
  }
  return chosen as number;
}

function nounRulesOption(value: unknown): NounRules {
  if (value === undefined) return DEFAULT_NOUN_RULES;
  if (value === 'v1' || value === 'v2') return value;
  throw new ConfigError('$.nounRules', `expected "v1" or "v2", found ${JSON.stringify(value)}`);
}

function resolveSettings(options: PrepareOptions): ResolvedSettings {
  const onError = options.onError ?? 'stop';
  if (onError !== 'stop' && onError !== 'skip') {
    throw new ConfigError('$.onError', `expected "stop" or "skip", found ${JSON.stringify(onError)}`);
  }
  return {
    size: integerOption(options.size, 'size', DEFAULT_WORKING_SIZE, 16, 4096),
    minWordFreq: integerOption(options.minWordFreq, 'minWordFreq', DEFAULT_MIN_WORD_FREQ, 1),
    maxCaptionWords: integerOption(options.maxCaptionWords, 'maxCaptionWords', DEFAULT_MAX_CAPTION_WORDS, 1),
    minNounFreq: integerOption(options.minNounFreq, 'minNounFreq', DEFAULT_MIN_NOUN_FREQ, 1),
    nounRules: nounRulesOption(options.nounRules),
    onError,
    concurrency: integerOption(options.concurrency, 'concurrency', 2, 1, 64),
  };
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

async function readJsonIfPresent(file: string): Promise<unknown> {
  try {
    return JSON.parse(await fsp.readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Prepares a caption dataset for training: reads the caption file, checks and decodes every image, computes (or
 * checks) its mask view, builds the vocabulary and the noun classes on the TRAIN split, and writes
 * `dataset.json`, `vocabulary.json`, `nouns.json`, the masks and `manifest.json` into `outDir`.
 *
 * Every file is written atomically and the manifest last, so an interrupted run leaves no half-written file;
 * running again resumes without redoing finished images, and a finished folder is rebuilt identically.
 *
 * @example
 * ```ts
 * const { manifest } = await prepareDataset(
 *   { annotations: 'data/ucm/dataset.json', imagesDir: 'data/ucm/images', outDir: 'prepared/ucm' },
 *   (progress) => console.error(progress.phase, progress.done, '/', progress.total),
 * );
 * ```
 */
export async function prepareDataset(
  options: PrepareOptions,
  onProgress: (progress: PrepareProgress) => void = () => undefined,
): Promise<PrepareResult> {
  const settings = resolveSettings(options);
  const outDir = path.resolve(options.outDir);
  const imagesDir = path.resolve(options.imagesDir);
  const annotations = path.resolve(options.annotations);
  const signal = options.signal;
  const report = (progress: Omit<PrepareProgress, 'resumed' | 'skipped'> & Partial<PrepareProgress>): void =>
    onProgress({ resumed: 0, skipped: 0, ...progress });

  // -- the caption file
  report({ phase: 'captions', done: 0, total: 0, message: `reading ${annotations}` });
  let imagesDirStat;
  try {
    imagesDirStat = await fsp.stat(imagesDir);
  } catch {
    throw new InputError('images folder not found', { file: imagesDir });
  }
  if (!imagesDirStat.isDirectory()) throw new InputError('expected the images folder, found a file', { file: imagesDir });
  const dataset = await loadCaptionDataset(annotations, {
    imagesDir,
    format: options.format ?? 'auto',
    onError: settings.onError,
    defaultSplit: options.defaultSplit,
  });
  const skipped: SkippedItem[] = [...dataset.skipped];
  const fail = (error: unknown, image?: DatasetImage): void => {
    if (settings.onError === 'stop' || !S2CPNetError.isInstance(error)) throw error;
    const withWhere = error as S2CPNetError & { file?: string };
    skipped.push({ file: withWhere.file ?? image?.file ?? annotations, ...(image ? { jsonPath: image.jsonPath } : {}), reason: error.message });
  };

  // -- mask provider and cache
  const masksVersion = parseMasksVersion(options.masksVersion, '$.masksVersion');
  if (options.masksVersion === 'v2' && (options.maskProvider || options.masksDir)) {
    throw new ConfigError('$.masksVersion', 'masksVersion v2 chooses the built-in segmenter; it cannot be combined with masksDir or maskProvider');
  }
  let provider: MaskProvider;
  let masksDir: string | null = null;
  if (options.maskProvider) {
    provider = options.maskProvider;
  } else if (options.masksDir) {
    masksDir = path.resolve(options.masksDir);
    const stat = await fsp.stat(masksDir).catch(() => undefined);
    if (!stat?.isDirectory()) throw new InputError('masks folder not found (or not a folder)', { file: masksDir });
    provider = new FolderMaskProvider({ dir: masksDir });
  } else {
    provider = createBuiltInSegmenter(masksVersion);
  }
  const builtInVersion = builtInMasksVersion(provider);
  const precomputed = provider instanceof FolderMaskProvider;
  const masksRoot = path.join(outDir, PREPARED_FILES.masks);
  // By name: the prepared folder's layout (<stem>.png), with base names checked unique below. The working size is
  // applied by the cache through computeMaskView, the function caption-time masks go through as well.
  const cache = new MaskCache({ dir: masksRoot, provider, size: settings.size, keyBy: 'name' });
  const maxPixels = maxImagePixels(options.maxImagePixels);

  // Mask files are found (precomputed) or cached by the image's base name without extension, so two images may
  // not share one (a/1.jpg and b/1.tif would get the same mask).
  let candidates: DatasetImage[] = [];
  const stems = new Map<string, string>();
  for (const image of dataset.images) {
    try {
      const stem = path.parse(image.file).name;
      const other = stems.get(stem);
      if (other !== undefined) {
        throw new InputError(
          `image ${JSON.stringify(image.id)} has the same base name as ${JSON.stringify(other)}; mask files are named by base name, so expected base names to be unique`,
          { file: annotations, jsonPath: image.jsonPath },
        );
      }
      stems.set(stem, image.id);
      candidates.push(image);
    } catch (error) {
      fail(error, image);
    }
  }

  // -- resume state
  const settingsKey = sha256(
    JSON.stringify({ size: settings.size, provider: provider.cacheKey ?? provider.name, masksDir, imagesDir }),
  );
  const progressFile = path.join(outDir, PREPARED_FILES.progress);
  const previous = (await readJsonIfPresent(progressFile)) as ProgressState | undefined;
  const state: ProgressState = {
    format: 's2cpnet-prepare-progress',
    version: 1,
    settingsKey,
    done: previous?.format === 's2cpnet-prepare-progress' && previous.settingsKey === settingsKey ? { ...previous.done } : {},
  };
  let dirty = false;
  let lastSave = Date.now();
  const saveProgress = async (force = false): Promise<void> => {
    if (!dirty || (!force && Date.now() - lastSave < 2000)) return;
    dirty = false;
    lastSave = Date.now();
    await writeJsonAtomic(progressFile, state);
  };

  // -- images
  const total = candidates.length;
  let done = 0;
  let resumed = 0;
  let processed = 0;
  const usable = new Set<string>();
  const pending: DatasetImage[] = [];
  for (const image of candidates) {
    const record = state.done[image.id];
    if (record) {
      const stat = await fsp.stat(image.file).catch(() => undefined);
      const maskReady = precomputed || existsSync(cache.fileFor(image.file));
      if (stat && stat.size === record.size && stat.mtimeMs === record.mtimeMs && maskReady) {
        usable.add(image.id);
        resumed++;
        done++;
        continue;
      }
      delete state.done[image.id];
      dirty = true;
    }
    pending.push(image);
  }
  candidates = [];
  report({ phase: 'images', done, total, resumed, skipped: skipped.length });

  const processImage = async (image: DatasetImage): Promise<void> => {
    const stat = await fsp.stat(image.file).catch(() => undefined);
    let decoded: RgbImage;
    try {
      // A symbolic link out of the images folder is refused, like a name with "..".
      await realImagePath(imagesDir, image.file);
      decoded = await decodeImageFile(image.file, { maxPixels });
    } catch (error) {
      // Say where the image is listed, so a bad entry can be found in the caption file.
      if (!S2CPNetError.isInstance(error)) throw error;
      const prefix = `${image.file}: `;
      const reason = error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
      throw new InputError(`${reason} (listed at ${image.jsonPath} of ${annotations})`, { file: image.file, cause: error });
    }
    if (precomputed) {
      const folder = provider as FolderMaskProvider;
      const maskFile = await folder.maskFileFor(image.file);
      const mask = await decodeImageFile(maskFile);
      if (mask.width !== decoded.width || mask.height !== decoded.height) {
        throw new InputError(
          `mask is ${mask.width}x${mask.height} but its image ${image.file} is ${decoded.width}x${decoded.height}; expected the same size`,
          { file: maskFile },
        );
      }
    } else {
      await cache.get(decoded, image.file);
    }
    state.done[image.id] = { size: stat?.size ?? 0, mtimeMs: stat?.mtimeMs ?? 0, width: decoded.width, height: decoded.height };
    dirty = true;
  };

  let cursor = 0;
  let stopError: unknown;
  const worker = async (): Promise<void> => {
    while (cursor < pending.length && stopError === undefined && !signal?.aborted) {
      const image = pending[cursor++]!;
      try {
        await processImage(image);
        usable.add(image.id);
        processed++;
      } catch (error) {
        try {
          fail(error, image);
        } catch (fatal) {
          stopError ??= fatal;
          return;
        }
      }
      done++;
      report({ phase: 'images', done, total, resumed, skipped: skipped.length, item: image.id });
      await saveProgress();
    }
  };
  await Promise.all(Array.from({ length: Math.min(settings.concurrency, Math.max(1, pending.length)) }, worker));
  if (stopError !== undefined || signal?.aborted) {
    await saveProgress(true);
    if (stopError !== undefined) throw stopError;
    throw new InterruptedError(
      `prepare interrupted after ${done} of ${total} images; progress is saved in ${progressFile}: run the same command again to resume`,
    );
  }
  await saveProgress(true);

  // -- splits, vocabulary and nouns on what is usable
  const kept: CaptionDataset = { ...dataset, images: dataset.images.filter((image) => usable.has(image.id)), skipped };
  const counts = countBySplit(kept);
  if (counts.train === 0) {
    throw new InputError(
      `split "train" has no usable images (${dataset.images.length} listed, ${skipped.length} skipped); expected at least one to build the vocabulary`,
      { file: annotations },
    );
  }
  const warnings: string[] = [];
  for (const split of SPLITS) if (counts[split] === 0) warnings.push(`split "${split}" has no images`);
  for (const warning of warnings) report({ phase: 'vocabulary', done, total, resumed, skipped: skipped.length, message: `warning: ${warning}` });

  report({ phase: 'vocabulary', done, total, resumed, skipped: skipped.length, message: 'building the vocabulary (train split)' });
  const vocabulary = Vocabulary.build(kept, { minWordFreq: settings.minWordFreq, maxCaptionWords: settings.maxCaptionWords });
  const long = countLongCaptions(kept, settings.maxCaptionWords, 'train');
  const longAll = countLongCaptions(kept, settings.maxCaptionWords);
  report({ phase: 'nouns', done, total, resumed, skipped: skipped.length, message: 'tagging captions for target nouns' });
  const categories = buildCategoryLabels(kept, { minNounFreq: settings.minNounFreq, rules: settings.nounRules });
  if (categories.size === 0) {
    const warning = `no noun is seen in ${settings.minNounFreq} or more train captions: there are no category targets`;
    warnings.push(warning);
    report({ phase: 'nouns', done, total, resumed, skipped: skipped.length, message: `warning: ${warning}` });
  }

  // -- files: the manifest last, with the hash of each file it describes
  report({ phase: 'writing', done, total, resumed, skipped: skipped.length, message: `writing ${outDir}` });
  const datasetJson: PreparedDatasetJson = {
    format: 's2cpnet-dataset',
    version: 1,
    source: kept.source,
    imagesDir,
    images: kept.images.map((image) => ({
      id: image.id,
      split: image.split,
      ...(image.sceneClass !== undefined ? { sceneClass: image.sceneClass } : {}),
      ...(image.sourceId !== undefined ? { sourceId: image.sourceId } : {}),
      width: state.done[image.id]!.width,
      height: state.done[image.id]!.height,
      captions: image.captions,
    })),
  };
  const texts = {
    dataset: `${JSON.stringify(datasetJson)}\n`,
    vocabulary: `${JSON.stringify(vocabulary.toJSON(), null, 1)}\n`,
    nouns: `${JSON.stringify(categories.toJSON(), null, 1)}\n`,
  };
  await writeFileAtomic(path.join(outDir, PREPARED_FILES.dataset), texts.dataset);
  await writeFileAtomic(path.join(outDir, PREPARED_FILES.vocabulary), texts.vocabulary);
  await writeFileAtomic(path.join(outDir, PREPARED_FILES.nouns), texts.nouns);

  const captionCounts: Record<Split, number> = { train: 0, val: 0, test: 0 };
  for (const image of kept.images) captionCounts[image.split] += image.captions.length;
  const manifest: PreparedManifest = {
    format: 's2cpnet-prepared',
    version: 1,
    source: {
      annotations,
      annotationsSha256: sha256(await fsp.readFile(annotations, 'utf8')),
      format: dataset.source.format,
      ...(dataset.source.name ? { name: dataset.source.name } : {}),
      imagesDir,
      masksDir,
    },
    settings: {
      size: settings.size,
      minWordFreq: settings.minWordFreq,
      maxCaptionWords: settings.maxCaptionWords,
      minNounFreq: settings.minNounFreq,
      nounRules: settings.nounRules,
      onError: settings.onError,
      defaultSplit: options.defaultSplit ?? null,
      masks: {
        provider: provider.name,
        cacheKey: provider.cacheKey ?? provider.name,
        precomputed,
        workingSize: precomputed ? null : settings.size,
        ...(builtInVersion ? { version: builtInVersion } : {}),
      },
    },
    counts: {
      listed: dataset.images.length + dataset.skipped.length,
      images: { ...counts, total: kept.images.length },
      captions: { ...captionCounts, total: captionCounts.train + captionCounts.val + captionCounts.test },
      vocabulary: vocabulary.size,
      nounClasses: categories.size,
      imagesWithoutNouns: kept.images.filter((image) => categories.nounsOf(image.id).length === 0).length,
      skipped: skipped.length,
    },
    truncation: {
      maxCaptionWords: settings.maxCaptionWords,
      truncatedTrainCaptions: long.truncated,
      truncatedCaptions: longAll.truncated,
      longestCaptionWords: longAll.longest,
    },
    warnings,
    skipped,
    files: {
      dataset: { path: PREPARED_FILES.dataset, sha256: sha256(texts.dataset) },
      vocabulary: { path: PREPARED_FILES.vocabulary, sha256: sha256(texts.vocabulary) },
      nouns: { path: PREPARED_FILES.nouns, sha256: sha256(texts.nouns) },
      masks: precomputed ? masksDir! : path.relative(outDir, path.dirname(cache.fileFor('x.png'))).split(path.sep).join('/'),
    },
  };
  await writeJsonAtomic(path.join(outDir, PREPARED_FILES.manifest), manifest);
  report({ phase: 'done', done, total, resumed, skipped: skipped.length });
  return { outDir, manifest, processed, resumed };
}
