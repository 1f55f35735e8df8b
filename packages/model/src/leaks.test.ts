import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '@s2cpnet/core/testing';
import { buildS2CPNet } from './s2cpnet';
import { Adam } from './optimizer';
import { trainStep, trainableVariables } from './train';
import { tinyConfig } from './testing/tiny';

beforeAll(async () => {
  await useBackend('wasm');
});

describe('no tensor leaks over long training', () => {
  it('numTensors stays flat over 1,000 optimiser steps with micro-batch accumulation, dropout and the category loss', async () => {
    const model = buildS2CPNet(tinyConfig('s2cpnet'), { vocabSize: 30, numClasses: 6 });
    const variables = trainableVariables(model);
    const optimizer = new Adam({ learningRate: 1e-3, clipNorm: 5 });
    const b = 2;
    const g = model.gridSize;
    const c = model.encoder.outputChannels;
    // Cached-feature inputs (the frozen-backbone path) keep 1,000 steps fast; the pixel path is covered elsewhere.
    const imageFeatures = tf.randomNormal([b, g, g, c], 0, 1, 'float32', 1) as tf.Tensor4D;
    const maskFeatures = tf.randomNormal([b, g, g, c], 0, 1, 'float32', 2) as tf.Tensor4D;
    const captions = new Int32Array(b * 5 * 6).map((_, i) => (i % 6 === 0 ? 1 : i % 6 === 5 ? 2 : 4 + (i % 26)));
    const categories = new Float32Array(b * 6).map((_, i) => i % 2);
    const step = (i: number) =>
      trainStep(model, variables, optimizer, {
        inputs: { imageFeatures, maskFeatures } as never,
        captions,
        captionShape: [b, 5, 6],
        categories,
        numClasses: 6,
        microBatchSize: 1,
        dropoutSeed: i,
      });
    const first = await step(0);
    const afterFirst = tf.memory().numTensors;
    let last = first;
    const counts: number[] = [];
    for (let i = 1; i < 1000; i++) {
      last = await step(i);
      if (i % 100 === 0) counts.push(tf.memory().numTensors);
    }
    expect(counts).toEqual(new Array(counts.length).fill(afterFirst));
    expect(tf.memory().numTensors).toBe(afterFirst);
    // The steps did real work: the loss on this fixed batch went down.
    expect(last.loss).toBeLessThan(first.loss * 0.5);
    tf.dispose([imageFeatures, maskFeatures]);
    optimizer.dispose();
    model.dispose();
  }, 180_000);
});
