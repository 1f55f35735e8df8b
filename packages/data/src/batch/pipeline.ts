import { ConfigError, SeededRng, deriveSeed } from '@s2cpnet/core';
import type { CaptionDataset, DatasetImage, Split } from '../dataset/types';
import { decodeImageFile } from '../image/codec';
import { augmentImage, normalizeForBackbone, resizeBilinear, type BackboneNormalization, type ImageAugmentation } from '../image/transform';
import type { RgbImage } from '../masks/types';
import type { CategoryLabels } from '../nouns/categories';
import type { Vocabulary } from '../vocab/vocabulary';
import type { CachedFeature, FeatureCache } from './feature-cache';

/** Gives the mask view of an image (any size: the pipeline resizes it like the image). */
export type MaskSource = (image: DatasetImage, decoded: RgbImage) => Promise<RgbImage>;

/** Frozen-encoder training: backbone features come from (and go to) a `FeatureCache` instead of pixels. */
export interface FeatureOptions {
  cache: FeatureCache;
  /** Identifies the backbone and its weights; features of different ids never mix. */
  backboneId: string;
  /**
   * Identifies the mask view (provider, version and working size, e.g. `preparedMaskKey(manifest)`): cached mask
   * features of different keys never mix, so a `features/` folder shared by runs on masks v1 and v2 stays right.
   * Default `default`.
   */
  maskKey?: string;
  /**
   * Features of `count` preprocessed inputs (`pixels`: [count, H, W, 3], normalised, channels last): one per input.
   * Supplied by the model package.
   */
  compute(pixels: Float32Array, count: number): Promise<CachedFeature[]> | CachedFeature[];
}

export interface BatchPipelineOptions {
  dataset: Pick<CaptionDataset, 'images'>;
  split: Split;
  vocabulary: Vocabulary;
  /** Noun labels; without them the batch carries no category targets. */
  categories?: CategoryLabels;
  /** Side of the square model input, e.g. 224. */
  imageSize: number;
  /** Input normalisation of the backbone. */
  backbone: BackboneNormalization;
  batchSize: number;
  /** Seeds the shuffle, caption choice and augmentation: the same seed gives the same batches. */
  seed: number;
  /** Shuffle the images every epoch (default true). */
  shuffle?: boolean;
  /** Drop a last batch smaller than `batchSize` (default false). */
  dropLast?: boolean;
  /** Caption rows per image (default 5). Extra captions are chosen at random each epoch; missing rows are all `<pad>`. */
  captionsPerImage?: number;
  /** Ids per caption row (default `maxCaptionWords + 2`: `<start>`, words, `<end>`). */
  captionLength?: number;
  /** Batches prepared ahead while the caller computes (default 2). */
  prefetch?: number;
  /** Mask views; without it the batch has no masks. */
  masks?: MaskSource;
  /** Random flips and quarter turns, the same for image and mask (default none, as in the paper). */
  augment?: { flips?: boolean; rotations?: boolean };
  /** Use cached backbone features instead of pixels. */
  features?: FeatureOptions;
  /** Image decoder (default `decodeImageFile`); replaceable for tests or other storage. */
  decode?: (file: string) => Promise<RgbImage>;
}

/** One batch, as plain typed arrays (batch first, channels last). */
export interface Batch {
  /** Epoch and position of this batch in it. */
  epoch: number;
  index: number;
  /** Image ids, B of them. */
  imageIds: string[];
  /** [B, S, S, 3] normalised pixels (S = imageSize); null when features are used. */
  images: Float32Array | null;
  /** [B, S, S, 3] normalised mask views; null without masks or with features. */
  masks: Float32Array | null;
  /** [B, ...featureShape] backbone features of the images, with `features`. */
  imageFeatures: Float32Array | null;
  /** [B, ...featureShape] backbone features of the mask views, with `features` and masks. */
  maskFeatures: Float32Array | null;
  featureShape: number[] | null;
  /** [B, C, T] caption ids: `<start>` w1 .. wn `<end>` `<pad>`...; rows past an image's caption count are all `<pad>`. */
  captions: Int32Array;
  /** [B] real caption rows per image. */
  captionCounts: Int32Array;
  /** [B, K] multi-hot noun targets; null without categories. */
  categories: Float32Array | null;
  batchSize: number;
  imageSize: number;
  captionsPerImage: number;
  captionLength: number;
  numClasses: number;
}

interface LoadedImage {
  image: RgbImage;
  mask: RgbImage | null;
}

function positiveInteger(value: unknown, jsonPath: string, minimum = 1): number {
  if (!Number.isInteger(value) || (value as number) < minimum) {
    throw new ConfigError(jsonPath, `expected an integer >= ${minimum}, found ${JSON.stringify(value)}`);
  }
  return value as number;
}

