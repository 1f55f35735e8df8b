/**
 * The synthetic aerial set: the embedded default dataset of the demo. Small seeded overhead scenes with exact object
 * masks and five captions each, written in the Karpathy layout so the normal dataset readers load it.
 */
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ConfigError, InputError, SeededRng, deriveSeed, writeDirAtomic } from '@s2cpnet/core';
import { encodePng } from '../image/codec';
import { renderMaskView } from '../masks/render';
import type { LabelMap, RgbImage } from '../masks/types';
import { Canvas, type Box } from './canvas';
import { captionScene } from './captions';
import { SCENE_PAINTERS, SCENE_TYPES, type SceneFacts, type SceneType } from './scenes';

export { SYNTHETIC_CLASS_WORDS } from './captions';
export { SCENE_TYPES, type SceneType, type SceneFacts, type Orientation, type RoofColor, type CropColor } from './scenes';
export type { Box } from './canvas';

/** Object classes of the synthetic set, in a fixed order. */
export const SYNTHETIC_CLASSES: readonly string[] = Object.freeze([
  'building',
  'tree',
  'road',
  'river',
  'lake',
  'farmland',
  'playground',
  'football field',
  'parking lot',
  'car',
  'bridge',
]);

export type SyntheticSplit = 'train' | 'val' | 'test';

export interface SyntheticSplitFractions {
  train: number;
  val: number;
  test: number;
}

export interface SyntheticAerialSetOptions {
  seed: number;
  /** Number of images. */
  count: number;
  /** Image side in pixels (square). Default 64; the pipeline resizes to the model input anyway. */
  size?: number;
  /** Split fractions (normalised to sum 1). Default 0.8 / 0.1 / 0.1. */
  splits?: SyntheticSplitFractions;
}

export interface SyntheticObject {
  /** Label of this object in `objectLabels` (1..K). */
  label: number;
  /** One of `SYNTHETIC_CLASSES`. */
  className: string;
  /** Colour word used by the captions (`mixed` for cars, whose colours vary). */
  color: string;
  /** Visible pixels. */
  area: number;
  bbox: Box;
}

export interface SyntheticImage {
  id: number;
  fileName: string;
  split: SyntheticSplit;
  sceneType: SceneType;
  image: RgbImage;
  /** Exact instance masks: each object's pixels carry its label, background is 0. */
  objectLabels: LabelMap;
  /** Five captions: lower-case words separated by single spaces. */
  captions: string[];
  objects: SyntheticObject[];
  /** The scene facts the captions were written from (orientation, colours, sides...). */
  facts: SceneFacts;
}

export interface SyntheticAerialSet {
  images: SyntheticImage[];
  classes: string[];
}

export const SYNTHETIC_DEFAULTS = Object.freeze({
  size: 64,
  splits: Object.freeze({ train: 0.8, val: 0.1, test: 0.1 }),
});

/** Texture noise amplitude (+- grey levels): enough that images are not flat colour fields. */
const TEXTURE_NOISE = 10;

function validateOptions(options: SyntheticAerialSetOptions): Required<SyntheticAerialSetOptions> {
  const { seed, count } = options;
  const size = options.size ?? SYNTHETIC_DEFAULTS.size;
  const splits = options.splits ?? SYNTHETIC_DEFAULTS.splits;
  if (!Number.isInteger(seed)) throw new ConfigError('$.seed', `must be an integer, found ${String(seed)}`);
  if (!(Number.isInteger(count) && count >= 0)) throw new ConfigError('$.count', `must be an integer >= 0, found ${String(count)}`);
  if (!(Number.isInteger(size) && size >= 32 && size <= 1024)) {
    throw new ConfigError('$.size', `must be an integer in 32-1024 (pixels), found ${String(size)}`);
  }
  for (const key of ['train', 'val', 'test'] as const) {
    const value = splits[key];
    if (!(Number.isFinite(value) && value >= 0)) {
      throw new ConfigError(`$.splits.${key}`, `must be a fraction >= 0, found ${String(value)}`);
    }
  }
  if (!(splits.train + splits.val + splits.test > 0)) throw new ConfigError('$.splits', 'fractions must not all be 0');
  return { seed, count, size, splits };
}

/** Split sizes: val and test are rounded from their fractions; train takes the rest. */
export function syntheticSplitSizes(count: number, splits: SyntheticSplitFractions = SYNTHETIC_DEFAULTS.splits): Record<SyntheticSplit, number> {
  const total = splits.train + splits.val + splits.test;
  const val = Math.round((count * splits.val) / total);
  const test = Math.min(count - val, Math.round((count * splits.test) / total));
  return { train: count - val - test, val, test };
}

/** One scene. Depends only on (seed, index, size): image 7 is the same whether 10 or 1000 images are made. */
function generateScene(seed: number, index: number, size: number) {
  const rng = new SeededRng(deriveSeed(seed, `synthetic-image-${index}`));
  const sceneType = rng.pick(SCENE_TYPES);
  const canvas = new Canvas(size, rng);
  const facts = SCENE_PAINTERS[sceneType](canvas);
  const { image, objectLabels, objects } = canvas.finish(TEXTURE_NOISE);
  const classCounts = new Map<string, number>();
  for (const object of objects) classCounts.set(object.className, (classCounts.get(object.className) ?? 0) + 1);
  const captions = captionScene(facts, classCounts, rng);
  return { sceneType, facts, image, objectLabels, objects, captions };
}

