/**
 * The enhancer, fusion and category-head exporters against tfjs in inference mode: every built-in class and every
 * option that changes the computation, tiny sizes, random weights (non-trivial biases, norm offsets and batch-norm
 * moving statistics), one graph with a dynamic batch run at batch 2, 1 and 3.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S2Layer } from '@s2cpnet/core';
import { randomizeWeights, randomTensor, useBackend } from '@s2cpnet/core/testing';
import { SemanticEnhancer, SpatialEnhancer, type SemanticEnhancerArgs, type SpatialEnhancerArgs } from '@s2cpnet/enhancers';
import {
  AddFusion,
  ConcatFusion,
  CrossViewFusion,
  ReferenceCrossViewFusion,
  SingleViewFusion,
  type FusionLayerArgs,
  type FusionLayerBase,
} from '@s2cpnet/fusion';
import {
  MultiLabelCategoryDecoder,
  NextNounCategoryDecoder,
  type MultiLabelCategoryDecoderArgs,
  type NextNounCategoryDecoderArgs,
} from '@s2cpnet/category-decoder';
import { OnnxGraph, type Dim, type Value } from '../graph';
import { maxAbsDiff, runGraph } from '../ort.test-util';
import { builtinCategoryHeadExporters, builtinEnhancerExporters, builtinFusionExporters } from './components';

const TOLERANCE = 1e-4;
/** Batch 2 first (the size the brief compares at), then 1 and 3 through the same graph. */
const BATCHES = [2, 1, 3];
/** Standard deviation of the random biases, offsets, tables and batch-norm means (gammas 1 + 0.3 N, variances
 * 0.5 + U). Kernels get 1/sqrt(fan-in) instead (below), so activations stay O(1) through stacked units and
 * attention softmaxes are not saturated (a saturated softmax would hide errors in the scores). */
const WEIGHT_SPREAD = 0.3;

/** Worst difference and largest output magnitude per case, printed at the end for the record. */
const measured: [string, number, number][] = [];

interface Comparison {
  name: string;
  /** Per-sample shapes of the inputs (the batch axis is added in front). */
  inputs: number[][];
  /** Per-sample shape of the output. */
  output: number[];
  build: (g: OnnxGraph, inputs: Value[]) => Value;
  reference: (inputs: tf.Tensor[]) => tf.Tensor;
  seed: number;
}

/** Builds the graph once (dynamic batch), then compares ONNX Runtime with tfjs at each batch size. */
async function expectMatchesTfjs(c: Comparison): Promise<number> {
  const g = new OnnxGraph(c.name);
  const names = c.inputs.map((shape, i) => g.input(`x${i}`, 'float32', ['batch', ...shape]));
  const outputShape: Dim[] = ['batch', ...c.output];
  g.output(c.build(g, names), 'y', 'float32', outputShape);
  let worst = 0;
  let magnitude = 0;
  for (const batch of BATCHES) {
    const inputs = c.inputs.map((shape, i) => randomTensor([batch, ...shape], c.seed + 31 * batch + i));
    const expected = tf.tidy(() => c.reference(inputs));
    const feeds = Object.fromEntries(names.map((name, i) => [name, inputs[i]!]));
    const { y } = await runGraph(g, feeds);
    expect(y!.shape).toEqual(expected.shape);
    const diff = maxAbsDiff(y!.data, expected.dataSync());
    worst = Math.max(worst, diff);
    magnitude = Math.max(magnitude, maxAbsDiff(expected.dataSync(), new Float32Array(expected.size)));
    expect(diff, `${c.name} at batch ${batch}`).toBeLessThanOrEqual(TOLERANCE);
    tf.dispose([...inputs, expected]);
  }
  measured.push([c.name, worst, magnitude]);
  return worst;
}

function built<T extends S2Layer>(layer: T, inputShape: (number | null)[], seed: number): T {
  layer.ensureBuilt(inputShape);
  randomizeWeights(layer, seed, WEIGHT_SPREAD);
  for (const { path, variable } of layer.namedWeights()) {
    if (path.split('/').pop() !== 'kernel') continue;
    const fanIn = variable.shape.slice(0, -1).reduce((a: number, b) => a * (b ?? 1), 1);
    const scaled = tf.tidy(() => tf.mul(variable.read(), 1 / (WEIGHT_SPREAD * Math.sqrt(fanIn))));
    variable.write(scaled);
    scaled.dispose();
  }
  return layer;
}

