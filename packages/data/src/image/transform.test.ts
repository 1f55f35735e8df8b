import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { SeededRng } from '@s2cpnet/core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RgbImage } from '../masks/types';
import { augmentImage, IMAGENET_MEAN, IMAGENET_STD, normalizeForBackbone, resizeBilinear } from './transform';

function randomImage(width: number, height: number, seed: number): RgbImage {
  const rng = new SeededRng(seed);
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = rng.int(256);
  return { width, height, data };
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('resizeBilinear', () => {
  it.each([
    [256, 253, 224, 224],
    [17, 9, 40, 31],
    [500, 500, 224, 224],
    [5, 5, 1, 1],
  ])('matches tf.image.resizeBilinear with half-pixel centres (%i x %i -> %i x %i)', (w, h, outW, outH) => {
    const image = randomImage(w, h, w * 1000 + h);
    const ours = resizeBilinear(image, outW, outH);
    const reference = tf.tidy(() =>
      tf.round(tf.image.resizeBilinear(tf.tensor3d(Float32Array.from(image.data), [h, w, 3]), [outH, outW], false, true)).dataSync(),
    );
    expect([ours.width, ours.height]).toEqual([outW, outH]);
    let maxDiff = 0;
    for (let i = 0; i < reference.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ours.data[i]! - reference[i]!));
    // Rounding of values that land on .5 may differ by one.
    expect(maxDiff).toBeLessThanOrEqual(1);
  });

  it('keeps a constant image constant and returns the same image when the size matches', () => {
    const flat: RgbImage = { width: 7, height: 5, data: new Uint8Array(7 * 5 * 3).fill(123) };
    expect(resizeBilinear(flat, 13, 11).data.every((v) => v === 123)).toBe(true);
    expect(resizeBilinear(flat, 7, 5)).toBe(flat);
  });

  it('rejects a bad output size or a malformed image', () => {
    const image = randomImage(4, 4, 1);
    expect(() => resizeBilinear(image, 0, 3)).toThrow(/positive integer output size, found 0x3/);
    expect(() => resizeBilinear({ width: 4, height: 4, data: new Uint8Array(10) }, 2, 2)).toThrow(/resizeBilinear/);
  });
});

describe('normalizeForBackbone', () => {
  const image: RgbImage = { width: 2, height: 1, data: Uint8Array.from([0, 128, 255, 255, 0, 64]) };

  it('applies ImageNet mean/std on 0-1 RGB for resnet', () => {
    const out = normalizeForBackbone(image, 'resnet');
    const expected = Array.from(image.data, (v, i) => (v / 255 - IMAGENET_MEAN[i % 3]!) / IMAGENET_STD[i % 3]!);
    expected.forEach((value, i) => expect(out[i]).toBeCloseTo(value, 5));
  });

  it('maps 0..255 to -1..1 for mobilenet', () => {
    const out = normalizeForBackbone(image, 'mobilenet');
    expect(out[0]).toBeCloseTo(-1, 6);
    expect(out[2]).toBeCloseTo(1, 6);
    expect(out[1]).toBeCloseTo(128 / 127.5 - 1, 6);
  });

  it('writes into a batch buffer at an offset and checks the fit', () => {
    const batch = new Float32Array(20).fill(7);
    normalizeForBackbone(image, 'mobilenet', batch, 6);
    expect(batch[5]).toBe(7);
    expect(batch[6]).toBeCloseTo(-1, 6);
    expect(batch[12]).toBe(7);
    expect(() => normalizeForBackbone(image, 'mobilenet', batch, 15)).toThrow(/do not fit/);
    expect(() => normalizeForBackbone(image, 'vgg' as never)).toThrow(/unknown backbone "vgg"/);
  });
});

describe('augmentImage', () => {
  const image = randomImage(6, 4, 3);
  const pixel = (img: RgbImage, x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));

  it('rotates a quarter turn counter-clockwise: the top-right corner becomes the top-left', () => {
    const turned = augmentImage(image, { flip: false, quarterTurns: 1 });
    expect([turned.width, turned.height]).toEqual([4, 6]);
    expect(pixel(turned, 0, 0)).toEqual(pixel(image, 5, 0));
    expect(pixel(turned, 3, 5)).toEqual(pixel(image, 0, 3));
  });

  it('flips left-right, and four quarter turns or two flips give the image back', () => {
    const flipped = augmentImage(image, { flip: true, quarterTurns: 0 });
    expect(pixel(flipped, 0, 2)).toEqual(pixel(image, 5, 2));
    const twice = augmentImage(flipped, { flip: true, quarterTurns: 0 });
    expect(Buffer.from(twice.data).equals(Buffer.from(image.data))).toBe(true);
    let turned = image;
    for (let i = 0; i < 4; i++) turned = augmentImage(turned, { flip: false, quarterTurns: 1 });
    expect(Buffer.from(turned.data).equals(Buffer.from(image.data))).toBe(true);
    const half = augmentImage(image, { flip: false, quarterTurns: 2 });
    expect(pixel(half, 0, 0)).toEqual(pixel(image, 5, 3));
  });
});
