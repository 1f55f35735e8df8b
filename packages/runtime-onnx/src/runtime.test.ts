import { mkdtempSync, rmSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '@s2cpnet/core/testing';
import { Vocabulary } from '@s2cpnet/data';
import {
  PRESET_NAMES,
  buildS2CPNet,
  captionBatch,
  loadCaptioner,
  loadCheckpoint,
  presetConfig,
  saveCheckpoint,
  type PresetName,
  type S2CPNetConfig,
} from '@s2cpnet/model';
import { saveTinyCheckpoint } from '../../model/src/tiny-checkpoint.test-util';
import { exportOnnx, ONNX_FILES } from './export/export';
import { exporterFor, NoOnnxExportError } from './export/registry';
import { OnnxGraph } from './graph';
import { OnnxCaptionModel, findOnnxExport, loadOnnxCaptioner } from './runtime';
import { maxAbsDiff } from './ort.test-util';

/** Max abs difference relative to the largest magnitude (at least 1). */
function relativeDiff(expected: ArrayLike<number>, found: ArrayLike<number>): number {
  let scale = 1;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  return maxAbsDiff(expected, found) / scale;
}

/** A preset at toy sizes, keeping what it switches on (views, enhancers, fusion, category head, decoder type). */
function smallPreset(name: PresetName): S2CPNetConfig {
  const c = presetConfig(name);
  const encoder =
    name === 'lite'
      ? { type: 'mobilenet-v1', width: 0.25, inputSize: 64, grid: 'native', freeze: 'all' }
      : { type: 'resnet50', strideOn: '3x3', inputSize: 64, grid: 4, blocksPerStage: [1, 1, 1, 1], baseWidth: 4, freeze: 'none' };
  return {
    ...c,
    encoder,
    spatialEnhancer: c.spatialEnhancer ? { ...c.spatialEnhancer, outputChannels: 24 } : null,
    fusion: { ...c.fusion, dim: 32, heads: 4, units: 2 },
    categoryHead: c.categoryHead ? { ...c.categoryHead, dim: 32, numHeads: 4 } : null,
    captionDecoder: { ...c.captionDecoder, dim: 32, numLayers: 2, numHeads: 4, maxLength: 12 },
  };
}

const WORDS = 'a road river tree house car green field many some beside'.split(' ');
const CLASSES = ['road', 'river', 'tree', 'house'];

function vocabulary(): Vocabulary {
  return Vocabulary.build({ images: [{ id: '1', file: '1', split: 'train', jsonPath: '$', captions: [{ raw: '', tokens: [...WORDS] }] }] }, { minWordFreq: 1 });
}

/** Moves the decoder's and category head's weights so that random models give varied (not tied) outputs. */
function perturb(model: ReturnType<typeof buildS2CPNet>, seed: number): void {
  model.namedWeights().forEach(({ path: name, variable }, i) => {
    const value = variable.read();
    if (value.size < 2 || !/^(captionDecoder|categoryHead)\//.test(name)) return;
    const next = tf.tidy(() => {
      const scale = tf.mul(tf.add(tf.sqrt(tf.mean(tf.square(value))), 0.05), 0.5);
      const moved = tf.add(value, tf.mul(tf.randomNormal(value.shape, 0, 1, 'float32', seed + i), scale));
      return /variance/i.test(name) ? tf.add(tf.abs(moved), 0.1) : moved;
    });
    variable.write(next);
    next.dispose();
  });
}

describe('ONNX export of every preset', () => {
  let dir: string;
  beforeAll(async () => {
    await useBackend('cpu');
    dir = mkdtempSync(path.join(tmpdir(), 's2cp-onnx-presets-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const name of PRESET_NAMES) {
    it(`${name}: the encoder graph gives the memory keys/values and category logits, and decoding the same captions`, async () => {
      const words = vocabulary();
      const model = buildS2CPNet(smallPreset(name), { vocabSize: words.size, numClasses: CLASSES.length });
      perturb(model, 7);
      const ck = path.join(dir, name);
      try {
        await saveCheckpoint(ck, { model, vocabulary: words, classNames: CLASSES, masks: { provider: 'felzenszwalb', precomputed: false, workingSize: 64 } });
      } finally {
        model.dispose();
      }
      const checkpoint = await loadCheckpoint(ck);
      const onnxDir = path.join(ck, 'onnx');
      await exportOnnx(checkpoint, onnxDir);
      const onnx = await OnnxCaptionModel.load(onnxDir, { threads: 1 });
      try {
        const s = checkpoint.model.inputSize;
        // one warm-up pass: layers create their cached constants (position tables, folded weights) on first use
        tf.tidy(() => {
          const warm = tf.zeros([1, s, s, 3]) as tf.Tensor4D;
          captionBatch(checkpoint.model, { images: warm, masks: checkpoint.model.config.useMaskView ? warm : undefined }, words, CLASSES, { maxLength: 2 });
        });
        const tensorsBefore = tf.memory().numTensors;
        const images = tf.randomUniform([3, s, s, 3], -1, 1, 'float32', 11) as tf.Tensor4D;
        const masks = checkpoint.model.config.useMaskView ? (tf.randomUniform([3, s, s, 3], -1, 1, 'float32', 12) as tf.Tensor4D) : undefined;
        const encoded = await onnx.encode(images.dataSync() as Float32Array, masks ? (masks.dataSync() as Float32Array) : null, 3);
        // the tfjs side: memory, its keys/values as initState projects them, the category logits
        const memory = checkpoint.model.memory({ images, masks }, { training: false });
        const state = checkpoint.model.captionDecoder.initState(memory) as { memoryKeyValues: { keys: tf.Tensor; values: tf.Tensor }[] };
        state.memoryKeyValues.forEach((kv, l) => {
          expect(relativeDiff(kv.keys.dataSync(), encoded.memoryKeys[l]!)).toBeLessThan(1e-4);
          expect(relativeDiff(kv.values.dataSync(), encoded.memoryValues[l]!)).toBeLessThan(1e-4);
        });
        checkpoint.model.captionDecoder.disposeState(state as never);
        if (checkpoint.model.categoryHead) {
          const logits = checkpoint.model.categoryHead.logits(memory, { training: false });
          expect(relativeDiff(logits.dataSync(), encoded.categoryLogits!)).toBeLessThan(1e-4);
          logits.dispose();
        } else expect(encoded.categoryLogits).toBeNull();
        memory.dispose();

        const said: string[] = [];
        const variants = [
          { beamSize: 1 },
          { beamSize: 3 },
          // the other decoding settings, once per preset family is enough: a length penalty, a minimum length, more ids suppressed
          ...(name === 's2cpnet' || name === 'baseline1' ? [{ beamSize: 4, lengthPenalty: 0.7, minLength: 4, suppressIds: [1, 5, 9] }] : []),
        ];
        for (const variant of variants) {
          const options = { maxLength: 10, returnAttention: true, ...variant };
          const expected = captionBatch(checkpoint.model, { images, masks }, words, CLASSES, options);
          const found = await onnx.captionBatch(images.dataSync() as Float32Array, masks ? (masks.dataSync() as Float32Array) : null, 3, options);
          expect(found.map((r) => r.caption)).toEqual(expected.map((r) => r.caption));
          said.push(...expected.map((r) => r.caption).filter((c) => c.length > 0));
          expected.forEach((e, i) => {
            expect(found[i]!.categories.map((c) => c.name)).toEqual(e.categories.map((c) => c.name));
            expect(found[i]!.attention!.length).toBe(e.attention.length);
            e.attention.forEach((a, w) => expect(maxAbsDiff(a.weights, found[i]!.attention![w]!.weights)).toBeLessThan(1e-4));
          });
        }
        // the comparison means something only when the model says words
        expect(said.length).toBeGreaterThan(0);
        tf.dispose([images, ...(masks ? [masks] : [])]);
        expect(tf.memory().numTensors - tensorsBefore).toBe(0);
      } finally {
        await onnx.dispose();
        checkpoint.model.dispose();
      }
    });
  }
});

describe('loadOnnxCaptioner', () => {
  let dir: string;
  beforeAll(async () => {
    await useBackend('cpu');
    dir = mkdtempSync(path.join(tmpdir(), 's2cp-onnx-captioner-'));
    await saveTinyCheckpoint(path.join(dir, 'ck'), { seed: 3, classNames: ['road', 'river', 'tree'] });
    const checkpoint = await loadCheckpoint(path.join(dir, 'ck'));
    try {
      await exportOnnx(checkpoint, path.join(dir, 'ck', 'onnx'));
    } finally {
      checkpoint.model.dispose();
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const images = () =>
    [0, 1, 2].map((k) => {
      const width = 40 + 8 * k;
      const height = 48;
      const data = new Uint8Array(width * height * 3);
      for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 3;
        data[i] = (x * (k + 3) + y * 7) % 256;
        data[i + 1] = x < width / 2 ? 200 : 30;
        data[i + 2] = (y * 11 + k * 50) % 256;
      }
      return { width, height, data };
    });

  it('gives the tfjs captioner\'s captions and categories, masks computed the same way', async () => {
    const options = { cacheDir: false as const, beam: 3, attention: true };
    const tfjs = await loadCaptioner(path.join(dir, 'ck'), { ...options, backend: 'cpu' });
    const onnx = await loadOnnxCaptioner(path.join(dir, 'ck'), { ...options, threads: 1 });
    try {
      expect(onnx.runtime).toBe('onnx');
      expect(onnx.backend).toBe('onnxruntime-cpu');
      expect(onnx.maskSize).toBe(tfjs.maskSize);
      const a = await tfjs.caption(images());
      const b = await onnx.caption(images());
      expect(b.map((r) => r.caption)).toEqual(a.map((r) => r.caption));
      b.forEach((r, i) => {
        expect(r.grid).toBe(a[i]!.grid);
        expect(r.categories.map((c) => c.name)).toEqual(a[i]!.categories.map((c) => c.name));
        r.categories.forEach((c, j) => expect(Math.abs(c.probability - a[i]!.categories[j]!.probability)).toBeLessThan(1e-4));
      });
    } finally {
      tfjs.dispose();
      onnx.dispose();
    }
  });

  it('finds the export in a checkpoint folder\'s onnx/ and refuses a changed file, naming it', async () => {
    expect(findOnnxExport(path.join(dir, 'ck'))).toBe(path.join(dir, 'ck', 'onnx'));
    expect(findOnnxExport(path.join(dir, 'ck', 'onnx'))).toBe(path.join(dir, 'ck', 'onnx'));
    expect(findOnnxExport(dir)).toBeNull();
    const copy = path.join(dir, 'damaged');
    await fsp.cp(path.join(dir, 'ck', 'onnx'), copy, { recursive: true });
    const file = path.join(copy, ONNX_FILES.decoderStep);
    const bytes = await fsp.readFile(file);
    bytes[bytes.length - 5] ^= 0xff;
    await fsp.writeFile(file, bytes);
    await expect(OnnxCaptionModel.load(copy)).rejects.toThrow(/decoder-step\.onnx: sha256 [0-9a-f]{64} does not match the manifest's/);
    await expect(OnnxCaptionModel.load(dir)).rejects.toThrow(/no ONNX export found .*s2cpnet export --checkpoint .* --format onnx/);
  });

  it('writes the folder whole: an export that fails leaves no folder behind', async () => {
    const checkpoint = await loadCheckpoint(path.join(dir, 'ck'));
    const target = path.join(dir, 'never');
    try {
      const fusion = checkpoint.model.fusion as unknown as { getClassName: () => string };
      const original = fusion.getClassName;
      fusion.getClassName = () => 'MyOwnFusion';
      try {
        await expect(exportOnnx(checkpoint, target)).rejects.toThrow(NoOnnxExportError);
      } finally {
        fusion.getClassName = original;
      }
    } finally {
      checkpoint.model.dispose();
    }
    await expect(fsp.access(target)).rejects.toThrow();
    expect((await fsp.readdir(dir)).filter((n) => n.includes('never'))).toEqual([]);
  });
});

describe('exporter lookup', () => {
  it('names the kind and type of a component without an exporter, and how to add one', () => {
    const layer = { getClassName: () => 'MaxFusion' };
    expect(() => exporterFor('fusion', layer)).toThrow(NoOnnxExportError);
    expect(() => exporterFor('fusion', layer)).toThrow(/no ONNX export for fusion type "MaxFusion".*exportOnnx.*registerOnnxExporter\('fusion', 'MaxFusion'/);
  });

  it('uses a component\'s own exportOnnx hook', () => {
    const layer = {
      getClassName: () => 'MaxFusion',
      exportOnnx(g: OnnxGraph, imageTokens: string, maskTokens: string | null) {
        return g.op('Max', [imageTokens, maskTokens!]);
      },
    };
    const g = new OnnxGraph('hook');
    const a = g.input('a', 'float32', [1, 2, 3]);
    const b = g.input('b', 'float32', [1, 2, 3]);
    const out = exporterFor('fusion', layer)(g, layer, a, b);
    expect(out).toMatch(/max/);
    expect(g.nodeCount).toBe(1);
  });
});