/**
 * Generates the synthetic aerial set in memory. Deterministic: the same options give identical images, masks and
 * captions.
 *
 * @example
 * ```ts
 * const { images, classes } = generateSyntheticAerialSet({ seed: 1, count: 1000 });
 * images[0].captions; // e.g. ['there are three red buildings on the left of the road', ...]
 * ```
 */
export function generateSyntheticAerialSet(options: SyntheticAerialSetOptions): SyntheticAerialSet {
  const { seed, count, size, splits } = validateOptions(options);
  const sizes = syntheticSplitSizes(count, splits);
  const order = new SeededRng(deriveSeed(seed, 'synthetic-splits')).shuffle(Array.from({ length: count }, (_, i) => i));
  const splitOf = new Array<SyntheticSplit>(count);
  order.forEach((imageIndex, rank) => {
    splitOf[imageIndex] = rank < sizes.train ? 'train' : rank < sizes.train + sizes.val ? 'val' : 'test';
  });
  const digits = Math.max(4, String(count).length);
  const images: SyntheticImage[] = [];
  for (let i = 0; i < count; i++) {
    const scene = generateScene(seed, i, size);
    images.push({
      id: i,
      fileName: `${String(i + 1).padStart(digits, '0')}.png`,
      split: splitOf[i]!,
      ...scene,
    });
  }
  return { images, classes: [...SYNTHETIC_CLASSES] };
}

/** Karpathy-layout dataset.json content for a generated set. */
export function toKarpathyJson(set: SyntheticAerialSet): {
  dataset: string;
  images: Array<{
    filename: string;
    imgid: number;
    split: SyntheticSplit;
    sentids: number[];
    sentences: Array<{ tokens: string[]; raw: string; imgid: number; sentid: number }>;
  }>;
} {
  let sentid = 0;
  return {
    dataset: 'synthetic-aerial',
    images: set.images.map((image) => {
      const sentences = image.captions.map((raw) => ({ tokens: raw.split(' '), raw, imgid: image.id, sentid: sentid++ }));
      return {
        filename: image.fileName,
        imgid: image.id,
        split: image.split,
        sentids: sentences.map((s) => s.sentid),
        sentences,
      };
    }),
  };
}

const MARKER_FILE = 'synthetic.json';

export interface WrittenSyntheticSet {
  dir: string;
  count: number;
  imagesDir: string;
  masksDir: string;
  datasetFile: string;
  splitSizes: Record<SyntheticSplit, number>;
}

/**
 * Generates the set and writes it to `outDir` (replacing a previous synthetic set there, atomically):
 * - `images/<nnnn>.png`: the scenes;
 * - `masks/<nnnn>.png`: their exact object masks rendered as the 3-channel mask view (objects filled with their mean
 *   colour, borders and background black), readable by `FolderMaskProvider`;
 * - `dataset.json`: Karpathy layout, `{images:[{filename, imgid, split, sentids, sentences:[{tokens, raw, imgid, sentid}]}]}`;
 * - `annotations.json`: scene type, facts and objects (class, colour, area, box) per image;
 * - `synthetic.json`: the generation options and classes.
 * Refuses to overwrite a non-empty folder that is not a synthetic set. Byte-identical for the same options.
 *
 * @example
 * ```ts
 * await writeSyntheticAerialSet('data/synthetic', { seed: 1, count: 1000 });
 * ```
 */
export async function writeSyntheticAerialSet(outDir: string, options: SyntheticAerialSetOptions): Promise<WrittenSyntheticSet> {
  const resolved = validateOptions(options);
  const dir = path.resolve(outDir);
  if (existsSync(dir)) {
    const entries = await fsp.readdir(dir);
    if (entries.length > 0 && !entries.includes(MARKER_FILE)) {
      throw new InputError(`refusing to replace a non-empty folder that holds no synthetic set (no ${MARKER_FILE})`, {
        file: dir,
      });
    }
  }
  const set = generateSyntheticAerialSet(resolved);
  await writeDirAtomic(dir, async (tmp) => {
    await fsp.mkdir(path.join(tmp, 'images'));
    await fsp.mkdir(path.join(tmp, 'masks'));
    for (const image of set.images) {
      await fsp.writeFile(path.join(tmp, 'images', image.fileName), encodePng(image.image));
      await fsp.writeFile(path.join(tmp, 'masks', image.fileName), encodePng(renderMaskView(image.image, image.objectLabels)));
    }
    await fsp.writeFile(path.join(tmp, 'dataset.json'), `${JSON.stringify(toKarpathyJson(set))}\n`);
    const annotations = set.images.map((image) => ({
      filename: image.fileName,
      imgid: image.id,
      sceneType: image.sceneType,
      facts: image.facts,
      objects: image.objects,
    }));
    await fsp.writeFile(path.join(tmp, 'annotations.json'), `${JSON.stringify({ images: annotations })}\n`);
    const marker = { generator: '@s2cpnet/data synthetic aerial set', formatVersion: 1, ...resolved, classes: set.classes };
    await fsp.writeFile(path.join(tmp, MARKER_FILE), `${JSON.stringify(marker, null, 2)}\n`);
  });
  return {
    dir,
    count: set.images.length,
    imagesDir: path.join(dir, 'images'),
    masksDir: path.join(dir, 'masks'),
    datasetFile: path.join(dir, 'dataset.json'),
    splitSizes: syntheticSplitSizes(resolved.count, resolved.splits),
  };
}
