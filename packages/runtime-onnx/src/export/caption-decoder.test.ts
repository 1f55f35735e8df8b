import * as ort from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { perturbWeights, randomTensor, randomTokens, useBackend } from '@s2cpnet/core/testing';
import { TransformerCaptionDecoder, captionDecoderLayerTypes, type CaptionDecoderState } from '@s2cpnet/caption-decoder';
import { OnnxGraph } from '../graph';
import { maxAbsDiff } from '../ort.test-util';
import {
  CAPTION_DECODER_TENSOR_NAMES as NAMES,
  buildCaptionDecoderMemoryGraph,
  buildCaptionDecoderStepGraph,
  builtinCaptionDecoderExporters,
  stepInputName,
  stepOutputName,
} from './caption-decoder';

const sizes = { vocabSize: 13, memoryWidth: 6, dim: 8, numLayers: 2, numHeads: 2, ffnDim: 12, maxLength: 7 };
const headDim = sizes.dim / sizes.numHeads;
const images = 2;
const memoryTokens = 3;
const steps = 5;
const tolerance = 1e-4;

interface Array32 {
  data: Float32Array;
  shape: number[];
}

/** One session per graph, reused across steps with changing rows and past lengths (as the runtime does). */
async function session(g: OnnxGraph): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(g.serialize(), { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
}

async function run(s: ort.InferenceSession, feeds: Record<string, ort.Tensor>): Promise<Record<string, Array32>> {
  const out = await s.run(feeds);
  const result: Record<string, Array32> = {};
  for (const [name, t] of Object.entries(out)) result[name] = { data: t.data as Float32Array, shape: [...t.dims] };
  return result;
}

const floatTensor = (a: Array32) => new ort.Tensor('float32', a.data, a.shape);
const int64Tensor = (values: ArrayLike<number>) => new ort.Tensor('int64', BigInt64Array.from(Array.from(values, (v) => BigInt(v))), [values.length]);

/** Rows `indices` of a [R, ...] array (the JS-side gather a runtime does for beam reordering and memory tiling). */
function gatherRows(a: Array32, indices: readonly number[]): Array32 {
  const rowSize = a.data.length / a.shape[0]!;
  const data = new Float32Array(indices.length * rowSize);
  indices.forEach((r, i) => data.set(a.data.subarray(r * rowSize, (r + 1) * rowSize), i * rowSize));
  return { data, shape: [indices.length, ...a.shape.slice(1)] };
}

/** Records the largest difference seen per quantity, checks each against the tolerance with a readable label. */
class DiffLog {
  readonly worst: Record<string, number> = {};
  check(label: string, kind: string, actual: Array32, expected: tf.Tensor): void {
    expect(actual.shape, `${label}: shape`).toEqual(expected.shape);
    const diff = maxAbsDiff(actual.data, expected.dataSync() as Float32Array);
    this.worst[kind] = Math.max(this.worst[kind] ?? 0, diff);
    expect(diff, `${label}: max abs diff`).toBeLessThanOrEqual(tolerance);
  }
}

describe.each(captionDecoderLayerTypes)('caption decoder ONNX export, %s layers (cpu)', (layerType) => {
  let decoder: TransformerCaptionDecoder;
  let memory: tf.Tensor3D;
  let memoryGraph: ort.InferenceSession;
  let stepGraph: ort.InferenceSession;
  const exporter = builtinCaptionDecoderExporters['TransformerCaptionDecoder']!;

  beforeAll(async () => {
    await useBackend('cpu');
    decoder = new TransformerCaptionDecoder({ ...sizes, layerType, dropout: 0, seed: 31 });
    decoder.ensureBuilt([null, sizes.memoryWidth]);
    // Off the initial values (unit gammas, zero biases) so every weight matters.
    perturbWeights(decoder, 32, 0.1);
    memory = randomTensor([images, memoryTokens, sizes.memoryWidth], 33) as tf.Tensor3D;
    const mg = new OnnxGraph('caption-decoder-memory');
    const description = buildCaptionDecoderMemoryGraph(mg, decoder, exporter);
    expect(description).toEqual({ numLayers: 2, numHeads: 2, headDim, vocabSize: sizes.vocabSize, maxLength: sizes.maxLength });
    const sg = new OnnxGraph('caption-decoder-step');
    buildCaptionDecoderStepGraph(sg, decoder, exporter);
    memoryGraph = await session(mg);
    stepGraph = await session(sg);
  });

  afterAll(async () => {
    await memoryGraph?.release();
    await stepGraph?.release();
    memory?.dispose();
    decoder?.dispose();
  });

  /**
   * Decodes `tokens` [steps][rows] both ways and compares every step. `reorders[t]` (optional) reorders the rows
   * after step t, in tfjs with `reorderState` and in ORT with a JS gather of the caches. `expand` first tiles the
   * memory's rows (beam-like), the same way on both sides.
   */
  async function compare(tokens: number[][], options: { expand?: number[]; reorders?: (number[] | undefined)[] } = {}): Promise<Record<string, number>> {
    const log = new DiffLog();
    const before = tf.memory().numTensors;
    const memoryOut = await run(memoryGraph, { [NAMES.memory]: new ort.Tensor('float32', Float32Array.from(memory.dataSync()), memory.shape) });
    let state: CaptionDecoderState = decoder.initState(memory);
    for (let l = 0; l < sizes.numLayers; l++) {
      log.check(`memory key ${l}`, 'memoryKeys', memoryOut[stepInputName('memory_key', l)]!, state.memoryKeyValues[l]!.keys);
      log.check(`memory value ${l}`, 'memoryValues', memoryOut[stepInputName('memory_value', l)]!, state.memoryKeyValues[l]!.values);
    }
    let memoryCaches: Record<string, Array32> = {};
    let pastCaches: Record<string, Array32> = {};
    let rows = images;
    for (let l = 0; l < sizes.numLayers; l++) {
      for (const kind of ['memory_key', 'memory_value'] as const) memoryCaches[stepInputName(kind, l)] = memoryOut[stepInputName(kind, l)]!;
    }
    const reorder = (indices: number[]) => {
      const t = tf.tensor1d(indices, 'int32');
      state = decoder.reorderState(state, t);
      t.dispose();
      memoryCaches = Object.fromEntries(Object.entries(memoryCaches).map(([k, v]) => [k, gatherRows(v, indices)]));
      pastCaches = Object.fromEntries(Object.entries(pastCaches).map(([k, v]) => [k, gatherRows(v, indices)]));
      rows = indices.length;
    };
    if (options.expand) reorder(options.expand);
    // The first step reads an empty past: [rows, heads, 0, headDim].
    for (let l = 0; l < sizes.numLayers; l++) {
      for (const kind of ['past_key', 'past_value'] as const) pastCaches[stepInputName(kind, l)] = { data: new Float32Array(0), shape: [rows, sizes.numHeads, 0, headDim] };
    }
    for (let t = 0; t < tokens.length; t++) {
      const column = tokens[t]!;
      expect(column.length).toBe(rows);
      const feeds: Record<string, ort.Tensor> = { [NAMES.tokens]: int64Tensor(column), [NAMES.position]: int64Tensor([t]) };
      for (const [name, value] of Object.entries({ ...memoryCaches, ...pastCaches })) feeds[name] = floatTensor(value);
      const onnx = await run(stepGraph, feeds);
      const tokenTensor = tf.tensor1d(column, 'int32');
      const out = decoder.step(tokenTensor, state, { returnAttention: true });
      tokenTensor.dispose();
      state = out.state;
      const label = `step ${t} (past ${t})`;
      log.check(`${label} logits`, 'logits', onnx[NAMES.logits]!, out.logits);
      log.check(`${label} attention`, 'attention', onnx[NAMES.attention]!, out.attention!);
      tf.dispose([out.logits, out.attention!]);
      for (let l = 0; l < sizes.numLayers; l++) {
        const cache = state.selfKeyValues[l]!;
        const keys = onnx[stepOutputName('present_key', l)]!;
        const values = onnx[stepOutputName('present_value', l)]!;
        expect(keys.shape).toEqual([rows, sizes.numHeads, t + 1, headDim]);
        log.check(`${label} present key ${l}`, 'presentKeys', keys, cache.keys);
        log.check(`${label} present value ${l}`, 'presentValues', values, cache.values);
        pastCaches[stepInputName('past_key', l)] = keys;
        pastCaches[stepInputName('past_value', l)] = values;
      }
      const indices = options.reorders?.[t];
      if (indices) reorder(indices);
    }
    decoder.disposeState(state);
    expect(tf.memory().numTensors).toBe(before);
    return log.worst;
  }

  it('memory graph and 5 steps match initState and step, from an empty past (P = 0) on', async () => {
    const tokens = randomTokens(steps, images, sizes.vocabSize, 34);
    const worst = await compare(tokens.arraySync());
    tokens.dispose();
    console.info(`[${layerType}] greedy rows: max abs diff ${JSON.stringify(worst)}`);
  });

  it('beam-like rows (2 per image, reordered between steps) match reorderState', async () => {
    const beam = 2;
    const rows = images * beam;
    const tokens = randomTokens(steps, rows, sizes.vocabSize, 35);
    // Within each image's group, except after step 2 where rows swap images (tfjs then gathers its memory per row).
    const reorders = [[1, 1, 2, 3], [0, 1, 3, 3], [2, 0, 3, 1], [1, 0, 2, 2], undefined];
    const worst = await compare(tokens.arraySync(), { expand: [0, 0, 1, 1], reorders });
    tokens.dispose();
    console.info(`[${layerType}] beam rows: max abs diff ${JSON.stringify(worst)}`);
  });
});
