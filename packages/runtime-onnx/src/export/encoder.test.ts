import * as tf from '@tensorflow/tfjs-core';
import { SeededRng, type S2Layer } from '@s2cpnet/core';
import { randomTensor, useBackend } from '@s2cpnet/core/testing';
import { MobileNetV1, ResNet50, type BackboneEncoder, type MobileNetV1Args, type ResNet50Args } from '@s2cpnet/encoder';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxGraph } from '../graph';
import { maxAbsDiff, runGraph } from '../ort.test-util';
import { builtinEncoderExporters, convPads, exportMobileNetV1, exportResNet50 } from './encoder';

/**
 * Seeded weights of a realistic kind: kernels ~ N(0, 2 / fan-in), gamma and moving variance in [0.5, 1.5], beta
 * ~ N(0, 0.1^2), moving mean ~ N(0, 0.2^2). Non-trivial batch-norm statistics, so the folding is really tested.
 * The last batch norm of each residual branch (`conv3`) gets gamma in [0.1, 0.3], as trained ResNets have, so the
 * features do not grow block after block in the full-depth ResNet50. With `batchNormOnly` the (already seeded
 * He-normal) kernels are kept, which saves seconds of random numbers on the full-size networks.
 */
function randomizeBackbone(layer: S2Layer, seed: number, batchNormOnly = false): void {
  const rng = new SeededRng(seed);
  for (const { path, variable } of layer.namedWeights()) {
    const shape = variable.shape as number[];
    const size = shape.reduce((a, b) => a * b, 1);
    const leaf = path.split('/').pop()!;
    if (batchNormOnly && !['gamma', 'beta', 'moving_mean', 'moving_variance'].includes(leaf)) continue;
    // A depthwise kernel [kh, kw, C, 1] sees kh*kw inputs per output.
    const fanIn = shape.length === 4 ? shape[0]! * shape[1]! * (shape[3] === 1 ? 1 : shape[2]!) : shape[0]!;
    const values = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      if (leaf === 'gamma' && path.includes('conv3/')) values[i] = rng.uniform(0.1, 0.3);
      else if (leaf === 'gamma' || leaf === 'moving_variance') values[i] = rng.uniform(0.5, 1.5);
      else if (leaf === 'beta') values[i] = 0.1 * rng.normal();
      else if (leaf === 'moving_mean') values[i] = 0.2 * rng.normal();
      else values[i] = rng.normal() * Math.sqrt(2 / Math.max(fanIn, 1));
    }
    const t = tf.tensor(values, shape);
    variable.write(t);
    t.dispose();
  }
}

/** The graph of one exported encoder: pixels [batch,S,S,3] -> features [batch,G,G,C]. */
function encoderGraph(encoder: BackboneEncoder): OnnxGraph {
  const g = new OnnxGraph(encoder.getClassName());
  const s = encoder.inputSize;
  const pixels = g.input('pixels', 'float32', ['batch', s, s, 3]);
  const features = g.scope('encoder', () => builtinEncoderExporters[encoder.getClassName()]!(g, encoder, pixels));
  g.output(features, 'features', 'float32', ['batch', encoder.gridSize, encoder.gridSize, encoder.outputChannels]);
  return g;
}

interface Comparison {
  maxAbs: number;
  /** Largest |tfjs feature|, the scale the tolerance is relative to. */
  scale: number;
}

/** Runs tfjs `encode` (inference) and the ONNX graph on the same pixels and compares them. */
async function compare(encoder: BackboneEncoder, g: OnnxGraph, batch: number, seed: number): Promise<Comparison> {
  const s = encoder.inputSize;
  const pixels = randomTensor([batch, s, s, 3], seed) as tf.Tensor4D;
  const expected = encoder.encode(pixels, { training: false });
  const out = await runGraph(g, { pixels });
  const features = out['features']!;
  expect(features.shape).toEqual(expected.shape);
  const reference = expected.dataSync() as Float32Array;
  const result = { maxAbs: maxAbsDiff(features.data, reference), scale: reference.reduce((m, v) => Math.max(m, Math.abs(v)), 0) };
  tf.dispose([pixels, expected]);
  return result;
}

