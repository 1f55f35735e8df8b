import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ConfigError, InputError } from '@s2cpnet/core';
import type { MaskSource } from '../batch/pipeline';
import type { CaptionDataset, CaptionFormat, DatasetImage, SkippedItem, Split } from '../dataset/types';
import { createBuiltInSegmenter, FolderMaskProvider, isMasksVersion, MaskCache, type MaskProvider, type MasksVersion } from '../masks/index';
import { CategoryLabels } from '../nouns/categories';
import { Vocabulary } from '../vocab/vocabulary';

/** File names inside a prepared folder. */
export const PREPARED_FILES = {
  manifest: 'manifest.json',
  dataset: 'dataset.json',
  vocabulary: 'vocabulary.json',
  nouns: 'nouns.json',
  masks: 'masks',
  progress: 'progress.json',
} as const;

/** `manifest.json`: what was prepared from what, with which settings, and what was left out. */
export interface PreparedManifest {
  format: 's2cpnet-prepared';
  version: 1;
  source: {
    annotations: string;
    annotationsSha256: string;
    format: CaptionFormat;
    name?: string;
    imagesDir: string;
    masksDir: string | null;
  };
  settings: {
    size: number;
    minWordFreq: number;
    maxCaptionWords: number;
    minNounFreq: number;
    /** Noun rules of the target classes (absent in manifests written before they were versioned: v1). */
    nounRules?: 'v1' | 'v2';
    onError: 'stop' | 'skip';
    defaultSplit: Split | null;
    masks: {
      provider: string;
      cacheKey: string;
      /** True when masks come from a folder of precomputed mask images. */
      precomputed: boolean;
      /** Side images are resized to before segmentation; null for precomputed masks (used at their own size). */
      workingSize: number | null;
      /**
       * Version of the built-in segmenter (`v1` Felzenszwalb segments, `v2` targets on a background); absent for
       * other providers and in manifests written before masks were versioned (those are v1).
       */
      version?: MasksVersion;
    };
  };
  counts: {
    /** Entries in the caption file. */
    listed: number;
    images: Record<Split | 'total', number>;
    captions: Record<Split | 'total', number>;
    vocabulary: number;
    nounClasses: number;
    imagesWithoutNouns: number;
    skipped: number;
  };
  truncation: {
    maxCaptionWords: number;
    truncatedTrainCaptions: number;
    truncatedCaptions: number;
    longestCaptionWords: number;
  };
  warnings: string[];
  skipped: SkippedItem[];
  files: {
    dataset: { path: string; sha256: string };
    vocabulary: { path: string; sha256: string };
    nouns: { path: string; sha256: string };
    /** Mask views: a folder relative to the prepared folder, or the absolute precomputed masks folder. */
    masks: string;
  };
}

/** `dataset.json` of a prepared folder: the caption dataset that was kept, with each image's original size. */
export interface PreparedDatasetJson {
  format: 's2cpnet-dataset';
  version: 1;
  source: CaptionDataset['source'];
  imagesDir: string;
  images: Array<Omit<DatasetImage, 'file' | 'jsonPath'> & { width: number; height: number }>;
}

/** Everything `prepare` wrote, loaded and checked. */
export interface PreparedDataset {
  dir: string;
  manifest: PreparedManifest;
  dataset: CaptionDataset;
  vocabulary: Vocabulary;
  categories: CategoryLabels;
  /** Mask views as the pipeline wants them: read from the cache (computed there if a file went missing). */
  maskSource: MaskSource;
}

/**
 * Opens a folder written by `prepareDataset` / `s2cpnet prepare`. Each file is checked against the hash the
 * manifest recorded, so a folder whose run was interrupted while writing is reported, not half-used.
 *
 * @example
 * ```ts
 * const prepared = await loadPreparedDataset('prepared/ucm');
 * const pipeline = new BatchPipeline({ dataset: prepared.dataset, vocabulary: prepared.vocabulary,
 *   categories: prepared.categories, masks: prepared.maskSource, split: 'train', imageSize: 224,
 *   backbone: 'resnet', batchSize: 48, seed: 1 });
 * ```
 */
