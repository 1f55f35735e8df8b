import { mkdtempSync, rmSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '@s2cpnet/core/testing';
import { loadCheckpoint, saveCheckpoint } from '@s2cpnet/model';
import { saveTinyCheckpoint } from '../../../model/src/tiny-checkpoint.test-util';
import { OnnxGraph } from '../graph';
import { onnxModelType } from '../onnx-schema';
import { maxAbsDiff } from '../ort.test-util';
import { OnnxCaptionModel, createOnnxSession, type EncodedBatch } from '../runtime';
import { exportOnnx, ONNX_FILES, type OnnxExportManifest } from './export';
import { dequantizedValue, groupLayout, quantizeGroups, quantizeWeights, transposeValues, type QuantizeReport } from './quantize';

/** A seeded uniform stream in [-scale, scale) (tests must not depend on Math.random). */
function randomValues(count: number, seed: number, scale = 1): Float32Array {
  let state = seed >>> 0 || 1;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = ((state / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

/** Initializers of serialised model bytes, by name, as flat arrays. */
function storedInitializers(bytes: Uint8Array): Map<string, { dims: number[]; dataType: number; data: Float32Array | Uint8Array }> {
  const type = onnxModelType();
  const model = type.toObject(type.decode(bytes), { longs: Number }) as {
    graph: { initializer: { name: string; dims: number[]; data_type: number; raw_data: Uint8Array }[] };
  };
  const out = new Map<string, { dims: number[]; dataType: number; data: Float32Array | Uint8Array }>();
  for (const t of model.graph.initializer) {
    const raw = Uint8Array.from(t.raw_data);
    out.set(t.name, { dims: t.dims ?? [], dataType: t.data_type, data: t.data_type === 1 ? new Float32Array(raw.buffer) : raw });
  }
  return out;
}

async function run(bytes: Uint8Array, feeds: Record<string, ort.Tensor>, extra: ort.InferenceSession.SessionOptions = {}): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all', ...extra });
  try {
    const out = await session.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([name, t]) => [name, t.data as Float32Array]));
  } finally {
    await session.release();
  }
}

/** Max abs difference relative to the largest magnitude (at least 1). */
function relativeDiff(expected: ArrayLike<number>, found: ArrayLike<number>): number {
  let scale = 1;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  return maxAbsDiff(expected, found) / scale;
}

interface WeightSpec {
  name: string;
  shape: number[];
  values: Float32Array;
}

/**
 * A graph that reads four weights the way the exporters do (a MatMul weight, a regular and a depthwise Conv kernel,
 * a Gather table), with sizes that are not multiples of the group size, and also returns each weight as an output.
 */
function layoutsGraph(): { g: OnnxGraph; weights: WeightSpec[] } {
  const g = new OnnxGraph('layouts');
  const specs: WeightSpec[] = [
    { name: 'dense', shape: [70, 20], values: randomValues(70 * 20, 1, 0.3) },
    { name: 'conv', shape: [8, 40, 3, 3], values: randomValues(8 * 40 * 9, 2, 0.2) },
    { name: 'depthwise', shape: [16, 1, 3, 3], values: randomValues(16 * 9, 3, 0.5) },
    { name: 'table', shape: [50, 24], values: randomValues(50 * 24, 4) },
    { name: 'wide', shape: [4, 64, 3, 3], values: randomValues(4 * 64 * 9, 14, 0.1) },
  ];
  const names = specs.map((w) => g.initializer(w.name, w.values, w.shape));
  const rows = g.input('rows', 'float32', [2, 70]);
  const images = g.input('images', 'float32', [1, 40, 6, 6]);
  const tokens = g.input('tokens', 'int64', [3]);
  g.output(g.matMul(rows, names[0]!), 'dense_out', 'float32', [2, 20]);
  const conv = g.op('Conv', [images, names[1]!], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
  g.output(conv, 'conv_out', 'float32', [1, 8, 6, 6]);
  const maps = g.input('maps', 'float32', [1, 16, 6, 6]);
  const depthwise = g.op('Conv', [maps, names[2]!], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 16 });
  g.output(depthwise, 'depthwise_out', 'float32', [1, 16, 6, 6]);
  g.output(g.gather(names[3]!, tokens), 'table_out', 'float32', [3, 24]);
  const wide = g.input('wideMaps', 'float32', [1, 64, 5, 5]);
  g.output(g.op('Conv', [wide, names[4]!], { kernel_shape: [3, 3] }), 'wide_out', 'float32', [1, 4, 3, 3]);
  names.forEach((name, i) => g.output(name, `${specs[i]!.name}_weight`, 'float32', specs[i]!.shape));
  return { g, weights: specs };
}

function layoutsFeeds(): Record<string, ort.Tensor> {
  return {
    rows: new ort.Tensor('float32', randomValues(2 * 70, 5), [2, 70]),
    images: new ort.Tensor('float32', randomValues(40 * 36, 6), [1, 40, 6, 6]),
    maps: new ort.Tensor('float32', randomValues(16 * 36, 13), [1, 16, 6, 6]),
    wideMaps: new ort.Tensor('float32', randomValues(64 * 25, 15), [1, 64, 5, 5]),
    tokens: new ort.Tensor('int64', BigInt64Array.of(0n, 49n, 17n), [3]),
  };
}

describe('groupLayout', () => {
  it('groups a MatMul weight and a table along the rows of each column, a Conv kernel over the values of each output channel in tfjs order', () => {
    expect(groupLayout([256, 1024], [{ op: 'MatMul', inputIndex: 1 }])).toEqual({ outer: 1, axis: 256, inner: 1024 });
    expect(groupLayout([274, 256], [{ op: 'Gather', inputIndex: 0 }])).toEqual({ outer: 1, axis: 274, inner: 256 });
    // a 1x1 tfjs kernel [1, 1, in, out] reshaped for a MatMul: the checkpoint's rows (in) of each column (out)
    expect(groupLayout([1, 1, 768, 256], [{ op: 'Reshape', inputIndex: 0 }])).toEqual({ outer: 1, axis: 768, inner: 256 });
    // [out, in, kh, kw] stored as [out, kh, kw, in]: the tfjs kernel's rows (kh, kw, in) of one output channel ...
    expect(groupLayout([64, 3, 7, 7], [{ op: 'Conv', inputIndex: 1 }, { op: 'Identity', inputIndex: 0 }])).toEqual({ outer: 64, axis: 147, inner: 1, permutation: [0, 2, 3, 1] });
    expect(groupLayout([16, 48, 3, 3], [{ op: 'Conv', inputIndex: 1 }])).toEqual({ outer: 16, axis: 432, inner: 1, permutation: [0, 2, 3, 1] });
    // ... the same groups without a transpose for whole groups of input channels, and for 1x1 kernels
    expect(groupLayout([512, 512, 3, 3], [{ op: 'Conv', inputIndex: 1 }])).toEqual({ outer: 512, axis: 512, inner: 9 });
    expect(groupLayout([96, 48, 1, 1], [{ op: 'Conv', inputIndex: 1 }])).toEqual({ outer: 96, axis: 48, inner: 1 });
    // depthwise kernels stay float32
    expect(groupLayout([768, 1, 3, 3], [{ op: 'Conv', inputIndex: 1 }])).toBeNull();
  });

  it('transposeValues moves every value to its transposed index', () => {
    const values = Float32Array.from({ length: 2 * 3 * 2 * 2 }, (_, i) => i);
    const { values: out, shape } = transposeValues(values, [2, 3, 2, 2], [0, 2, 3, 1]);
    expect(shape).toEqual([2, 2, 2, 3]);
    for (let o = 0; o < 2; o++) for (let i = 0; i < 3; i++) for (let y = 0; y < 2; y++) for (let x = 0; x < 2; x++) {
      expect(out[((o * 2 + y) * 2 + x) * 3 + i]).toBe(values[((o * 3 + i) * 2 + y) * 2 + x]);
    }
  });

  it('quantizeGroups gives codes in 0..255 that reach both ends of every non-constant group, and steps of (max - min) / 255', () => {
    const values = randomValues(3 * 37 * 5, 9);
    values.fill(0.25, 0, 5 * 32); // a constant group per column of the first outer index
    const layout = { outer: 3, axis: 37, inner: 5 };
    const { q, min, step } = quantizeGroups(values, layout, 32);
    expect(min.length).toBe(3 * 2 * 5);
    expect(min[0]).toBe(0.25);
    expect(step[0]).toBe(1);
    for (let k = 0; k < min.length; k++) expect(step[k]).toBeGreaterThan(0);
    expect(Math.max(...q)).toBe(255);
    expect(Math.min(...q)).toBe(0);
  });
});

describe('quantizeWeights', () => {
  it('stores the weights as uint8 behind a dequantisation that equals min + q * step exactly, within half a step of the original', async () => {
    const { g, weights } = layoutsGraph();
    const report = quantizeWeights(g, { minQuantizedSize: 0 });
    expect(report.tensors.map((t) => t.name)).toEqual(['dense', 'conv', 'table', 'wide']);
    expect(report.tensors.map((t) => t.layout)).toEqual([
      { outer: 1, axis: 70, inner: 20 },
      { outer: 8, axis: 360, inner: 1, permutation: [0, 2, 3, 1] },
      { outer: 1, axis: 50, inner: 24 },
      { outer: 4, axis: 64, inner: 9 },
    ]);
    const bytes = g.serialize();
    const stored = storedInitializers(bytes);
    // no float copy of a quantised weight is left in the file; the depthwise kernel stays float32
    for (const w of weights) expect(stored.has(w.name)).toBe(w.name === 'depthwise');
    expect(Array.from(stored.get('depthwise')!.data)).toEqual(Array.from(weights.find((w) => w.name === 'depthwise')!.values));
    const out = await run(bytes, layoutsFeeds());
    const G = report.groupSize;
    report.tensors.forEach((t) => {
      const original = weights.find((w) => w.name === t.name)!.values;
      const { outer, axis, inner } = t.layout;
      const full = Math.floor(axis / G);
      const main = stored.get(`${t.name}/q`);
      const tail = stored.get(`${t.name}/tail/q`);
      // whole groups and a short last group exactly when the axis asks for them, both uint8
      expect(main?.dataType).toBe(full > 0 ? 2 : undefined);
      expect(tail?.dataType).toBe(axis % G > 0 ? 2 : undefined);
      // the independent computation: value[a, j, b] = f32(min + f32(q * step)) of j's group
      const expected = new Float32Array(original.length);
      // element e of the stored order is element index(e) of the weight: the conv kernel is stored as [out, kh, kw, in]
      const index = (e: number) => {
        if (!t.layout.permutation) return e;
        const [, inChannels, kh, kw] = t.shape as [number, number, number, number];
        const i = e % inChannels;
        const x = Math.floor(e / inChannels) % kw;
        const y = Math.floor(e / (inChannels * kw)) % kh;
        const o = Math.floor(e / (inChannels * kw * kh));
        return ((o * inChannels + i) * kh + y) * kw + x;
      };
      let worst = 0;
      for (let a = 0, e = 0; a < outer; a++) {
        for (let j = 0; j < axis; j++) {
          for (let b = 0; b < inner; b++, e++) {
            let q: number;
            let min: number;
            let step: number;
            if (j < full * G) {
              const group = Math.floor(j / G);
              q = main!.data[((a * full + group) * G + (j % G)) * inner + b]!;
              min = stored.get(`${t.name}/min`)!.data[(a * full + group) * inner + b]!;
              step = stored.get(`${t.name}/step`)!.data[(a * full + group) * inner + b]!;
            } else {
              const rest = axis - full * G;
              q = tail!.data[(a * rest + (j - full * G)) * inner + b]!;
              min = stored.get(`${t.name}/tail/min`)!.data[a * inner + b]!;
              step = stored.get(`${t.name}/tail/step`)!.data[a * inner + b]!;
            }
            expected[index(e)] = Math.fround(min + Math.fround(q * step));
            worst = Math.max(worst, Math.abs(expected[index(e)]! - original[index(e)]!) / (step / 2));
          }
        }
      }
      const found = out[`${t.name}_weight`]!;
      expect(Array.from(found)).toEqual(Array.from(expected));
      expect(worst).toBeLessThanOrEqual(1 + 1e-4);
      expect(t.maxError).toBe(maxAbsDiff(found, original));
    });
    expect(dequantizedValue(200, -0.5, 0.004)).toBe(Math.fround(-0.5 + Math.fround(200 * 0.004)));
  });

  it('gives the float graph\'s outputs within 1e-2 (relative to their largest magnitude), and ONNX Runtime folds the dequantisation away', async () => {
    const float = layoutsGraph().g.serialize();
    const { g } = layoutsGraph();
    quantizeWeights(g, { minQuantizedSize: 0 });
    const quantized = g.serialize();
    const feeds = layoutsFeeds();
    const [a, b] = [await run(float, feeds), await run(quantized, feeds)];
    for (const name of ['dense_out', 'conv_out', 'table_out', 'wide_out']) {
      const diff = relativeDiff(a[name]!, b[name]!);
      expect(diff).toBeGreaterThan(0);
      expect(diff).toBeLessThan(1e-2);
    }
    expect(b.depthwise_out).toEqual(a.depthwise_out);
    // the optimised model holds float weights and no dequantisation node
    const dir = mkdtempSync(path.join(tmpdir(), 's2cp-onnx-fold-'));
    try {
      const optimized = path.join(dir, 'optimized.onnx');
      // constant folding is a basic-level optimisation (the higher levels write hardware-specific layouts)
      await run(quantized, feeds, { optimizedModelFilePath: optimized, graphOptimizationLevel: 'basic' });
      const type = onnxModelType();
      const model = type.toObject(type.decode(await fsp.readFile(optimized))) as { graph: { node: { op_type: string }[] } };
      const ops = model.graph.node.map((n) => n.op_type);
      expect(ops).not.toContain('Cast');
      expect(ops.filter((op) => ['Mul', 'Add', 'Concat', 'Transpose', 'Reshape'].includes(op))).toEqual([]);
      expect(ops.filter((op) => op === 'Conv' || op === 'MatMul' || op === 'Gather').length).toBeGreaterThanOrEqual(4);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stores about 1.25 bytes per value at groups of 32, and keeps small, rank-1, computed and non-finite tensors float32', async () => {
    const build = () => {
      const g = new OnnxGraph('sizes');
      const x = g.input('x', 'float32', [1, 64, 8, 8]);
      const conv = g.op('Conv', [x, g.initializer('kernel', randomValues(64 * 64 * 9, 7, 0.1), [64, 64, 3, 3]), g.initializer('bias', randomValues(64, 8), [64])], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
      const rows = g.reshape(g.transpose(conv, [0, 2, 3, 1]), [64, 64]);
      const dense = g.matMul(rows, g.initializer('dense', randomValues(64 * 512, 9, 0.1), [64, 512]));
      const small = g.matMul(dense, g.initializer('small', randomValues(512 * 1, 10), [512, 1]));
      const table = g.add(small, g.constant(randomValues(64 * 32, 11), [64, 32], 'table'));
      const floor = g.op('Max', [table, g.initializer('floor', new Float32Array(64 * 32).fill(-Infinity), [64, 32])]);
      g.output(floor, 'y', 'float32', [64, 32]);
      return g;
    };
    const float = build();
    const g = build();
    const report: QuantizeReport = quantizeWeights(g);
    expect(report.tensors.map((t) => t.name)).toEqual(['kernel', 'dense']);
    expect(report.values).toBe(64 * 64 * 9 + 64 * 512);
    const [floatBytes, quantizedBytes] = [float.serialize(), g.serialize()];
    // exactly 1 byte per value plus a float32 min and step per group of 32: 1.25 bytes per value
    const stored = storedInitializers(quantizedBytes);
    const groups = report.tensors.reduce((sum, t) => sum + t.groups, 0);
    expect(groups).toBe(report.values / 32);
    let weightBytes = 0;
    for (const [name, t] of stored) if (/\/(q|min|step)$/.test(name)) weightBytes += t.data.byteLength;
    expect(weightBytes).toBe(report.values + 8 * groups);
    expect(weightBytes / report.values).toBe(1.25);
    // the whole file: the quantised part plus the float32 rest (bias, 'small', the constant table, the floor), and
    // a little for names, nodes and shapes
    const rest = (64 + 512 + 64 * 32 * 2) * 4;
    expect(quantizedBytes.byteLength).toBeLessThan(weightBytes + rest + 4096);
    expect(quantizedBytes.byteLength / floatBytes.byteLength).toBeLessThan(0.37);
    expect(report.bytesBefore).toBe(float.initializerBytes);
    expect(report.bytesAfter).toBe([...stored.values()].reduce((sum, t) => sum + t.data.byteLength, 0));
    const feeds = { x: new ort.Tensor('float32', randomValues(64 * 64, 12), [1, 64, 8, 8]) };
    const [a, b] = [await run(floatBytes, feeds), await run(quantizedBytes, feeds)];
    expect(relativeDiff(a.y!, b.y!)).toBeLessThan(1e-2);
  });

  it('refuses bad options, naming them', () => {
    const g = new OnnxGraph('options');
    expect(() => quantizeWeights(g, { groupSize: 1 })).toThrow(/groupSize: expected an integer of at least 2, found 1/);
    expect(() => quantizeWeights(g, { minQuantizedSize: -1 })).toThrow(/minQuantizedSize: expected a non-negative integer, found -1/);
  });
});

describe('exportOnnx with quantize: uint8', () => {
  let dir: string;
  beforeAll(async () => {
    await useBackend('cpu');
    dir = mkdtempSync(path.join(tmpdir(), 's2cp-onnx-uint8-'));
    await saveTinyCheckpoint(path.join(dir, 'ck'), { seed: 5 });
    const checkpoint = await loadCheckpoint(path.join(dir, 'ck'));
    try {
      await exportOnnx(checkpoint, path.join(dir, 'float'));
      // the tiny model's weights are small: quantise from 256 values so that most of them are 8-bit
      await exportOnnx(checkpoint, path.join(dir, 'uint8'), { quantize: 'uint8', minQuantizedSize: 256 });
      // an 8-bit checkpoint of the same weights, exported 8-bit on the same groups
      await saveCheckpoint(path.join(dir, 'ck8'), {
        model: checkpoint.model,
        vocabulary: checkpoint.vocabulary,
        classNames: checkpoint.classNames,
        masks: checkpoint.masks,
        weightsDtype: 'uint8',
      });
    } finally {
      checkpoint.model.dispose();
    }
    const checkpoint8 = await loadCheckpoint(path.join(dir, 'ck8'));
    try {
      await exportOnnx(checkpoint8, path.join(dir, 'ck8-float'));
      await exportOnnx(checkpoint8, path.join(dir, 'ck8-uint8'), { quantize: 'uint8' });
    } finally {
      checkpoint8.model.dispose();
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const manifestOf = async (name: string) => JSON.parse(await fsp.readFile(path.join(dir, name, ONNX_FILES.manifest), 'utf8')) as OnnxExportManifest;
  const onnxBytes = async (name: string) => {
    const m = await manifestOf(name);
    return m.files[ONNX_FILES.encoder]!.bytes + m.files[ONNX_FILES.decoderStep]!.bytes;
  };

  it('records the 8-bit weights in the manifest', async () => {
    const float = await manifestOf('float');
    expect(float.weights).toBe('float32');
    expect(float.quantization).toBeUndefined();
    const uint8 = await manifestOf('uint8');
    expect(uint8.weights).toBe('uint8');
    expect(uint8.quantization).toMatchObject({ groupSize: 32, minQuantizedSize: 256 });
    expect(uint8.quantization!.tensors).toBeGreaterThan(10);
    expect((await manifestOf('ck8-uint8')).quantization).toMatchObject({ groupSize: 32, minQuantizedSize: 1024 });
  });

  it('is smaller: under half the float export for the tiny model (whose many small tensors stay float32)', async () => {
    const ratio = (await onnxBytes('uint8')) / (await onnxBytes('float'));
    expect(ratio).toBeLessThan(0.5);
  });

  it('creates sessions, and OnnxCaptionModel.load gives the float export\'s outputs within 2e-2 (relative)', async () => {
    const session = await createOnnxSession(path.join(dir, 'uint8', ONNX_FILES.encoder), { threads: 1 });
    expect(session.inputNames).toContain('images');
    await session.release();
    const [float, uint8] = [await OnnxCaptionModel.load(path.join(dir, 'float'), { threads: 1 }), await OnnxCaptionModel.load(path.join(dir, 'uint8'), { threads: 1 })];
    try {
      expect(uint8.manifest.weights).toBe('uint8');
      const s = float.manifest.inputSize;
      const images = randomValues(2 * s * s * 3, 21);
      const masks = randomValues(2 * s * s * 3, 22);
      const [a, b]: EncodedBatch[] = [await float.encode(images, masks, 2), await uint8.encode(images, masks, 2)];
      const diffs = [...a.memoryKeys.map((k, l) => relativeDiff(k, b.memoryKeys[l]!)), ...a.memoryValues.map((v, l) => relativeDiff(v, b.memoryValues[l]!)), relativeDiff(a.categoryLogits!, b.categoryLogits!)];
      for (const d of diffs) expect(d).toBeLessThan(5e-2);
      // the decoder step on the same (float) encoder outputs
      const [stepA, stepB] = [float.stepper(a), uint8.stepper(a)];
      const request = { tokens: Int32Array.of(float.vocabulary.startId, float.vocabulary.startId) };
      const [pa, pb] = [await stepA(request as never), await stepB(request as never)];
      expect(relativeDiff(pa.logProbs, pb.logProbs)).toBeLessThan(5e-2);
      const captions = await uint8.captionBatch(images, masks, 2, { beamSize: 3, maxLength: 8 });
      expect(captions).toHaveLength(2);
    } finally {
      await Promise.all([float.dispose(), uint8.dispose()]);
    }
  });

  it('adds next to no error to an 8-bit checkpoint: its codes are recovered on the same groups (outputs within 1e-5)', async () => {
    const [float, uint8] = [await OnnxCaptionModel.load(path.join(dir, 'ck8-float'), { threads: 1 }), await OnnxCaptionModel.load(path.join(dir, 'ck8-uint8'), { threads: 1 })];
    try {
      const s = float.manifest.inputSize;
      const images = randomValues(2 * s * s * 3, 31);
      const masks = randomValues(2 * s * s * 3, 32);
      const [a, b] = [await float.encode(images, masks, 2), await uint8.encode(images, masks, 2)];
      for (let l = 0; l < a.memoryKeys.length; l++) {
        expect(relativeDiff(a.memoryKeys[l]!, b.memoryKeys[l]!)).toBeLessThan(1e-5);
        expect(relativeDiff(a.memoryValues[l]!, b.memoryValues[l]!)).toBeLessThan(1e-5);
      }
      expect(relativeDiff(a.categoryLogits!, b.categoryLogits!)).toBeLessThan(1e-5);
    } finally {
      await Promise.all([float.dispose(), uint8.dispose()]);
    }
  });
});