/** The test's tolerance: 1e-4 absolute, or 1e-4 relative to the largest feature when features exceed 1. */
function expectWithinTolerance(name: string, { maxAbs, scale }: Comparison): void {
  console.log(`${name}: max abs diff ${maxAbs.toExponential(2)} (largest |feature| ${scale.toFixed(2)})`);
  expect(maxAbs).toBeLessThanOrEqual(1e-4 * Math.max(1, scale));
}

const SMALL_RESNETS: Record<string, ResNet50Args> = {
  "strideOn 3x3, grid 4 (nearest 2x upsampling), 64 px": { baseWidth: 4, blocksPerStage: [2, 1, 1, 1], inputSize: 64, grid: 4, seed: 1 },
  "strideOn 1x1 (Keras), native grid, 96 px": { strideOn: '1x1', baseWidth: 4, blocksPerStage: [1, 2, 1, 1], inputSize: 96, grid: 'native', seed: 2 },
  'grid 1 (average pooling), 64 px': { baseWidth: 4, blocksPerStage: [1, 1, 1, 1], inputSize: 64, grid: 1, seed: 3 },
};

const SMALL_MOBILENETS: Record<string, MobileNetV1Args> = {
  'width 0.25, grid 4 (nearest 2x upsampling), 64 px': { width: 0.25, inputSize: 64, grid: 4, seed: 1 },
  'width 0.5, native grid, 96 px': { width: 0.5, inputSize: 96, grid: 'native', seed: 2 },
  'width 0.25, grid 1 (average pooling), 64 px': { width: 0.25, inputSize: 64, grid: 1, seed: 3 },
};

