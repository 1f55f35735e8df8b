/**
 * Forward-pass timing of the encoders at batch 1 on the wasm backend (median of N runs after a warm-up, wall time
 * including reading the result back). Prints the load average too: the numbers mean little on a busy machine.
 *
 *   cd packages/encoder && npx tsx --conditions=@s2cpnet/source scripts/bench.ts [runs]
 */
import { loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { registerS2CPNetKernels } from '@s2cpnet/core';
import { createEncoder, type EncoderConfig } from '../src/index';

tf.env().set('PROD', true);
await tf.setBackend('wasm');
registerS2CPNetKernels({ backends: ['wasm'] });
const runs = Number(process.argv[2] ?? 7);

const cases: [string, EncoderConfig][] = [
  ['ResNet50 224, grid 14, frozen', { type: 'resnet50', grid: 14, freeze: 'all' }],
  ['ResNet50 224, grid 7, frozen', { type: 'resnet50', grid: 'native', freeze: 'all' }],
  ['ResNet50 224, grid 14, trainable, inference call (cached fold)', { type: 'resnet50', grid: 14 }],
  ['MobileNetV1 0.75 224, grid 7, frozen', { type: 'mobilenet-v1', width: 0.75, grid: 'native', freeze: 'all' }],
  ['MobileNetV1 1.0 224, grid 7, frozen', { type: 'mobilenet-v1', width: 1.0, grid: 'native', freeze: 'all' }],
];
console.log(`wasm, batch 1, ${runs} runs; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
for (const [name, config] of cases) {
  const encoder = createEncoder(config);
  const x = tf.randomNormal([1, 224, 224, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
  const times: number[] = [];
  for (let r = 0; r <= runs; r++) {
    const start = performance.now();
    const y = encoder.encode(x);
    await y.data();
    y.dispose();
    if (r > 0) times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  const gflops = (2 * encoder.multiplyAdds()) / 1e9 / (median / 1000);
  console.log(`${name}: median ${median.toFixed(0)} ms (min ${times[0]!.toFixed(0)}, max ${times.at(-1)!.toFixed(0)}), ${gflops.toFixed(1)} GFLOP/s`);
  x.dispose();
  encoder.dispose();
}
console.log(`load average after: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
