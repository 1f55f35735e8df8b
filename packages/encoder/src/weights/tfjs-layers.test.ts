import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '@s2cpnet/core';
import { expectClose, testBackends, useBackend } from '@s2cpnet/core/testing';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MobileNetV1 } from '../mobilenet-v1';
import { sharedPath } from '../testing/helpers';
import { loadTfjsLayersWeights } from './load';
import { readTfjsLayersWeights } from './tfjs-layers';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 's2cpnet-tfjs-layers-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('readTfjsLayersWeights', () => {
  it('reads groups split over shards, float32, uint8/uint16 quantization and float16, keyed layer/weight', async () => {
    const f32 = Float32Array.from([0.5, -1.5, 2.25, 3, -4, 5.5]);
    const u8 = Uint8Array.from([0, 10, 255]);
    const u16 = new Uint16Array([0, 1000, 65535]);
    const f16 = new Uint16Array([0x3c00, 0xc000]);
    const group1 = Buffer.concat([Buffer.from(f32.buffer), Buffer.from(u8)]);
    await writeFile(join(dir, 'g1-shard1of2'), group1.subarray(0, 10)); // split mid-tensor on purpose
    await writeFile(join(dir, 'g1-shard2of2'), group1.subarray(10));
    await writeFile(join(dir, 'g2'), Buffer.concat([Buffer.from(u16.buffer), Buffer.from(f16.buffer)]));
    const model = {
      modelTopology: {},
      weightsManifest: [
        {
          paths: ['g1-shard1of2', 'g1-shard2of2'],
          weights: [
            { name: 'model/dense/kernel', shape: [2, 3], dtype: 'float32' },
            { name: 'dense/bias:0', shape: [3], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.5, min: -1 } },
          ],
        },
        {
          paths: ['g2'],
          weights: [
            { name: 'q16/w', shape: [3], dtype: 'float32', quantization: { dtype: 'uint16', scale: 0.001, min: 2 } },
            { name: 'half/w', shape: [2], dtype: 'float32', quantization: { dtype: 'float16' } },
          ],
        },
      ],
    };
    await writeFile(join(dir, 'model.json'), JSON.stringify(model));
    const store = await readTfjsLayersWeights(dir);
    expect([...store.keys()]).toEqual(['dense/kernel', 'dense/bias', 'q16/w', 'half/w']);
    expectClose(store.get('dense/kernel')!.read(), f32, 0);
    expectClose(store.get('dense/bias')!.read(), [-1, 4, 126.5], 1e-6);
    expectClose(store.get('q16/w')!.read(), [2, 3, 67.535], 1e-4);
    expectClose(store.get('half/w')!.read(), [1, -2], 0);

    // A shard shorter than its manifest, and a missing shard, are reported with the JSON path.
    await writeFile(join(dir, 'g2'), Buffer.from(u16.buffer));
    await expect(readTfjsLayersWeights(dir)).rejects.toThrow(/weightsManifest\[1\]\.weights\[1\].*run past the end of the shards/);
    await rm(join(dir, 'g1-shard2of2'));
    await expect(readTfjsLayersWeights(dir)).rejects.toThrow(InputError);
    await expect(readTfjsLayersWeights(dir)).rejects.toThrow(/weightsManifest\[0\]\.paths\[1\]: weight shard 'g1-shard2of2' cannot be read/);
    await expect(readTfjsLayersWeights(join(dir, 'nowhere'))).rejects.toThrow(/model\.json: cannot read a TF\.js layers model/);
  });
});

const MOBILENET_DIR = sharedPath('weights/mobilenet_v1_0.75_224/model.json') ? sharedPath('weights/mobilenet_v1_0.75_224')! : '';
const UCM = sharedPath('data/ucm/classes.csv') ? sharedPath('data/ucm')! : '';
const available = MOBILENET_DIR !== '' && UCM !== '';

/** ImageNet classes that count as "an aircraft" for a top-down airplane picture. */
const AIRCRAFT = new Map([
  [404, 'airliner'],
  [895, 'warplane'],
  [908, 'wing'],
]);

for (const backend of testBackends()) {
  describe.skipIf(!available)(`pretrained MobileNet v1 0.75 (TF.js layers directory) on ${backend}`, () => {
    beforeAll(() => useBackend(backend));

    it('classifies a UC Merced airplane image as an aircraft (top-1)', async () => {
      const labels = (JSON.parse(readFileSync(join(MOBILENET_DIR, 'metadata.json'), 'utf8')) as { labels: string[] }).labels;
      // 1000 labels and a 1000-way conv_preds head: no background class at index 0, so indices are ImageNet's.
      expect(labels).toHaveLength(1000);
      expect(labels[404]).toBe('airliner');
      const encoder = new MobileNetV1({ width: 0.75, classifierClasses: 1000, grid: 'native', freeze: 'all' });
      const report = await loadTfjsLayersWeights(encoder, MOBILENET_DIR);
      expect(report).toMatchObject({ scheme: 'Keras MobileNetV1', assignedVariables: 27 * 5 + 2, classifierLoaded: true, unusedKeys: [] });

      // The first airplane image of the class list (dataset.json/classes.csv name images N.jpg).
      const row = readFileSync(join(UCM, 'classes.csv'), 'utf8').split('\n').find((line) => line.split(',')[1] === 'airplane')!;
      const file = join(UCM, 'images', row.split(',')[0]!);
      const { data } = await sharp(file).resize(224, 224, { fit: 'fill' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const pixels = tf.tensor4d(new Float32Array(data), [1, 224, 224, 3]);
      const images = encoder.normalizePixels(pixels);
      encoder.classify(images).dispose(); // warm-up (builds the folded-weight cache)
      const start = performance.now();
      const logits = encoder.classify(images);
      const probabilities = tf.softmax(logits);
      const top = tf.topk(probabilities, 3);
      const [indices, values] = [Array.from(top.indices.dataSync()), Array.from(top.values.dataSync())];
      const ms = performance.now() - start;
      console.log(`[${backend}] ${row.split(',')[0]}: ${indices.map((k, i) => `${k} ${labels[k]} ${values[i]!.toFixed(3)}`).join(' | ')} (${ms.toFixed(0)} ms)`);
      expect(AIRCRAFT.has(indices[0]!), `top-1 ${indices[0]} ${labels[indices[0]!]}`).toBe(true);
      // The features for captioning come from the same weights: 7x7x768 at 224.
      const features = encoder.encode(images);
      expect(features.shape).toEqual([1, 7, 7, 768]);
      tf.dispose([pixels, images, logits, probabilities, top.indices, top.values, features]);
      encoder.dispose();
    });
  });
}
