import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '@s2cpnet/core/testing';
import { loadPreparedDataset, prepareDataset, writeSyntheticAerialSet } from '@s2cpnet/data';
import { loadCheckpoint } from './checkpoint';
import { buildS2CPNet } from './s2cpnet';
import { train, type TrainOptions } from './train';
import { tinyConfig } from './testing/tiny';
import { trainFailure } from './train.test-util';

// Fine-tuning from a checkpoint (`--init-from`) and the checks made before the first epoch.

let root = '';
let small = '';
let large = '';
let noVal = '';
const MOVING = /moving_(mean|variance)/;

beforeAll(async () => {
  await useBackend('wasm');
  root = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-init-from-'));
  const set = await writeSyntheticAerialSet(path.join(root, 'synthetic'), { seed: 5, count: 30, size: 64 });
  const prepare = (outDir: string, minFreq: number) =>
    prepareDataset({ annotations: set.datasetFile, imagesDir: set.imagesDir, masksDir: set.masksDir, outDir, size: 64, minWordFreq: minFreq, minNounFreq: minFreq });
  // Same images: a small vocabulary (frequent words and nouns only) and the full one.
  small = path.join(root, 'small');
  large = path.join(root, 'large');
  await prepare(small, 8);
  await prepare(large, 1);
  const trainOnly = await writeSyntheticAerialSet(path.join(root, 'train-only'), { seed: 6, count: 12, size: 64, splits: { train: 1, val: 0, test: 0 } });
  noVal = path.join(root, 'no-val');
  await prepareDataset({ annotations: trainOnly.datasetFile, imagesDir: trainOnly.imagesDir, masksDir: trainOnly.masksDir, outDir: noVal, size: 64, minWordFreq: 1, minNounFreq: 1 });
}, 180_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

const common = (data: string, runDir: string): TrainOptions => ({
  data,
  runDir: path.join(root, runDir),
  config: tinyConfig('s2cpnet', 3),
  batchSize: 8,
  learningRate: 2e-3,
  maxEpochs: 1,
  validation: { maxImages: 2 },
});

const failure = trainFailure;

describe('train: before the first epoch', () => {
  it('an empty val split is an error naming the prepared folder, before any epoch', async () => {
    const epochs: unknown[] = [];
    const error = await failure({ ...common(noVal, 'no-val-run'), onEpoch: (e) => void epochs.push(e) });
    expect(error.code).toBe('INPUT');
    expect(error.message).toMatch(/no val images/);
    expect(error.message).toContain(noVal);
    expect(epochs).toHaveLength(0);
  });
});

describe('train: initFrom (fine-tuning a checkpoint)', () => {
  let checkpointDir = '';

  beforeAll(async () => {
    const first = await train(common(small, 'base'));
    first.model.dispose();
    checkpointDir = first.lastDir;
  }, 120_000);

  it('same data: the weights start as the checkpoint', async () => {
    const from = await loadCheckpoint(checkpointDir);
    // lr 0: one epoch leaves the weights as they were loaded (batch-norm statistics still move: not compared)
    const result = await train({ ...common(small, 'same'), initFrom: from, learningRate: 0 });
    const expected = from.model.namedWeights();
    const got = new Map(result.model.namedWeights().map((w) => [w.path, w.variable]));
    for (const { path: name, variable } of expected.filter((w) => !MOVING.test(w.path))) {
      expect(Array.from(got.get(name)!.read().dataSync()), name).toEqual(Array.from(variable.read().dataSync()));
    }
    expect(result.prepared.vocabulary.wordList).toEqual(from.vocabulary.wordList);
    result.model.dispose();
    from.model.dispose();
  }, 120_000);

  it('new words or noun classes are refused, naming how many and a few, unless extendVocabulary', async () => {
    const from = await loadCheckpoint(checkpointDir);
    const largeVocabulary = (await loadPreparedDataset(large)).vocabulary;
    const newWords = largeVocabulary.wordList.filter((w) => !from.vocabulary.has(w));
    expect(newWords.length).toBeGreaterThan(0);
    const refused = await failure({ ...common(large, 'refused'), initFrom: from });
    expect(refused.code).toBe('CONFIG');
    expect(refused.message).toContain(`${newWords.length} word${newWords.length === 1 ? '' : 's'} its vocabulary lacks`);
    expect(refused.message).toContain(JSON.stringify(newWords[0]));
    expect(refused.message).toMatch(/--extend-vocabulary/);

    const lines: string[] = [];
    const result = await train({ ...common(large, 'extended'), initFrom: from, extendVocabulary: true, learningRate: 0, log: (l) => void lines.push(l) });
    // The checkpoint's ids first, unchanged; the new words after them.
    expect(result.prepared.vocabulary.wordList).toEqual([...from.vocabulary.wordList, ...newWords]);
    expect(result.prepared.categories.classes.slice(0, from.classNames.length)).toEqual(from.classNames);
    expect(lines.join('\n')).toMatch(new RegExp(`${newWords.length} new words`));
    const got = new Map(result.model.namedWeights().map((w) => [w.path, w.variable]));
    let extended = 0;
    for (const { path: name, variable } of from.model.namedWeights().filter((w) => !MOVING.test(w.path))) {
      const now = got.get(name)!;
      const oldShape = variable.shape as number[];
      if (now.shape.every((d, i) => d === oldShape[i])) {
        expect(Array.from(now.read().dataSync()), name).toEqual(Array.from(variable.read().dataSync()));
      } else {
        extended += 1;
        const axis = now.shape.findIndex((d, i) => d !== oldShape[i]);
        const kept = tf.slice(now.read(), oldShape.map(() => 0), oldShape);
        expect(Array.from(kept.dataSync()), name).toEqual(Array.from(variable.read().dataSync()));
        kept.dispose();
        expect(now.shape[axis]).toBeGreaterThan(oldShape[axis]!);
      }
    }
    expect(extended).toBeGreaterThan(0);
    // A checkpoint of the fine-tuned run carries the extended vocabulary.
    const saved = await loadCheckpoint(result.lastDir);
    expect(saved.vocabulary.wordList).toEqual(result.prepared.vocabulary.wordList);
    saved.model.dispose();
    result.model.dispose();
    from.model.dispose();
  }, 180_000);
});

describe('train: partial fine-tuning of the backbone (encoder.trainableFrom, encoderLearningRate)', () => {
  const partialConfig = (): TrainOptions['config'] => ({
    ...tinyConfig('s2cpnet', 3),
    encoder: { type: 'mobilenet-v1', width: 0.25, inputSize: 64, grid: 'native', freeze: 'none', trainableFrom: 12 },
  });
  /** Which weights moved in a run, against a fresh build of the same config (the run's starting point). */
  async function moved(options: TrainOptions): Promise<{ changed: string[]; unchanged: string[] }> {
    const result = await train(options);
    const fresh = buildS2CPNet(options.config, { vocabSize: result.prepared.vocabulary.size, numClasses: result.prepared.categories.classes.length });
    const start = new Map(fresh.namedWeights().map((w) => [w.path, Array.from(w.variable.read().dataSync())]));
    const changed: string[] = [];
    const unchanged: string[] = [];
    for (const { path: name, variable } of result.model.namedWeights().filter((w) => !MOVING.test(w.path))) {
      const now = Array.from(variable.read().dataSync());
      (now.every((v, i) => v === start.get(name)![i]) ? unchanged : changed).push(name);
    }
    result.model.dispose();
    fresh.dispose();
    return { changed, unchanged };
  }

  it('trains the blocks from trainableFrom on (wasm gradients of depthwise and pointwise convs), never the stem or earlier blocks', async () => {
    const { changed, unchanged } = await moved({ ...common(small, 'partial'), config: partialConfig() });
    const encoderChanged = changed.filter((p) => p.startsWith('encoder/'));
    expect(encoderChanged.length).toBeGreaterThan(0);
    expect(encoderChanged.every((p) => /^encoder\/block1[23]\//.test(p))).toBe(true);
    expect(unchanged.filter((p) => /^encoder\/(stem|block([1-9]|1[01]))\//.test(p)).length).toBeGreaterThan(0);
    expect(changed.some((p) => p.startsWith('captionDecoder/'))).toBe(true);
  }, 120_000);

  it('encoderLearningRate gives the backbone its own rate: 0 keeps it, while the rest trains', async () => {
    const { changed } = await moved({ ...common(small, 'partial-lr0'), config: partialConfig(), encoderLearningRate: 0 });
    expect(changed.filter((p) => p.startsWith('encoder/'))).toEqual([]);
    expect(changed.some((p) => p.startsWith('captionDecoder/'))).toBe(true);
    const error = await failure({ ...common(small, 'partial-bad'), config: partialConfig(), encoderLearningRate: -1 });
    expect(error.message).toMatch(/--encoder-lr/);
  }, 120_000);

  it("caches the frozen part's features (block 11's output) and trains on them exactly as on pixels", async () => {
    const cached = await train({ ...common(small, 'partial-cached'), config: partialConfig() });
    const pixels = await train({ ...common(small, 'partial-pixels'), config: partialConfig(), featureCache: false });
    const features = path.join(root, 'partial-cached', 'features');
    expect(existsSync(features)).toBe(true);
    expect(existsSync(path.join(root, 'partial-pixels', 'features'))).toBe(false);
    const [folder] = readdirSync(features);
    expect(folder).toMatch(/trainableFrom/);
    expect(cached.history[0]!.trainLoss).toBeCloseTo(pixels.history[0]!.trainLoss, 4);
    const theirs = new Map(pixels.model.namedWeights().map((w) => [w.path, w.variable]));
    for (const { path: name, variable } of cached.model.namedWeights()) {
      const a = Array.from(variable.read().dataSync());
      const b = Array.from(theirs.get(name)!.read().dataSync());
      const scale = Math.max(1e-3, ...b.map(Math.abs));
      expect(Math.max(...a.map((v, i) => Math.abs(v - b[i]!))) / scale, name).toBeLessThan(1e-3);
    }
    cached.model.dispose();
    pixels.model.dispose();
    const error = await failure({ ...common(small, 'partial-cache'), config: { ...partialConfig(), encoder: { ...partialConfig().encoder, trainableFrom: undefined } }, featureCache: true });
    expect(error.message).toMatch(/fully frozen encoder .* or partial fine-tuning/);
  }, 120_000);
});