beforeAll(() => useBackend('cpu'));
afterAll(() => {
  // eslint-disable-next-line no-console
  console.log(measured.map(([name, diff, size]) => `max |diff| ${diff.toExponential(2)}  max |y| ${size.toPrecision(3)}  ${name}`).join('\n'));
});

const GRID = 4;

describe('enhancer exporters', () => {
  const semanticCases: [string, SemanticEnhancerArgs][] = [
    ['paper, reduction 4', { channels: 16, reduction: 4 }],
    ['paper, default reduction 16 (hidden width 1)', { channels: 16 }],
    ['reference variant (output conv)', { channels: 16, reduction: 4, variant: 'reference' }],
    ['paper with outputConv', { channels: 12, reduction: 3, outputConv: true }],
  ];
  it.each(semanticCases)('SemanticEnhancer %s', async (_label, args) => {
    const layer = built(new SemanticEnhancer({ ...args, seed: 1 }), [null, GRID, GRID, args.channels], 11);
    const exporter = builtinEnhancerExporters.semanticEnhancer[layer.getClassName()]!;
    await expectMatchesTfjs({
      name: `SemanticEnhancer ${_label}`,
      inputs: [[GRID, GRID, args.channels]],
      output: [GRID, GRID, args.channels],
      build: (g, [x]) => exporter(g, layer, x!),
      reference: ([x]) => layer.enhance(x as tf.Tensor4D),
      seed: 100,
    });
    layer.dispose();
  });

  const spatialCases: [string, SpatialEnhancerArgs, number][] = [
    ['paper (global low-pass, a on background)', { inputChannels: 8, outputChannels: 6 }, GRID],
    ['reference variant (2x2 low-pass, a on foreground, C kept)', { inputChannels: 8, variant: 'reference', lowPassGrid: 2 }, GRID],
    ['paper with a on the foreground branch', { inputChannels: 8, outputChannels: 6, alphaBranch: 'foreground' }, GRID],
    ['low-pass grid equal to the grid (blocks of 1)', { inputChannels: 8, outputChannels: 5, lowPassGrid: GRID }, GRID],
    ['low-pass grid 1 through block pooling', { inputChannels: 8, outputChannels: 5, lowPassGrid: 1 }, GRID],
    ['reference variant on a 6x6 grid (3x3 blocks of 2)', { inputChannels: 8, variant: 'reference', lowPassGrid: 3, initialAlpha: 0.2 }, 6],
  ];
  it.each(spatialCases)('SpatialEnhancer %s', async (label, args, grid) => {
    const layer = built(new SpatialEnhancer({ ...args, seed: 2 }), [null, grid, grid, args.inputChannels], 12);
    const exporter = builtinEnhancerExporters.spatialEnhancer[layer.getClassName()]!;
    await expectMatchesTfjs({
      name: `SpatialEnhancer ${label}`,
      inputs: [[grid, grid, args.inputChannels]],
      output: [grid, grid, layer.outputChannels],
      build: (g, [x]) => exporter(g, layer, x!),
      reference: ([x]) => layer.enhance(x as tf.Tensor4D),
      seed: 200,
    });
    layer.dispose();
  });
});

