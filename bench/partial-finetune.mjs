#!/usr/bin/env node
// What partial fine-tuning of the backbone costs per training step (issue #16 item 3): the UCM MobileNet S²CPNet
// (configs/ucm/mobilenet-s2cpnet.json: MobileNetV1-0.75, 224 px, batch 16 images x 5 captions) trained
//   frozen-cached  backbone frozen, its features from the cache (what `train` does by default),
//   from-13, ...   encoder.trainableFrom N: blocks N..13 train on cached features of the frozen part (the output
//                  of block N-1, what `train` caches then), the stem and earlier blocks stay frozen.
// Also the one-off cost of filling the cache, per image: the whole frozen backbone vs its frozen part.
// (Training a partly trainable backbone on pixels, `--no-feature-cache`, keeps every activation of the frozen part
// on the gradient tape: at this batch it ran out of the 4 GiB wasm heap.)
// Usage (after `npm run build`):
//   S2CPNET_THREADS=1 node bench/partial-finetune.mjs [--reps 3] [--from 13,12,10] [--json]
// Random weights and inputs (speed does not depend on them). The arms run interleaved, one step of each per round
// after a warm-up round, so machine load hits them alike; the report is the median per arm and its ratio to
// frozen-cached. Quote the ratios, not the milliseconds.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../packages/cli/dist/index.js';
import { Adam, buildS2CPNet, trainableVariables, trainStep } from '../packages/model/dist/index.js';

const { values } = parseArgs({
  options: { reps: { type: 'string', default: '3' }, from: { type: 'string', default: '13,12,10' }, json: { type: 'boolean', default: false } },
});
const reps = Number(values.reps);
const froms = values.from.split(',').map(Number);
const threads = Number(process.env.S2CPNET_THREADS) || 1;
const info = await initBackend({ backend: process.env.S2CPNET_BACKEND ?? 'wasm', threads });
const base = JSON.parse(readFileSync(new URL('../configs/ucm/mobilenet-s2cpnet.json', import.meta.url), 'utf8'));
const VOCAB = 274;
const CLASSES = 91;
const B = 16;
const T = 16;

const captions = new Int32Array(B * 5 * T);
for (let i = 0; i < captions.length; i++) captions[i] = i % T === 0 ? 1 : i % T === T - 1 ? 2 : 4 + ((i * 7919) % (VOCAB - 4));
const categories = new Float32Array(B * CLASSES);
for (let i = 0; i < B; i++) categories[i * CLASSES + ((i * 13) % CLASSES)] = 1;

function arm(name, encoder) {
  const model = buildS2CPNet({ ...base, encoder: { ...base.encoder, ...encoder } }, { vocabSize: VOCAB, numClasses: CLASSES });
  const variables = trainableVariables(model);
  const optimizer = new Adam({ learningRate: 1e-5, clipNorm: 5 });
  // The cached features: what the frozen part gives for two batches of random pixels (timed per image).
  const views = [tf.randomUniform([B, 224, 224, 3], -1, 1, 'float32', 5), tf.randomUniform([B, 224, 224, 3], -1, 1, 'float32', 6)];
  const start = performance.now();
  const [imageFeatures, maskFeatures] = views.map((v) => model.encoder.frozenFeatures(v));
  imageFeatures.dataSync();
  maskFeatures.dataSync();
  const cacheMsPerImage = (performance.now() - start) / (2 * B);
  tf.dispose(views);
  const inputs = { imageFeatures, maskFeatures };
  const encoderParams = variables.filter((v) => v.path.startsWith('encoder/')).reduce((n, v) => n + v.variable.size, 0);
  let step = 0;
  return {
    name,
    encoderParams,
    cacheMsPerImage,
    featureShape: imageFeatures.shape.slice(1),
    times: [],
    async run() {
      const start = performance.now();
      await trainStep(model, variables, optimizer, {
        inputs,
        captions,
        captionShape: [B, 5, T],
        categories,
        numClasses: CLASSES,
        microBatchSize: B,
        dropoutSeed: ++step,
      });
      return performance.now() - start;
    },
    dispose() {
      tf.dispose(Object.values(inputs));
      optimizer.dispose();
      model.dispose();
    },
  };
}

const arms = [arm('frozen-cached', { freeze: 'all' })];
for (const from of froms) arms.push(arm(`from-${from}`, { freeze: 'none', trainableFrom: from }));
for (let round = 0; round <= reps; round++) {
  for (const a of arms) {
    const ms = await a.run();
    if (round > 0) a.times.push(ms);
    process.stderr.write(`round ${round} ${a.name} ${ms.toFixed(0)} ms\n`);
  }
}
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const reference = median(arms[0].times);
const results = arms.map((a) => ({
  arm: a.name,
  trainableEncoderParameters: a.encoderParams,
  cachedFeatureShape: a.featureShape,
  cacheFillMsPerImage: Math.round(a.cacheMsPerImage),
  medianMs: Math.round(median(a.times)),
  timesMs: a.times.map(Math.round),
  ratioToFrozenCached: Number((median(a.times) / reference).toFixed(2)),
}));
arms.forEach((a) => a.dispose());
const report = { backend: info.backend, threads, batch: `${B} images x 5 captions`, reps, results };
if (values.json) console.log(JSON.stringify(report, null, 2));
else {
  console.log(`partial fine-tuning step cost, ${info.backend} ${threads} thread(s), batch ${report.batch}, median of ${reps}`);
  for (const r of results) {
    console.log(
      `  ${r.arm.padEnd(14)} step ${String(r.medianMs).padStart(7)} ms  x${r.ratioToFrozenCached}  (${r.trainableEncoderParameters} trainable backbone weights; ` +
        `cache [${r.cachedFeatureShape}] per view, filled at ${r.cacheFillMsPerImage} ms per image)`,
    );
  }
}