/**
 * Yields shuffled, seeded batches of one split: images (and mask views) decoded, resized bilinearly to the model
 * input and normalised for the backbone; the captions of each image (all of them, so the model encodes an image
 * once per step); multi-hot noun targets. The next batches are decoded while the caller works on the current one.
 *
 * @example
 * ```ts
 * const pipeline = new BatchPipeline({ dataset, split: 'train', vocabulary, categories, imageSize: 224,
 *   backbone: 'resnet', batchSize: 48, seed: 1 });
 * for await (const batch of pipeline.epoch(0)) {
 *   const tensors = batchToTensors(batch); // tf tensors; dispose after the step
 * }
 * ```
 */
export class BatchPipeline {
  readonly images: readonly DatasetImage[];
  readonly batchSize: number;
  readonly imageSize: number;
  readonly captionsPerImage: number;
  readonly captionLength: number;
  private readonly options: BatchPipelineOptions;
  private readonly prefetch: number;
  private readonly decode: (file: string) => Promise<RgbImage>;

  constructor(options: BatchPipelineOptions) {
    this.options = options;
    this.batchSize = positiveInteger(options.batchSize, '$.batchSize');
    this.imageSize = positiveInteger(options.imageSize, '$.imageSize', 8);
    this.captionsPerImage = positiveInteger(options.captionsPerImage ?? 5, '$.captionsPerImage');
    this.captionLength = positiveInteger(options.captionLength ?? options.vocabulary.settings.maxCaptionWords + 2, '$.captionLength', 2);
    this.prefetch = positiveInteger(options.prefetch ?? 2, '$.prefetch', 0);
    if (options.backbone !== 'resnet' && options.backbone !== 'mobilenet') {
      throw new ConfigError('$.backbone', `expected "resnet" or "mobilenet", found ${JSON.stringify(options.backbone)}`);
    }
    if (!Number.isInteger(options.seed)) throw new ConfigError('$.seed', `expected an integer seed, found ${JSON.stringify(options.seed)}`);
    if (options.features && (options.augment?.flips || options.augment?.rotations)) {
      throw new ConfigError('$.augment', 'augmentation cannot be combined with cached features (a cached feature is of the unaugmented image)');
    }
    this.images = options.dataset.images.filter((image) => image.split === options.split);
    if (this.images.length === 0) {
      throw new ConfigError('$.split', `split ${JSON.stringify(options.split)} has no images; expected at least one`);
    }
    this.decode = options.decode ?? decodeImageFile;
  }

  /** Batches per epoch. */
  get batchesPerEpoch(): number {
    return this.options.dropLast ? Math.floor(this.images.length / this.batchSize) : Math.ceil(this.images.length / this.batchSize);
  }

  /** Image order of an epoch (indices into `images`). */
  order(epoch: number): number[] {
    const indices = this.images.map((_, i) => i);
    if (this.options.shuffle ?? true) new SeededRng(deriveSeed(this.options.seed, `shuffle:${epoch}`)).shuffle(indices);
    return indices;
  }

  /** The batches of one epoch, with `prefetch` batches prepared ahead. */
  async *epoch(epoch: number): AsyncGenerator<Batch> {
    const order = this.order(epoch);
    const count = this.batchesPerEpoch;
    const queue: Promise<Batch>[] = [];
    let next = 0;
    const enqueue = (): void => {
      const index = next++;
      const members = order.slice(index * this.batchSize, (index + 1) * this.batchSize).map((i) => this.images[i]!);
      const pending = this.assemble(epoch, index, members);
      // Errors surface when the caller reaches this batch; until then they must not be reported as unhandled.
      pending.catch(() => undefined);
      queue.push(pending);
    };
    // While the caller holds batch i, batches i+1 .. i+prefetch are being prepared.
    while (next < count && queue.length <= this.prefetch) enqueue();
    while (queue.length > 0) {
      const batch = await queue.shift()!;
      yield batch;
      if (next < count) enqueue();
    }
  }

  private augmentationFor(epoch: number, image: DatasetImage): ImageAugmentation {
    const augment = this.options.augment;
    if (!augment?.flips && !augment?.rotations) return { flip: false, quarterTurns: 0 };
    // Seeded per image and epoch, so the result does not depend on the order batches finish loading.
    const rng = new SeededRng(deriveSeed(this.options.seed, `augment:${epoch}:${image.id}`));
    const flip = augment.flips ? rng.next() < 0.5 : false;
    const quarterTurns = (augment.rotations ? rng.int(4) : 0) as ImageAugmentation['quarterTurns'];
    return { flip, quarterTurns };
  }

  private async load(epoch: number, image: DatasetImage): Promise<LoadedImage> {
    const decoded = await this.decode(image.file);
    const mask = this.options.masks ? await this.options.masks(image, decoded) : null;
    const augmentation = this.augmentationFor(epoch, image);
    const size = this.imageSize;
    return {
      image: resizeBilinear(augmentImage(decoded, augmentation), size, size),
      mask: mask ? resizeBilinear(augmentImage(mask, augmentation), size, size) : null,
    };
  }

