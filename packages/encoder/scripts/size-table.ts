/**
 * Prints the encoder size table (markdown) of packages/encoder/README.md from the layers' own `countParams()` and
 * `multiplyAdds()`. Weights are only constructed (no forward pass), on the cpu backend.
 *
 *   cd packages/encoder && npx tsx --conditions=@s2cpnet/source scripts/size-table.ts
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { createEncoder, type BackboneEncoder, type EncoderConfig } from '../src/index';

tf.env().set('PROD', true);
await tf.setBackend('cpu');

const rows: [string, EncoderConfig][] = [
  ['ResNet50, stride on 3x3 (torchvision, "v1.5")', { type: 'resnet50', strideOn: '3x3', inputSize: 224, grid: 14 }],
  ['ResNet50, stride on 1x1 (Keras, original)', { type: 'resnet50', strideOn: '1x1', inputSize: 224, grid: 14 }],
  ['ResNet50, stride on 3x3, 448 input', { type: 'resnet50', strideOn: '3x3', inputSize: 448, grid: 14 }],
  ['MobileNetV1 1.0', { type: 'mobilenet-v1', width: 1.0, inputSize: 224, grid: 14 }],
  ['MobileNetV1 0.75', { type: 'mobilenet-v1', width: 0.75, inputSize: 224, grid: 14 }],
];

const paramsOf = (weights: readonly { shape: readonly (number | null)[] }[]) =>
  weights.reduce((n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
const millions = (n: number) => (n / 1e6).toFixed(3);

console.log('| encoder | input | grid (native -> G) | channels C | parameters (M, incl. BN moving stats) | trainable (M) | multiply-adds per view (G) | forward GFLOP per view | per sample, 2 views (GFLOP) |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const [name, config] of rows) {
  const encoder: BackboneEncoder = createEncoder(config);
  const macs = encoder.multiplyAdds();
  const native = encoder.gridPlan.nativeSize;
  console.log(
    `| ${name} | ${encoder.inputSize} | ${native}x${native} -> ${encoder.gridSize}x${encoder.gridSize} | ${encoder.outputChannels} | ` +
      `${millions(encoder.countParams())} | ${millions(paramsOf(encoder.trainableWeights))} | ${(macs / 1e9).toFixed(3)} | ` +
      `${((2 * macs) / 1e9).toFixed(2)} | ${((4 * macs) / 1e9).toFixed(2)} |`,
  );
  encoder.dispose();
}
console.log('\n1 multiply-add = 2 FLOP; convolutions only (batch norm is folded into them at inference; ReLU, pooling and the');
console.log('nearest-neighbour grid upsampling are not counted). Both views (image and mask) run through the same weights.');
