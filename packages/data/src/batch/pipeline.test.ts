import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatasetImage } from '../dataset/types';
import { decodeImageFile } from '../image/codec';
import { normalizeForBackbone, resizeBilinear } from '../image/transform';
import type { RgbImage } from '../masks/types';
import { buildCategoryLabels } from '../nouns/categories';
import { Vocabulary } from '../vocab/vocabulary';
import { FeatureCache } from './feature-cache';
import { BatchPipeline, type Batch, type BatchPipelineOptions } from './pipeline';
import { batchToTensors, disposeBatchTensors } from './tensors';

const tmp = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-pipeline-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const CAPTIONS = [
  'an airplane at the airport',
  'some cars on the road',
  'a river with trees',
  'a white airplane on the runway',
  'many houses and trees',
  'a road with cars',
  'two airplanes at the airport',
];

function makeImage(index: number, captionCount: number, split: 'train' | 'val'): DatasetImage {
  const id = `img${index}.png`;
  return {
    id,
    file: path.join(tmp, id),
    split,
    jsonPath: `$.images[${index}]`,
    captions: CAPTIONS.slice(0, captionCount).map((raw, k) => {
      const text = CAPTIONS[(k + index) % CAPTIONS.length]!;
      return { raw: text, tokens: text.split(' ') };
    }),
  };
}

// Seven train images (caption counts 3..7 vary) and one val image, of different sizes.
const images = [0, 1, 2, 3, 4, 5, 6].map((i) => makeImage(i, 3 + (i % 5), 'train')).concat(makeImage(7, 5, 'val'));
const dataset = { images };
const vocabulary = Vocabulary.build(dataset, { minWordFreq: 1 });
const categories = buildCategoryLabels(dataset, { minNounFreq: 1 });

beforeAll(async () => {
  await tf.setBackend('cpu');
  await Promise.all(
    images.map((image, i) => {
      const width = 12 + i;
      const height = 10 + 2 * i;
      const data = Buffer.alloc(width * height * 3);
      for (let p = 0; p < width * height; p++) data.set([(p * 7 + i * 40) % 256, (p * 3) % 256, (i * 31) % 256], 3 * p);
      return sharp(data, { raw: { width, height, channels: 3 } }).png().toFile(image.file);
    }),
  );
});

function options(extra: Partial<BatchPipelineOptions> = {}): BatchPipelineOptions {
  return { dataset, split: 'train', vocabulary, categories, imageSize: 8, backbone: 'resnet', batchSize: 3, seed: 7, ...extra };
}

async function collect(pipeline: BatchPipeline, epoch: number): Promise<Batch[]> {
  const batches: Batch[] = [];
  for await (const batch of pipeline.epoch(epoch)) batches.push(batch);
  return batches;
}