describe('fusion exporters', () => {
  const small = { imageChannels: 12, maskChannels: 6, dim: 8, grid: 3, heads: 2, units: 2, ffnMultiplier: 2 };
  const defaults = { imageChannels: 12, maskChannels: 10, dim: 16, grid: 2 }; // 8 heads, 3 units, FFN 4d
  const cases: [string, new (args: FusionLayerArgs) => FusionLayerBase, FusionLayerArgs][] = [
    ['CrossViewFusion (2 units, 2 heads, FFN 2d)', CrossViewFusion, small],
    ['CrossViewFusion (defaults: 3 units, 8 heads, FFN 4d)', CrossViewFusion, defaults],
    ['CrossViewFusion (1 unit, 1 head, grid 1)', CrossViewFusion, { ...small, grid: 1, heads: 1, units: 1 }],
    ['ReferenceCrossViewFusion (2 units, 2 heads, FFN 2d)', ReferenceCrossViewFusion, small],
    ['ReferenceCrossViewFusion (defaults: 3 units, 8 heads, FFN 4d)', ReferenceCrossViewFusion, defaults],
    ['AddFusion', AddFusion, small],
    ['ConcatFusion', ConcatFusion, small],
    ['SingleViewFusion', SingleViewFusion, small],
  ];
  it.each(cases)('%s', async (label, Fusion, args) => {
    const fusion = built(new Fusion({ ...args, seed: 3 }), [null, args.grid * args.grid, args.imageChannels], 13);
    const exporter = builtinFusionExporters[fusion.getClassName()]!;
    const n = fusion.tokens;
    const inputs = fusion.usesMaskView ? [[n, args.imageChannels], [n, args.maskChannels]] : [[n, args.imageChannels]];
    await expectMatchesTfjs({
      name: label,
      inputs,
      output: [n, fusion.memoryWidth],
      build: (g, [image, mask]) => exporter(g, fusion, image!, mask ?? null),
      reference: ([image, mask]) => fusion.fuse(image as tf.Tensor3D, (mask ?? null) as tf.Tensor3D | null, { training: false }),
      seed: 300,
    });
    fusion.dispose();
  });

  it('refuses a missing mask view and sub-layers it has no exporter for, naming them', () => {
    const fusion = built(new CrossViewFusion({ ...small, seed: 4 }), [null, 9, small.imageChannels], 14);
    const exporter = builtinFusionExporters['CrossViewFusion']!;
    const g = new OnnxGraph('errors');
    const image = g.input('image', 'float32', ['batch', 9, small.imageChannels]);
    const mask = g.input('mask', 'float32', ['batch', 9, small.maskChannels]);
    expect(() => exporter(g, fusion, image, null)).toThrow(/CrossViewFusion: maskTokens is required/);
    const gate = fusion.fusionUnits[0]!.gate as unknown as { getClassName: () => string };
    gate.getClassName = () => 'MyGate';
    expect(() => exporter(g, fusion, image, mask)).toThrow(/gate class "MyGate"/);
    const block = fusion.mergeBlocks[1]! as unknown as { getClassName: () => string };
    delete (gate as { getClassName?: unknown }).getClassName;
    block.getClassName = () => 'MyMerge';
    expect(() => exporter(g, fusion, image, mask)).toThrow(/merge block class "MyMerge"/);
    fusion.dispose();
  });
});