  private async assemble(epoch: number, index: number, members: DatasetImage[]): Promise<Batch> {
    const b = members.length;
    const { vocabulary, categories, backbone, features } = this.options;
    const pixelsPerImage = this.imageSize * this.imageSize * 3;
    const withMasks = Boolean(this.options.masks);
    const numClasses = categories?.size ?? 0;

    // Captions and targets first: cheap, and independent of the pixels.
    const c = this.captionsPerImage;
    const t = this.captionLength;
    const captions = new Int32Array(b * c * t);
    const captionCounts = new Int32Array(b);
    members.forEach((image, i) => {
      let chosen = image.captions;
      if (chosen.length > c) {
        const rng = new SeededRng(deriveSeed(this.options.seed, `captions:${epoch}:${image.id}`));
        const picks = rng.shuffle(chosen.map((_, k) => k)).slice(0, c).sort((x, y) => x - y);
        chosen = picks.map((k) => image.captions[k]!);
      }
      captionCounts[i] = chosen.length;
      chosen.forEach((caption, k) => vocabulary.encodeCaption(caption.tokens, t, captions, (i * c + k) * t));
    });
    let targets: Float32Array | null = null;
    if (categories) {
      targets = new Float32Array(b * numClasses);
      members.forEach((image, i) => categories.multiHot(image.id, targets!, i * numClasses));
    }

    const images = new Float32Array(b * pixelsPerImage);
    const masks = withMasks ? new Float32Array(b * pixelsPerImage) : null;
    if (features) {
      // Only the images missing from the cache are decoded and run through the backbone.
      const imageFeatures = await this.cachedFeatures(members, '', features, epoch, (loaded) => loaded.image);
      const maskFeatures = withMasks ? await this.cachedFeatures(members, `#mask:${features.maskKey ?? 'default'}`, features, epoch, (loaded) => loaded.mask!) : null;
      const shape = imageFeatures.shape;
      if (maskFeatures && maskFeatures.shape.join() !== shape.join()) {
        throw new ConfigError('$.features', `mask features have shape [${maskFeatures.shape}] but image features [${shape}]`);
      }
      return {
        epoch, index, imageIds: members.map((m) => m.id), images: null, masks: null,
        imageFeatures: imageFeatures.data, maskFeatures: maskFeatures?.data ?? null, featureShape: shape,
        captions, captionCounts, categories: targets, batchSize: b, imageSize: this.imageSize, captionsPerImage: c,
        captionLength: t, numClasses,
      };
    }
    const loaded = await Promise.all(members.map((image) => this.load(epoch, image)));
    loaded.forEach((item, i) => {
      normalizeForBackbone(item.image, backbone, images, i * pixelsPerImage);
      if (masks) normalizeForBackbone(item.mask!, backbone, masks, i * pixelsPerImage);
    });
    return {
      epoch, index, imageIds: members.map((m) => m.id), images, masks,
      imageFeatures: null, maskFeatures: null, featureShape: null,
      captions, captionCounts, categories: targets, batchSize: b, imageSize: this.imageSize, captionsPerImage: c,
      captionLength: t, numClasses,
    };
  }

  private async cachedFeatures(
    members: DatasetImage[],
    suffix: string,
    features: FeatureOptions,
    epoch: number,
    pick: (loaded: LoadedImage) => RgbImage,
  ): Promise<{ shape: number[]; data: Float32Array }> {
    const found = await Promise.all(members.map((m) => features.cache.get(m.id + suffix, features.backboneId)));
    const missing = members.map((m, i) => (found[i] ? -1 : i)).filter((i) => i >= 0);
    if (missing.length > 0) {
      const pixelsPerImage = this.imageSize * this.imageSize * 3;
      const pixels = new Float32Array(missing.length * pixelsPerImage);
      const loaded = await Promise.all(missing.map((i) => this.load(epoch, members[i]!)));
      loaded.forEach((item, j) => normalizeForBackbone(pick(item), this.options.backbone, pixels, j * pixelsPerImage));
      const computed = await features.compute(pixels, missing.length);
      if (!Array.isArray(computed) || computed.length !== missing.length) {
        throw new ConfigError('$.features.compute', `expected ${missing.length} features, found ${Array.isArray(computed) ? computed.length : typeof computed}`);
      }
      await Promise.all(
        missing.map(async (i, j) => {
          await features.cache.put(members[i]!.id + suffix, features.backboneId, computed[j]!);
          features.cache.stats.computed++;
          found[i] = computed[j]!;
        }),
      );
    }
    features.cache.stats.hits += members.length - missing.length;
    const shape = found[0]!.shape;
    const per = found[0]!.data.length;
    const data = new Float32Array(members.length * per);
    found.forEach((feature, i) => {
      if (feature!.shape.join() !== shape.join()) {
        throw new ConfigError('$.features', `feature of ${members[i]!.id} has shape [${feature!.shape}], expected [${shape}] like the others`);
      }
      data.set(feature!.data, i * per);
    });
    return { shape, data };
  }
}
