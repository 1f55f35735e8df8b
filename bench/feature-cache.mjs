#!/usr/bin/env node
// The frozen backbone's feature extraction for training's feature cache: TensorFlow.js (wasm) against ONNX Runtime
// (`train --feature-runtime onnx`, `onnxFeatureExtractor`), per image, for the lite preset (MobileNetV1-0.75, 224 px)
// and the paper preset (ResNet50, 224 px, 14x14 grid) with the backbone frozen. Usage (after `npm run build`):
//   S2CPNET_THREADS=1 node bench/feature-cache.mjs [--images 16] [--reps 3] [--json]
// Random weights (speed does not depend on them); one warm-up, then the median of --reps timed batches of --images
// images, each side reading its features back to JavaScript (what the cache stores).
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../packages/cli/dist/index.js';
import { buildS2CPNet, presetConfig } from '../packages/model/dist/index.js';
import { onnxFeatureExtractor } from '../packages/runtime-onnx/dist/index.js';

const { values } = parseArgs({ options: { images: { type: 'string', default: '16' }, reps: { type: 'string', default: '3' }, json: { type: 'boolean', default: false } } });
const n = Number(values.images);
const reps = Number(values.reps);
const threads = Number(process.env.S2CPNET_THREADS) || 1;
const info = await initBackend({ backend: 'wasm', threads });

async function median(fn) {
  await fn();
  const times = [];
  for (let r = 0; r < reps; r++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
}

const results = [];
for (const preset of ['lite', 's2cpnet']) {
  const config = presetConfig(preset);
  config.encoder = { ...config.encoder, freeze: 'all' };
  const model = buildS2CPNet(config, { vocabSize: 300, numClasses: 50 });
  const s = model.inputSize;
  const pixels = tf.randomUniform([n, s, s, 3], -1, 1, 'float32', 1);
  const data = Float32Array.from(pixels.dataSync());
  const extractor = await onnxFeatureExtractor(model, { threads });
  try {
    const tfjsMs = await median(async () => {
      const features = model.backboneFeatures(pixels, { training: false });
      await features.data();
      features.dispose();
    });
    const onnxMs = await median(() => extractor.compute(data, n));
    results.push({ preset, backbone: config.encoder.type, inputSize: s, grid: model.gridSize, images: n, tfjsMsPerImage: tfjsMs / n, onnxMsPerImage: onnxMs / n, speedup: tfjsMs / onnxMs });
  } finally {
    await extractor.dispose();
    pixels.dispose();
    model.dispose();
  }
}
if (values.json) console.log(JSON.stringify({ backend: info.backend, threads, results }, null, 2));
else {
  console.log(`feature extraction for the cache, ${info.backend} vs onnxruntime-cpu, ${threads} thread(s), batches of ${n}`);
  for (const r of results) console.log(`${r.preset.padEnd(8)} ${r.backbone} ${r.inputSize}px grid ${r.grid}: tfjs ${r.tfjsMsPerImage.toFixed(1)} ms/image, ONNX Runtime ${r.onnxMsPerImage.toFixed(1)} ms/image, ${r.speedup.toFixed(2)}x`);
}