describe('ONNX export of the encoder backbones (cpu backend vs onnxruntime-node)', () => {
  beforeAll(() => useBackend('cpu'));

  it('is keyed by the tfjs class names', () => {
    expect(Object.keys(builtinEncoderExporters).sort()).toEqual([MobileNetV1.className, ResNet50.className].sort());
    expect(builtinEncoderExporters[ResNet50.className]).toBe(exportResNet50);
    expect(builtinEncoderExporters[MobileNetV1.className]).toBe(exportMobileNetV1);
  });

  it("writes TF 'same' padding as explicit pads, the odd pixel at the bottom/right", () => {
    expect(convPads('t', 8, 3, 2, 'same')).toEqual({ pads: [0, 0, 1, 1], outputSize: 4 });
    expect(convPads('t', 7, 3, 2, 'same')).toEqual({ pads: [1, 1, 1, 1], outputSize: 4 });
    expect(convPads('t', 8, 3, 1, 'same')).toEqual({ pads: [1, 1, 1, 1], outputSize: 8 });
    expect(convPads('t', 8, 1, 2, 'same')).toEqual({ pads: [0, 0, 0, 0], outputSize: 4 });
    expect(convPads('t', 224, 7, 2, 3)).toEqual({ pads: [3, 3, 3, 3], outputSize: 112 });
  });

  for (const [name, args] of Object.entries(SMALL_RESNETS)) {
    it(`small ResNet50, ${name}: batch 2 matches tfjs`, async () => {
      const encoder = new ResNet50(args);
      randomizeBackbone(encoder, 10);
      expectWithinTolerance(`ResNet50 ${name}`, await compare(encoder, encoderGraph(encoder), 2, 11));
      encoder.dispose();
    });
  }

  for (const [name, args] of Object.entries(SMALL_MOBILENETS)) {
    it(`small MobileNetV1, ${name}: batch 2 matches tfjs`, async () => {
      const encoder = new MobileNetV1(args);
      randomizeBackbone(encoder, 20);
      expectWithinTolerance(`MobileNetV1 ${name}`, await compare(encoder, encoderGraph(encoder), 2, 21));
      encoder.dispose();
    });
  }

  describe('one exported graph runs batch 1 and batch 3 (dynamic batch)', () => {
    const encoders: BackboneEncoder[] = [];
    afterAll(() => encoders.forEach((e) => e.dispose()));
    const cases: [string, () => BackboneEncoder][] = [
      ['ResNet50', () => new ResNet50({ baseWidth: 4, blocksPerStage: [1, 1, 1, 1], inputSize: 64, grid: 4, seed: 4 })],
      ['MobileNetV1', () => new MobileNetV1({ width: 0.25, inputSize: 64, grid: 4, seed: 4 })],
    ];
    for (const [name, make] of cases) {
      it(name, async () => {
        const encoder = make();
        encoders.push(encoder);
        randomizeBackbone(encoder, 30);
        const g = encoderGraph(encoder);
        for (const batch of [1, 3]) expectWithinTolerance(`${name} dynamic batch ${batch}`, await compare(encoder, g, batch, 31 + batch));
      });
    }
  });

  it('stores the weights once when one encoder is exported twice into a graph (both views)', () => {
    const encoder = new MobileNetV1({ width: 0.25, inputSize: 64, grid: 'native', seed: 5 });
    const g = new OnnxGraph('two-views');
    const images = g.input('images', 'float32', ['batch', 64, 64, 3]);
    const masks = g.input('masks', 'float32', ['batch', 64, 64, 3]);
    exportMobileNetV1(g, encoder, images);
    const bytes = g.initializerBytes;
    exportMobileNetV1(g, encoder, masks);
    expect(g.initializerBytes).toBe(bytes);
    encoder.dispose();
  });

  it('pads the max pool with zeros as tfjs does when the stem can go negative (a linear stem)', async () => {
    const encoder = new ResNet50({ baseWidth: 4, blocksPerStage: [1, 1, 1, 1], inputSize: 64, grid: 'native', seed: 9 });
    randomizeBackbone(encoder, 60);
    (encoder.stem as unknown as { activation: string }).activation = 'linear';
    expectWithinTolerance('ResNet50 with a linear stem', await compare(encoder, encoderGraph(encoder), 2, 61));
    encoder.dispose();
  });

  it('throws an error naming the option it cannot export', () => {
    const encoder = new ResNet50({ baseWidth: 2, blocksPerStage: [1, 1, 1, 1], inputSize: 64, grid: 'native', seed: 6 });
    const stem = encoder.stem as unknown as { activation: string; padding: unknown };
    const export_ = () => exportResNet50(new OnnxGraph('bad'), encoder, 'pixels');
    stem.activation = 'swish';
    expect(export_).toThrow(/activation "swish" is not supported/);
    stem.activation = 'relu';
    stem.padding = 'valid';
    expect(export_).toThrow(/padding "valid" is not supported/);
    stem.padding = 3;
    expect(export_).not.toThrow();
    encoder.dispose();
  });

  // Full-size networks, batch 1 at 224 px (about 15 s and 2 s, nearly all of it tfjs on the cpu backend).
  it('full-size ResNet50 at 224 px matches tfjs', async () => {
    const encoder = new ResNet50({ inputSize: 224, grid: 14, seed: 7 });
    randomizeBackbone(encoder, 40, true);
    expectWithinTolerance('full ResNet50 224', await compare(encoder, encoderGraph(encoder), 1, 41));
    encoder.dispose();
  });

  it('full-size MobileNetV1-0.75 at 224 px matches tfjs', async () => {
    const encoder = new MobileNetV1({ width: 0.75, inputSize: 224, grid: 14, seed: 8 });
    randomizeBackbone(encoder, 50, true);
    expectWithinTolerance('full MobileNetV1-0.75 224', await compare(encoder, encoderGraph(encoder), 1, 51));
    encoder.dispose();
  });
});