export async function loadPreparedDataset(dir: string): Promise<PreparedDataset> {
  const root = path.resolve(dir);
  const manifestFile = path.join(root, PREPARED_FILES.manifest);
  const manifestText = await fsp.readFile(manifestFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new InputError(
      error.code === 'ENOENT' ? 'no manifest.json: not a prepared folder, or prepare has not finished (run s2cpnet prepare)' : `cannot read (${error.code})`,
      { file: manifestFile, cause: error },
    );
  });
  let manifest: PreparedManifest;
  try {
    manifest = JSON.parse(manifestText) as PreparedManifest;
  } catch (error) {
    throw new InputError(`not valid JSON: ${(error as Error).message}`, { file: manifestFile });
  }
  if (manifest?.format !== 's2cpnet-prepared' || manifest.version !== 1) {
    throw new ConfigError('$.format', `expected an s2cpnet-prepared manifest, version 1, found ${JSON.stringify(manifest?.format)} ${JSON.stringify(manifest?.version)}`, { file: manifestFile });
  }
  const readChecked = async (key: 'dataset' | 'vocabulary' | 'nouns'): Promise<unknown> => {
    const entry = manifest.files[key];
    const file = path.join(root, entry.path);
    const text = await fsp.readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      throw new InputError(`missing ${key} file (${error.code}); run s2cpnet prepare again`, { file, cause: error });
    });
    if (createHash('sha256').update(text).digest('hex') !== entry.sha256) {
      throw new InputError(`content differs from what manifest.json recorded (an interrupted or mixed run?); run s2cpnet prepare again`, { file });
    }
    return JSON.parse(text);
  };
  const datasetJson = (await readChecked('dataset')) as PreparedDatasetJson;
  const vocabulary = Vocabulary.fromJSON(await readChecked('vocabulary'), path.join(root, manifest.files.vocabulary.path));
  const categories = CategoryLabels.fromJSON(await readChecked('nouns'), path.join(root, manifest.files.nouns.path));
  const imagesDir = datasetJson.imagesDir;
  const dataset: CaptionDataset = {
    source: datasetJson.source,
    imagesDir,
    skipped: manifest.skipped,
    images: datasetJson.images.map((image, i) => {
      const entry: DatasetImage = {
        id: image.id,
        file: path.resolve(imagesDir, ...image.id.split('/')),
        split: image.split,
        captions: image.captions,
        jsonPath: `$.images[${i}]`,
      };
      if (image.sceneClass !== undefined) entry.sceneClass = image.sceneClass;
      if (image.sourceId !== undefined) entry.sourceId = image.sourceId;
      return entry;
    }),
  };
  return { dir: root, manifest, dataset, vocabulary, categories, maskSource: preparedMaskSource(root, manifest) };
}

/**
 * Identifies a prepared folder's mask view: its provider's cache key (which names the segmenter, its version and
 * parameters, or the precomputed folder) and the working size. Cached backbone features of the mask view are stored
 * under it (`FeatureOptions.maskKey`), so features of different masks never mix.
 */
export function preparedMaskKey(manifest: PreparedManifest): string {
  const masks = manifest.settings.masks;
  const size = masks.workingSize ?? manifest.settings.size;
  return masks.precomputed ? masks.cacheKey : `${masks.cacheKey}@${size}`;
}

/** The mask source matching a manifest: the same provider and working size as `prepare` used. */
export function preparedMaskSource(dir: string, manifest: PreparedManifest, provider?: MaskProvider): MaskSource {
  const masks = manifest.settings.masks;
  if (masks.precomputed) {
    const folder = new FolderMaskProvider({ dir: manifest.source.masksDir! });
    return async (image) => folder.readMaskView(image.file);
  }
  let chosen = provider;
  if (!chosen) {
    const version = masks.version ?? 'v1';
    if (!isMasksVersion(version)) {
      throw new ConfigError('$.settings.masks.version', `expected v1 or v2, found ${JSON.stringify(version)}`, { file: path.join(dir, PREPARED_FILES.manifest) });
    }
    const segmenter = createBuiltInSegmenter(version);
    if ((segmenter.cacheKey ?? segmenter.name) !== masks.cacheKey) {
      throw new ConfigError(
        '$.settings.masks.cacheKey',
        `masks were prepared with ${masks.cacheKey}; pass that provider to preparedMaskSource (the default is ${segmenter.cacheKey})`,
        { file: path.join(dir, PREPARED_FILES.manifest) },
      );
    }
    chosen = segmenter;
  }
  const size = masks.workingSize ?? manifest.settings.size;
  const cache = new MaskCache({ dir: path.join(dir, PREPARED_FILES.masks), provider: chosen, size, keyBy: 'name' });
  return (image, decoded) => cache.get(decoded, image.file);
}