describe('category head exporters', () => {
  const MEMORY_TOKENS = 5;
  const multiLabelCases: [string, MultiLabelCategoryDecoderArgs][] = [
    ['per-class classifier', { numClasses: 7, memoryWidth: 10, dim: 8, numHeads: 2, ffnDim: 12 }],
    ['shared classifier', { numClasses: 7, memoryWidth: 10, dim: 8, numHeads: 2, ffnDim: 12, classifier: 'shared' }],
    ['defaults (8 heads, FFN 4 dim)', { numClasses: 5, memoryWidth: 6, dim: 16 }],
  ];
  it.each(multiLabelCases)('MultiLabelCategoryDecoder %s', async (label, args) => {
    const head = built(new MultiLabelCategoryDecoder({ ...args, seed: 5 }), [null, args.memoryWidth], 15);
    const exporter = builtinCategoryHeadExporters[head.getClassName()]!;
    await expectMatchesTfjs({
      name: `MultiLabelCategoryDecoder ${label}`,
      inputs: [[MEMORY_TOKENS, args.memoryWidth]],
      output: [args.numClasses],
      build: (g, [memory]) => exporter(g, head, memory!),
      reference: ([memory]) => head.logits(memory as tf.Tensor3D, { training: false }),
      seed: 400,
    });
    head.dispose();
  });

  const nextNounCases: [string, NextNounCategoryDecoderArgs][] = [
    ['2 layers, 4 nouns, 2 heads', { vocabSize: 10, memoryWidth: 6, dim: 8, numLayers: 2, numHeads: 2, ffnDim: 12, maxNouns: 4 }],
    ['defaults (1 layer, 12 nouns, 8 heads) with other special ids', { vocabSize: 11, memoryWidth: 6, dim: 16, startId: 4, endId: 5, padId: 3 }],
  ];
  it.each(nextNounCases)('NextNounCategoryDecoder %s (greedy generation unrolled)', async (label, args) => {
    // Weight seed 17: random heads often repeat one word at every step; with this one the words vary (checked below).
    const head = built(new NextNounCategoryDecoder({ ...args, seed: 6 }), [null, args.memoryWidth], 17);
    const exporter = builtinCategoryHeadExporters[head.getClassName()]!;
    await expectMatchesTfjs({
      name: `NextNounCategoryDecoder ${label}`,
      inputs: [[MEMORY_TOKENS, args.memoryWidth]],
      output: [head.steps * args.vocabSize],
      build: (g, [memory]) => exporter(g, head, memory!),
      reference: ([memory]) => head.logits(memory as tf.Tensor3D, { training: false }),
      seed: 500,
    });
    // The fed-back words must vary, or the ArgMax -> embedding path would go untested.
    const memory = randomTensor([3, MEMORY_TOKENS, args.memoryWidth], 501) as tf.Tensor3D;
    const { logits, tokens } = head.generate(memory);
    expect(new Set(tokens.dataSync()).size).toBeGreaterThan(1);
    tf.dispose([memory, logits, tokens]);
    head.dispose();
  });
});

describe('enhancers -> tokens -> fusion -> category head in one graph (as S2CPNet.memoryFromFeatures chains them)', () => {
  it('matches tfjs', async () => {
    const channels = 16;
    const grid = 2;
    const semantic = built(new SemanticEnhancer({ channels, reduction: 4, seed: 7 }), [null, grid, grid, channels], 17);
    const spatial = built(new SpatialEnhancer({ inputChannels: channels, outputChannels: 8, seed: 8 }), [null, grid, grid, channels], 18);
    const fusion = built(
      new CrossViewFusion({ imageChannels: channels, maskChannels: 8, dim: 8, grid, heads: 2, units: 2, ffnMultiplier: 2, seed: 9 }),
      [null, grid * grid, channels],
      19,
    );
    const head = built(new MultiLabelCategoryDecoder({ numClasses: 6, memoryWidth: fusion.memoryWidth, dim: 8, numHeads: 2, ffnDim: 12, seed: 10 }), [null, 16], 20);
    await expectMatchesTfjs({
      name: 'chain: SemanticEnhancer + SpatialEnhancer + CrossViewFusion + MultiLabelCategoryDecoder',
      inputs: [[grid, grid, channels], [grid, grid, channels]],
      output: [6],
      build: (g, [image, mask]) => {
        const e = builtinEnhancerExporters.semanticEnhancer['SemanticEnhancer']!(g, semantic, image!);
        const m = builtinEnhancerExporters.spatialEnhancer['SpatialEnhancer']!(g, spatial, mask!);
        const imageTokens = g.reshape(e, [0, grid * grid, channels]);
        const maskTokens = g.reshape(m, [0, grid * grid, 8]);
        const memory = builtinFusionExporters['CrossViewFusion']!(g, fusion, imageTokens, maskTokens);
        return builtinCategoryHeadExporters['MultiLabelCategoryDecoder']!(g, head, memory);
      },
      reference: ([image, mask]) => {
        const e = semantic.enhance(image as tf.Tensor4D);
        const m = spatial.enhance(mask as tf.Tensor4D);
        const memory = fusion.fuse(tf.reshape(e, [-1, grid * grid, channels]), tf.reshape(m, [-1, grid * grid, 8]), { training: false });
        return head.logits(memory, { training: false });
      },
      seed: 600,
    });
    for (const layer of [semantic, spatial, fusion, head]) layer.dispose();
  });
});
