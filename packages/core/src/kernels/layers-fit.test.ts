/**
 * tfjs-layers models train on every test backend: Conv2D + BatchNormalization + DepthwiseConv2D + Dense (the
 * fused-conv and fused-matMul gradient paths that need the S²CPNet kernels on wasm), and an Embedding model (gather's
 * gradient). Weights are seeded and batches are not shuffled, so both backends follow the same trajectory.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SeededRng } from '../rng';
import { testBackends, useBackend } from '../testing/index';

function imageModel(): tfl.LayersModel {
  const init = (seed: number) => tfl.initializers.glorotUniform({ seed });
  const model = tfl.sequential();
  model.add(tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 6, kernelSize: 3, strides: 2, padding: 'same', kernelInitializer: init(1) }));
  model.add(tfl.layers.batchNormalization());
  model.add(tfl.layers.activation({ activation: 'relu' }));
  model.add(tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', depthwiseInitializer: init(2) }));
  model.add(tfl.layers.flatten());
  model.add(tfl.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: init(3) }));
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
  return model;
}

/** Images whose class is the channel with the largest mean, so the task is learnable. */
function imageData(count: number): { x: tf.Tensor; y: tf.Tensor } {
  const rng = new SeededRng(7);
  const pixels = new Float32Array(count * 8 * 8 * 3);
  const labels: number[] = [];
  for (let n = 0; n < count; n++) {
    const label = n % 3;
    labels.push(label);
    for (let p = 0; p < 64; p++) {
      for (let c = 0; c < 3; c++) pixels[(n * 64 + p) * 3 + c] = rng.normal() + (c === label ? 0.8 : 0);
    }
  }
  return { x: tf.tensor4d(pixels, [count, 8, 8, 3]), y: tf.oneHot(tf.tensor1d(labels, 'int32'), 3) };
}

function embeddingModel(): tfl.LayersModel {
  const model = tfl.sequential();
  model.add(tfl.layers.embedding({ inputDim: 20, outputDim: 8, inputLength: 5, embeddingsInitializer: tfl.initializers.randomUniform({ seed: 4 }) }));
  model.add(tfl.layers.globalAveragePooling1d());
  model.add(tfl.layers.dense({ units: 2, activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({ seed: 5 }) }));
  model.compile({ optimizer: tf.train.adam(0.05), loss: 'categoricalCrossentropy' });
  return model;
}

/** Token sequences labelled by whether they contain more tokens below 10 than above. */
function tokenData(count: number): { x: tf.Tensor; y: tf.Tensor } {
  const rng = new SeededRng(11);
  const ids: number[] = [];
  const labels: number[] = [];
  for (let n = 0; n < count; n++) {
    let low = 0;
    for (let t = 0; t < 5; t++) {
      const id = rng.int(20);
      ids.push(id);
      if (id < 10) low++;
    }
    labels.push(low >= 3 ? 1 : 0);
  }
  return { x: tf.tensor2d(ids, [count, 5], 'float32'), y: tf.oneHot(tf.tensor1d(labels, 'int32'), 2) };
}

async function trainLosses(model: tfl.LayersModel, data: { x: tf.Tensor; y: tf.Tensor }, epochs: number): Promise<number[]> {
  const history = await model.fit(data.x, data.y, { epochs, batchSize: 8, shuffle: false, verbose: 0 });
  return history.history['loss']!.map(Number);
}

const histories = new Map<string, number[]>();
const backends = testBackends();

for (const backend of backends) {
  describe(`tfjs-layers training on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });
    afterAll(() => tf.disposeVariables());

    it('Conv2D + BatchNormalization + DepthwiseConv2D + Dense fits with decreasing loss', async () => {
      const model = imageModel();
      const data = imageData(24);
      const losses = await trainLosses(model, data, 6);
      histories.set(`image/${backend}`, losses);
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(losses[losses.length - 1]!).toBeLessThan(0.8 * losses[0]!);
      model.dispose();
      tf.dispose([data.x, data.y]);
    });

    it('Embedding + Dense fits with decreasing loss', async () => {
      const model = embeddingModel();
      const data = tokenData(32);
      const losses = await trainLosses(model, data, 8);
      histories.set(`embedding/${backend}`, losses);
      expect(losses[losses.length - 1]!).toBeLessThan(0.9 * losses[0]!);
      model.dispose();
      tf.dispose([data.x, data.y]);
    });
  });
}

describe.runIf(backends.includes('cpu') && backends.includes('wasm'))('training trajectories', () => {
  it('are the same on wasm and cpu', () => {
    for (const name of ['image', 'embedding']) {
      const cpu = histories.get(`${name}/cpu`)!;
      const wasm = histories.get(`${name}/wasm`)!;
      expect(wasm.length).toBe(cpu.length);
      wasm.forEach((loss, i) => expect(Math.abs(loss - cpu[i]!)).toBeLessThan(1e-3 * Math.max(1, cpu[i]!)));
    }
  });
});
