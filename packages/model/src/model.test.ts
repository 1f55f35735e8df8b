import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp, rmSync, existsSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '@s2cpnet/core/testing';
import { CheckpointError, ConfigError, S2CPNetError } from '@s2cpnet/core';
import { loadPreparedDataset, type PreparedDataset } from '@s2cpnet/data';
import { PRESET_NAMES, type PresetName } from './presets';
import { presetConfig, validateConfig } from './config';
import { buildS2CPNet } from './s2cpnet';
import { saveCheckpoint, loadCheckpoint } from './checkpoint';
import { captionBatch } from './inference';
import { averageCheckpoints } from './average';
import { train } from './train';
import { loadEncoderWeights } from './encoder-weights';
import { tinyConfig, tinyPreparedDataset } from './testing/tiny';
import { sharedPath } from '../../../scripts/shared-dir';

let root = '';
let preparedDir = '';
let prepared: PreparedDataset;

beforeAll(async () => {
  await useBackend('wasm');
  ({ root, prepared: preparedDir } = await tinyPreparedDataset(40));
  prepared = await loadPreparedDataset(preparedDir);
}, 120_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

function randomBatch(b: number, c: number, t: number, vocab: number) {
  const images = tf.randomUniform([b, 64, 64, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
  const masks = tf.randomUniform([b, 64, 64, 3], -1, 1, 'float32', 2) as tf.Tensor4D;
  const ids = new Int32Array(b * c * t).map((_, i) => (i % t === 0 ? 1 : 4 + (i % (vocab - 4))));
  const captions = tf.tensor3d(ids, [b, c, t], 'int32');
  return { images, masks, captions };
}

describe('config validation', () => {
  it('accepts every preset', () => {
    for (const name of PRESET_NAMES) expect(validateConfig(presetConfig(name)).name).toBe(name);
  });

  it('names the JSON path of the first problem', () => {
    const bad = { ...presetConfig('s2cpnet'), fusion: { type: 'cvff', dim: '512' } };
    expect(() => validateConfig(bad, 'my.json')).toThrow(/my\.json: \$\.fusion\.dim: expected an integer >= 1, found "512"/);
    expect(() => validateConfig({ ...presetConfig('s2cpnet'), fusion: { type: 'single-view', dim: 8 } })).toThrow(/\$\.fusion\.type/);
    expect(() => validateConfig({ ...presetConfig('s2cpnet'), extra: 1 })).toThrow(/\$\.extra: unknown field/);
    expect(() => presetConfig('s2cpnet2')).toThrow(/unknown preset "s2cpnet2"; expected one of: baseline1/);
  });

  it('reports an unknown component type with the valid names', () => {
    const config = { ...tinyConfig('s2cpnet'), fusion: { type: 'cvf', dim: 32 } };
    const error = (() => {
      try {
        buildS2CPNet(config, { vocabSize: 20, numClasses: 4 });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(String((error as Error).message)).toMatch(/\$\.fusion\.type: unknown fusion type "cvf"; expected one of: "cvff"/);
  });
});

describe('every ablation preset builds and trains at tiny sizes', () => {
  for (const name of PRESET_NAMES.filter((n) => n !== 'lite') as PresetName[]) {
    it(name, () => {
      const before = tf.memory().numTensors;
      const model = buildS2CPNet(tinyConfig(name), { vocabSize: 30, numClasses: 6 });
      const created = tf.memory().numTensors;
      expect(model.namedWeights().length).toBe(model.weights.length);
      expect(Boolean(model.categoryHead)).toBe(presetConfig(name).categoryHead !== null);
      expect(Boolean(model.spatialEnhancer)).toBe(presetConfig(name).spatialEnhancer !== null);
      const { images, masks, captions } = randomBatch(2, 5, 6, 30);
      const categories = tf.tensor2d(new Float32Array(12).map((_, i) => i % 2), [2, 6]);
      const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
      const { value, grads } = tf.variableGrads(() => {
        const parts = model.loss({ images, masks, captions, categories }, { training: true, dropoutSeed: 1 });
        tf.dispose([parts.caption, ...(parts.category ? [parts.category] : [])]);
        return parts.total;
      }, vars);
      expect(Number.isFinite(value.dataSync()[0])).toBe(true);
      const zero = vars.filter((v) => !grads[v.name] || tf.tidy(() => tf.max(tf.abs(grads[v.name]!)).dataSync()[0]) === 0);
      // every weight receives a gradient (position tables of unused rows aside)
      expect(zero.map((v) => v.name).filter((n) => !/position/.test(n))).toEqual([]);
      tf.dispose([value, ...Object.values(grads), images, masks, captions, categories]);
      expect(tf.memory().numTensors).toBe(created);
      model.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});

describe('captionBatch', () => {
  it('never writes <unk>, <pad> or <start> by default, even when the model prefers them', () => {
    const vocabulary = prepared.vocabulary;
    const model = buildS2CPNet(tinyConfig('s2cpnet', 5), { vocabSize: vocabulary.size, numClasses: prepared.categories.classes.length });
    const bias = model.namedWeights().find((w) => w.path.endsWith('head/bias') && w.path.includes('captionDecoder'));
    expect(bias, 'caption decoder output bias').toBeDefined();
    // Make <unk> by far the most likely word at every step, <pad> second.
    const values = new Float32Array(vocabulary.size);
    values[vocabulary.unknownId] = 60;
    values[vocabulary.padId] = 50;
    values[vocabulary.startId] = 40;
    bias!.variable.write(tf.tensor1d(values));
    const { images, masks } = randomBatch(2, 1, 2, 10);
    for (const beamSize of [1, 3]) {
      const raw = captionBatch(model, { images, masks }, vocabulary, prepared.categories.classes, { beamSize, maxLength: 5, suppressIds: [] });
      expect(raw[0]!.tokens[0]).toBe(vocabulary.unknownId);
      const clean = captionBatch(model, { images, masks }, vocabulary, prepared.categories.classes, { beamSize, maxLength: 5 });
      for (const result of clean) {
        expect(result.tokens.length).toBeGreaterThan(0);
        for (const id of [vocabulary.unknownId, vocabulary.padId, vocabulary.startId]) expect(result.tokens).not.toContain(id);
        expect(result.caption).not.toMatch(/<unk>|<pad>|<start>/);
      }
    }
    tf.dispose([images, masks]);
    model.dispose();
  });
});

describe('checkpoints', () => {
  it('round-trips weights, vocabulary and classes; outputs are equal after loading', async () => {
    const model = buildS2CPNet(tinyConfig('s2cpnet', 11), { vocabSize: prepared.vocabulary.size, numClasses: prepared.categories.classes.length });
    const dir = path.join(root, 'ckpt-roundtrip');
    await saveCheckpoint(dir, { model, vocabulary: prepared.vocabulary, classNames: prepared.categories.classes });
    const loaded = await loadCheckpoint(dir);
    const { images, masks } = randomBatch(2, 1, 2, 10);
    const a = captionBatch(model, { images, masks }, prepared.vocabulary, prepared.categories.classes, { beamSize: 2, maxLength: 6 });
    const b = captionBatch(loaded.model, { images, masks }, loaded.vocabulary, loaded.classNames, { beamSize: 2, maxLength: 6 });
    expect(b.map((r) => r.tokens)).toEqual(a.map((r) => r.tokens));
    expect(b[0]!.logProb).toBeCloseTo(a[0]!.logProb, 5);
    expect(loaded.classNames).toEqual(prepared.categories.classes);
    tf.dispose([images, masks]);
    model.dispose();
    loaded.model.dispose();
  });

  it('rejects a checkpoint whose weights do not fit, naming the weight and both shapes', async () => {
    const model = buildS2CPNet(tinyConfig('s2cpnet', 11), { vocabSize: prepared.vocabulary.size, numClasses: prepared.categories.classes.length });
    const dir = path.join(root, 'ckpt-bad');
    await saveCheckpoint(dir, { model, vocabulary: prepared.vocabulary, classNames: prepared.categories.classes });
    const manifest = JSON.parse(await fsp.readFile(path.join(dir, 'checkpoint.json'), 'utf8'));
    manifest.config.captionDecoder.dim = 64;
    await fsp.writeFile(path.join(dir, 'checkpoint.json'), JSON.stringify(manifest));
    await expect(loadCheckpoint(dir)).rejects.toThrow(/weights do not fit the model:\n.*captionDecoder\/.*the model expects \[.*64.*\], the checkpoint has \[/s);
    model.dispose();
  });

  it('rejects a truncated weights file and another vocabulary', async () => {
    const model = buildS2CPNet(tinyConfig('baseline1', 11), { vocabSize: prepared.vocabulary.size, numClasses: 0 });
    const dir = path.join(root, 'ckpt-trunc');
    await saveCheckpoint(dir, { model, vocabulary: prepared.vocabulary, classNames: [] });
    const bin = await fsp.readFile(path.join(dir, 'weights.bin'));
    await fsp.writeFile(path.join(dir, 'weights.bin'), bin.subarray(0, bin.length - 8));
    await expect(loadCheckpoint(dir)).rejects.toThrow(/truncated or mismatched/);
    const manifest = JSON.parse(await fsp.readFile(path.join(dir, 'checkpoint.json'), 'utf8'));
    manifest.vocabSize += 5;
    await fsp.writeFile(path.join(dir, 'checkpoint.json'), JSON.stringify(manifest));
    const error = await loadCheckpoint(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointError);
    expect(String((error as Error).message)).toMatch(/checkpoint of another vocabulary/);
    await expect(loadCheckpoint(path.join(root, 'nope'))).rejects.toThrow(/no such folder/);
    model.dispose();
  });
});

describe('training', () => {
  const common = () => ({
    data: preparedDir,
    config: tinyConfig('s2cpnet', 5),
    batchSize: 8,
    learningRate: 2e-3,
    maxEpochs: 2,
    validation: { maxImages: 4 },
  });

  it('reduces the loss, writes last/ and best/ and a JSONL log', async () => {
    const runDir = path.join(root, 'run-plain');
    const result = await train({ ...common(), runDir, maxEpochs: 3 });
    expect(result.history).toHaveLength(3);
    expect(result.history[2]!.trainLoss).toBeLessThan(result.history[0]!.trainLoss);
    expect(existsSync(path.join(runDir, 'best', 'checkpoint.json'))).toBe(true);
    const log = (await fsp.readFile(path.join(runDir, 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(log.map((r) => r.epoch)).toEqual([1, 2, 3]);
    expect(log[0].val.METEOR).toBeGreaterThanOrEqual(0);
    // the training data's mask settings travel with the weights, so captioning makes masks the same way
    const written = JSON.parse(await fsp.readFile(path.join(runDir, 'best', 'checkpoint.json'), 'utf8'));
    expect(written.masks).toEqual({ provider: 'folder', precomputed: true, workingSize: null });
    const loaded = await loadCheckpoint(path.join(runDir, 'best'));
    expect(loaded.masks).toEqual(written.masks);
    loaded.model.dispose();
    result.model.dispose();
  });

  it('an interrupted run resumed with --resume ends with the same weights as an uninterrupted one', async () => {
    const straight = await train({ ...common(), runDir: path.join(root, 'run-straight') });
    const straightWeights = straight.model.namedWeights().map((w) => Array.from(w.variable.read().dataSync()));
    straight.model.dispose();

    const runDir = path.join(root, 'run-resumed');
    const controller = new AbortController();
    let batches = 0;
    const interrupted = await train({
      ...common(),
      runDir,
      signal: controller.signal,
      onProgress: () => {
        batches += 1;
        if (batches === 3) controller.abort(); // mid-way through epoch 1 (4 batches per epoch)
      },
    }).catch((e: unknown) => e);
    expect(S2CPNetError.isInstance(interrupted) && (interrupted as S2CPNetError).code).toBe('INTERRUPTED');
    const resumed = await train({ ...common(), runDir, resume: true });
    const resumedWeights = resumed.model.namedWeights().map((w) => Array.from(w.variable.read().dataSync()));
    expect(resumed.history.map((h) => h.trainLoss)).toEqual(straight.history.map((h) => h.trainLoss));
    expect(resumedWeights).toEqual(straightWeights);
    resumed.model.dispose();
  });

  it('keepEpochs keeps epoch-N weights; averaging them gives the per-weight mean and refuses other models', async () => {
    const runDir = path.join(root, 'run-keep');
    const result = await train({ ...common(), runDir, keepEpochs: true });
    result.model.dispose();
    for (const n of [1, 2]) {
      expect(existsSync(path.join(runDir, `epoch-${n}`, 'weights.bin'))).toBe(true);
      expect(existsSync(path.join(runDir, `epoch-${n}`, 'optimizer.bin'))).toBe(false);
    }
    const [one, two] = [await loadCheckpoint(path.join(runDir, 'epoch-1')), await loadCheckpoint(path.join(runDir, 'epoch-2'))];
    expect(one.training?.epoch).toBe(1);
    expect(two.training?.epoch).toBe(2);
    const values = (c: typeof one) => c.model.namedWeights().map((w) => Array.from(w.variable.read().dataSync()));
    const [a, b] = [values(one), values(two)];
    expect(a).not.toEqual(b);
    const averaged = averageCheckpoints([one, two]);
    expect(averaged).toBe(one);
    const mean = values(averaged);
    let compared = 0;
    mean.forEach((weight, i) => weight.forEach((v, j) => {
      expect(v).toBeCloseTo((a[i]![j]! + b[i]![j]!) / 2, 6);
      compared++;
    }));
    expect(compared).toBeGreaterThan(1000);
    expect(values(two)).toEqual(b); // the others are untouched

    const other = buildS2CPNet(tinyConfig('baseline1', 5), { vocabSize: prepared.vocabulary.size, numClasses: 0 });
    const otherDir = path.join(root, 'ckpt-other');
    await saveCheckpoint(otherDir, { model: other, vocabulary: prepared.vocabulary, classNames: [] });
    const loadedOther = await loadCheckpoint(otherDir);
    expect(() => averageCheckpoints([two, loadedOther])).toThrow(/ckpt-other: cannot average with .*epoch-2: the model configs differ/);
    for (const m of [one.model, two.model, other, loadedOther.model]) m.dispose();
  });
});

describe('pretrained encoder weights', () => {
  const shared = sharedPath('weights/mobilenet_v1_0.75_224/model.json') ? sharedPath('weights/mobilenet_v1_0.75_224') : undefined;

  it('reports a missing or unknown weights path clearly', async () => {
    const model = buildS2CPNet(tinyConfig('baseline1'), { vocabSize: 20, numClasses: 0 });
    await expect(loadEncoderWeights(model, { path: path.join(root, 'missing-weights') })).rejects.toThrow(/missing-weights: no such file or folder \(pretrained encoder weights\)/);
    await fsp.writeFile(path.join(root, 'weights.bin'), 'x');
    await expect(loadEncoderWeights(model, { path: path.join(root, 'weights.bin') })).rejects.toThrow(/unknown weight format/);
    expect(() => validateConfig({ ...presetConfig('lite'), encoderWeights: { path: 'w', format: 'onnx' } })).toThrow(/\$\.encoderWeights\.format/);
    model.dispose();
  });

  it.runIf(Boolean(shared))('the lite preset loads the pretrained MobileNetV1-0.75 into its shared backbone', async () => {
    const model = buildS2CPNet(presetConfig('lite'), { vocabSize: 20, numClasses: 4 });
    const stem = model.encoder.namedWeights()[0]!.variable;
    const before = Array.from(stem.read().dataSync());
    const report = await loadEncoderWeights(model, { path: shared! });
    expect(report.assignedVariables).toBeGreaterThan(50);
    const after = Array.from(stem.read().dataSync());
    expect(after).not.toEqual(before);
    expect(model.encoder.trainableWeights).toHaveLength(0); // lite freezes the backbone
    model.dispose();
  });
});