describe('BatchPipeline', () => {
  it('covers every train image once per epoch, in batches of the requested size', async () => {
    const pipeline = new BatchPipeline(options());
    const batches = await collect(pipeline, 0);
    expect(batches.map((b) => b.batchSize)).toEqual([3, 3, 1]);
    expect(pipeline.batchesPerEpoch).toBe(3);
    const ids = batches.flatMap((b) => b.imageIds);
    expect([...ids].sort()).toEqual(images.filter((i) => i.split === 'train').map((i) => i.id).sort());
    expect(new BatchPipeline(options({ dropLast: true })).batchesPerEpoch).toBe(2);
  });

  it('yields normalised, bilinearly resized pixels NHWC for each image', async () => {
    const [batch] = await collect(new BatchPipeline(options()), 0);
    expect(batch!.images!.length).toBe(3 * 8 * 8 * 3);
    for (let i = 0; i < batch!.batchSize; i++) {
      const source = images.find((image) => image.id === batch!.imageIds[i])!;
      const expected = normalizeForBackbone(resizeBilinear(await decodeImageFile(source.file), 8, 8), 'resnet');
      expect(Array.from(batch!.images!.subarray(i * 192, (i + 1) * 192))).toEqual(Array.from(expected));
    }
    expect(batch!.masks).toBeNull();
  });

  it('gives every image its captions as [B,5,T] rows, padding missing rows and choosing among extra ones', async () => {
    const batches = await collect(new BatchPipeline(options()), 0);
    const t = vocabulary.settings.maxCaptionWords + 2;
    for (const batch of batches) {
      expect(batch.captions.length).toBe(batch.batchSize * 5 * t);
      batch.imageIds.forEach((id, i) => {
        const source = images.find((image) => image.id === id)!;
        const rows = Array.from({ length: 5 }, (_, k) => batch.captions.subarray((i * 5 + k) * t, (i * 5 + k + 1) * t));
        expect(batch.captionCounts[i]).toBe(Math.min(5, source.captions.length));
        const decoded = rows.slice(0, batch.captionCounts[i]).map((row) => vocabulary.decode(row).join(' '));
        for (const text of decoded) expect(source.captions.map((c) => c.tokens.join(' '))).toContain(text);
        expect(new Set(decoded).size).toBe(decoded.length);
        for (const row of rows.slice(batch.captionCounts[i]!)) expect(row.every((id) => id === 0)).toBe(true);
        expect(rows[0]![0]).toBe(vocabulary.startId);
      });
    }
  });

  it('gives the multi-hot noun targets of each image', async () => {
    const [batch] = await collect(new BatchPipeline(options()), 0);
    const k = categories.size;
    expect(batch!.numClasses).toBe(k);
    batch!.imageIds.forEach((id, i) => {
      expect(Array.from(batch!.categories!.subarray(i * k, (i + 1) * k))).toEqual(Array.from(categories.multiHot(id)));
    });
  });

  it('is deterministic for a seed, reshuffles each epoch, and differs between seeds', async () => {
    const order = (batches: Batch[]) => batches.flatMap((b) => b.imageIds).join(',');
    const first = await collect(new BatchPipeline(options()), 0);
    const again = await collect(new BatchPipeline(options()), 0);
    expect(order(again)).toBe(order(first));
    expect(Array.from(again[0]!.captions)).toEqual(Array.from(first[0]!.captions));
    const pipeline = new BatchPipeline(options());
    expect(pipeline.order(1)).not.toEqual(pipeline.order(0));
    expect(new BatchPipeline(options({ seed: 8 })).order(0)).not.toEqual(pipeline.order(0));
    expect(new BatchPipeline(options({ shuffle: false })).order(3)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('decodes the next batches while the caller still holds the first (prefetch)', async () => {
    const decoded: string[] = [];
    const pipeline = new BatchPipeline(
      options({ batchSize: 1, prefetch: 2, decode: (file) => (decoded.push(file), decodeImageFile(file)) }),
    );
    const iterator = pipeline.epoch(0);
    const first = await iterator.next();
    expect(first.done).toBe(false);
    // The batch held by the caller plus two prefetched ones have been started, and no more.
    expect(decoded.length).toBe(3);
    await iterator.next();
    expect(decoded.length).toBe(4);
    await iterator.return(undefined);
  });

  it('treats masks exactly like images, augmentation included', async () => {
    const pipeline = new BatchPipeline(
      options({ masks: async (_image, decoded) => decoded, augment: { flips: true, rotations: true } }),
    );
    const batches = await collect(pipeline, 2);
    for (const batch of batches) expect(Array.from(batch.masks!)).toEqual(Array.from(batch.images!));
    const plain = await collect(new BatchPipeline(options()), 2);
    expect(Array.from(batches[0]!.images!)).not.toEqual(Array.from(plain[0]!.images!));
  });

  it('reports an image that went missing, naming it', async () => {
    const broken = { images: [...images.slice(0, 2), { ...images[2]!, file: path.join(tmp, 'gone.png') }] };
    const pipeline = new BatchPipeline(options({ dataset: broken, shuffle: false }));
    await expect(collect(pipeline, 0)).rejects.toThrow(/gone\.png: image file not found/);
  });

  it('refuses an empty split and bad settings with the option named', () => {
    expect(() => new BatchPipeline(options({ split: 'test' }))).toThrow(/\$\.split: split "test" has no images/);
    expect(() => new BatchPipeline(options({ batchSize: 0 }))).toThrow(/\$\.batchSize/);
    expect(() => new BatchPipeline(options({ backbone: 'vgg' as never }))).toThrow(/\$\.backbone/);
  });
});

describe('cached backbone features', () => {
  /** A stand-in backbone: the mean of each channel. */
  function channelMeans(pixels: Float32Array, count: number) {
    const per = pixels.length / count;
    return Array.from({ length: count }, (_, i) => {
      const data = new Float32Array(3);
      for (let p = 0; p < per; p++) data[p % 3]! += pixels[i * per + p]! / (per / 3);
      return { shape: [1, 3], data };
    });
  }

  it('computes features once, then serves them without decoding', async () => {
    const cache = new FeatureCache({ dir: path.join(tmp, 'features') });
    let computed = 0;
    const compute = (pixels: Float32Array, count: number) => {
      computed += count;
      return channelMeans(pixels, count);
    };
    const first = await collect(new BatchPipeline(options({ features: { cache, backboneId: 'means', compute } })), 0);
    expect(computed).toBe(7);
    expect(first[0]!.images).toBeNull();
    expect(first[0]!.featureShape).toEqual([1, 3]);
    const decodes: string[] = [];
    const second = await collect(
      new BatchPipeline(options({ features: { cache, backboneId: 'means', compute }, decode: (f) => (decodes.push(f), decodeImageFile(f)) })),
      0,
    );
    expect(computed).toBe(7);
    expect(decodes).toEqual([]);
    expect(Array.from(second[0]!.imageFeatures!)).toEqual(Array.from(first[0]!.imageFeatures!));
    // The features are those of the preprocessed image.
    const source = images.find((image) => image.id === first[0]!.imageIds[0])!;
    const pixels = normalizeForBackbone(resizeBilinear(await decodeImageFile(source.file), 8, 8), 'resnet');
    expect(first[0]!.imageFeatures![0]).toBeCloseTo(channelMeans(pixels, 1)[0]!.data[0]!, 5);
  });

  it('keeps mask features of different mask keys apart (masks v1 and v2 sharing one features folder)', async () => {
    const cache = new FeatureCache({ dir: path.join(tmp, 'features-masks') });
    let computed = 0;
    const compute = (pixels: Float32Array, count: number) => {
      computed += count;
      return channelMeans(pixels, count);
    };
    // Two mask views of the same images: the inverted image and a flat grey.
    const inverted = async (_image: unknown, decoded: RgbImage): Promise<RgbImage> => ({ ...decoded, data: decoded.data.map((v) => 255 - v) });
    const grey = async (_image: unknown, decoded: RgbImage): Promise<RgbImage> => ({ ...decoded, data: new Uint8Array(decoded.data.length).fill(128) });
    const run = (masks: typeof inverted, maskKey: string) =>
      collect(new BatchPipeline(options({ masks, features: { cache, backboneId: 'means', maskKey, compute } })), 0);
    const v1 = await run(inverted, 'v1@8');
    expect(computed).toBe(14); // images and masks
    const v2 = await run(grey, 'v2@8');
    expect(computed).toBe(21); // the image features are shared, the mask features are not
    expect(Array.from(v2[0]!.imageFeatures!)).toEqual(Array.from(v1[0]!.imageFeatures!));
    // A flat grey mask gives the same features for every image.
    expect(Array.from(v2[0]!.maskFeatures!.slice(3, 6))).toEqual(Array.from(v2[0]!.maskFeatures!.slice(0, 3)));
    expect(Array.from(v2[0]!.maskFeatures!)).not.toEqual(Array.from(v1[0]!.maskFeatures!));
    const again = await run(inverted, 'v1@8');
    expect(computed).toBe(21);
    expect(Array.from(again[0]!.maskFeatures!)).toEqual(Array.from(v1[0]!.maskFeatures!));
  });

  it('refuses augmentation with cached features', () => {
    const cache = new FeatureCache({ dir: path.join(tmp, 'features2') });
    expect(
      () => new BatchPipeline(options({ augment: { flips: true }, features: { cache, backboneId: 'x', compute: channelMeans } })),
    ).toThrow(/\$\.augment/);
  });
});

describe('batchToTensors', () => {
  it('builds tensors of the documented shapes and dtypes, and leaks none', async () => {
    const [batch] = await collect(new BatchPipeline(options({ masks: async (_i, d: RgbImage) => d })), 0);
    const before = tf.memory().numTensors;
    const tensors = batchToTensors(batch!);
    expect(tensors.images!.shape).toEqual([3, 8, 8, 3]);
    expect(tensors.masks!.shape).toEqual([3, 8, 8, 3]);
    expect(tensors.captions.shape).toEqual([3, 5, vocabulary.settings.maxCaptionWords + 2]);
    expect(tensors.captions.dtype).toBe('int32');
    expect(tensors.categories!.shape).toEqual([3, categories.size]);
    expect(tensors.captionCounts.dtype).toBe('int32');
    expect(Array.from(await tensors.captions.data())).toEqual(Array.from(batch!.captions));
    disposeBatchTensors(tensors);
    expect(tf.memory().numTensors).toBe(before);
  });
});
