import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp, rmSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { S2CPNetError, SeededRng } from '@s2cpnet/core';
import { useBackend } from '@s2cpnet/core/testing';
import { CiderDScorer, computeCiderD, tokenizeItems } from '@s2cpnet/metrics';
import { loadCheckpoint } from './checkpoint';
import { buildS2CPNet } from './s2cpnet';
import {
  captionRewards,
  greedyBaseline,
  meanOfOthersBaseline,
  policyGradientLoss,
  resolveScstOptions,
  sampleCaptions,
  sampledSequences,
  type SampledCaption,
} from './scst';
import { train, type TrainOptions } from './train';
import { tinyConfig, tinyPreparedDataset } from './testing/tiny';
import { trainFailure } from './train.test-util';

let root = '';
let preparedDir = '';

beforeAll(async () => {
  await useBackend('wasm');
  ({ root, prepared: preparedDir } = await tinyPreparedDataset(40));
}, 120_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('policyGradientLoss', () => {
  it('matches a float64 reference, value and gradient w.r.t. the logits, with suppressed ids', async () => {
    await useBackend('cpu');
    try {
      const [rows, length, vocab] = [3, 4, 6];
      const rng = new SeededRng(11);
      const z = Array.from({ length: rows * length * vocab }, () => rng.uniform(-3, 3));
      const targets = [2, 4, 5, 0, 3, 2, 0, 0, 5, 5, 4, 2];
      const mask = [1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1];
      const advantages = [0.7, -1.3, 0.25];
      const suppress = [1];
      // float64 reference: log p over the allowed ids, loss and d loss / d z = -(a_r m_rt / R) (onehot - softmax).
      let loss = 0;
      const grad = new Float64Array(z.length);
      for (let r = 0; r < rows; r++) {
        for (let t = 0; t < length; t++) {
          const o = (r * length + t) * vocab;
          const allowed = (v: number) => !suppress.includes(v);
          let max = -Infinity;
          for (let v = 0; v < vocab; v++) if (allowed(v)) max = Math.max(max, z[o + v]!);
          let total = 0;
          for (let v = 0; v < vocab; v++) if (allowed(v)) total += Math.exp(z[o + v]! - max);
          const logZ = max + Math.log(total);
          const m = mask[r * length + t]!;
          const y = targets[r * length + t]!;
          loss += (-advantages[r]! * m * (z[o + y]! - logZ)) / rows;
          for (let v = 0; v < vocab; v++) {
            const p = allowed(v) ? Math.exp(z[o + v]! - logZ) : 0;
            grad[o + v] = (-advantages[r]! * m * ((v === y ? 1 : 0) - p)) / rows;
          }
        }
      }
      const logits = tf.tensor3d(z, [rows, length, vocab]);
      const t = tf.tensor2d(targets, [rows, length], 'int32');
      const m = tf.tensor2d(mask, [rows, length]);
      const a = tf.tensor1d(advantages);
      const before = tf.memory().numTensors;
      const { value, grad: g } = tf.valueAndGrad((x: tf.Tensor) => policyGradientLoss(x as tf.Tensor3D, t, m, a, suppress))(logits);
      expect(value.dataSync()[0]!).toBeCloseTo(loss, 5);
      const got = g.dataSync();
      let worst = 0;
      for (let i = 0; i < grad.length; i++) worst = Math.max(worst, Math.abs(got[i]! - grad[i]!));
      expect(worst).toBeLessThan(1e-6);
      tf.dispose([value, g]);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([logits, t, m, a]);
    } finally {
      await useBackend('wasm');
    }
  });

  it('teacher-forcing tensors of samples: <end> counted when generated, masked after', () => {
    const samples: SampledCaption[] = [
      { tokens: [5, 6], finished: true },
      { tokens: [7, 8, 9], finished: false },
      { tokens: [], finished: true },
    ];
    const s = sampledSequences(samples, 1, 2);
    expect(s.length).toBe(3);
    // as in cross-entropy rows, a generated <end> is also an input (to masked positions only)
    expect(Array.from(s.inputs)).toEqual([1, 5, 6, 1, 7, 8, 1, 2, 0]);
    expect(Array.from(s.targets)).toEqual([5, 6, 2, 7, 8, 9, 2, 0, 0]);
    expect(Array.from(s.mask)).toEqual([1, 1, 1, 1, 1, 1, 1, 0, 0]);
  });
});

describe('rewards and baselines', () => {
  const corpus = [
    { imageId: 'a', references: ['A red car is parked beside the road.', 'a car beside a road'] },
    { imageId: 'b', references: ['many green trees surround a white house', 'a house among trees'] },
    { imageId: 'c', references: ['a river runs through the green field', 'a river and a field'] },
  ];
  const wordList = ['<pad>', '<start>', '<end>', '<unk>', 'a', 'red', 'car', 'road', 'the', 'beside', 'house', 'green', 'trees', 'river'];
  const words = { startId: 1, endId: 2, padId: 0, unknownId: 3, wordOf: (id: number) => wordList[id]! };

  it('the reward of each sample is the corpus CIDEr-D of that caption for its image', () => {
    const scorer = new CiderDScorer(corpus);
    const samples: SampledCaption[] = [
      { tokens: [4, 5, 6, 9, 8, 7], finished: true },
      { tokens: [4, 6], finished: false },
      { tokens: [4, 10, 11, 12], finished: true },
      { tokens: [13, 13, 13], finished: true },
    ];
    const imageIds = ['a', 'b'];
    const rewards = captionRewards(scorer, imageIds, samples, 2, words);
    samples.forEach((sample, row) => {
      const image = Math.floor(row / 2);
      const candidate = sample.tokens.map(words.wordOf).join(' ');
      const items = tokenizeItems(corpus.map((s, i) => ({ imageId: s.imageId, candidate: i === image ? candidate : '', references: s.references })));
      expect(rewards[row]).toBe(computeCiderD(items).perImage[image]);
    });
    expect(rewards[0]).toBeGreaterThan(rewards[1]!);
    expect(rewards[0]).toBeGreaterThan(1);
  });

  it('mean-of-others and greedy baselines', () => {
    const rewards = [1, 2, 3, 0.5, 0.5, 2];
    expect(Array.from(meanOfOthersBaseline(rewards, 3))).toEqual([2.5, 2, 1.5, 1.25, 1.25, 0.5]);
    expect(Array.from(greedyBaseline([0.4, 1.5], 3))).toEqual([0.4, 0.4, 0.4, 1.5, 1.5, 1.5]);
    expect(() => meanOfOthersBaseline(rewards, 4)).toThrow(/k >= 2 dividing/);
    expect(() => resolveScstOptions({ samples: 1 })).toThrow(/mean baseline needs other samples/);
    expect(resolveScstOptions({})).toEqual({ samples: 5, baseline: 'mean', maxLength: 25 });
  });
});

describe('sampleCaptions', () => {
  it('is deterministic under its seed, never draws suppressed ids and stops at maxLength', async () => {
    const model = buildS2CPNet(tinyConfig('s2cpnet', 4), { vocabSize: 12, numClasses: 3 });
    const memory = tf.randomNormal([2, model.gridSize * model.gridSize, model.fusion.memoryWidth], 0, 3, 'float32', 5) as tf.Tensor3D;
    const options = { samples: 4, startId: 1, endId: 2, maxLength: 6, suppressIds: [0, 1, 3], seed: 9 };
    const before = tf.memory().numTensors;
    const a = await sampleCaptions(model.captionDecoder, memory, options);
    expect(tf.memory().numTensors).toBe(before);
    const b = await sampleCaptions(model.captionDecoder, memory, options);
    const c = await sampleCaptions(model.captionDecoder, memory, { ...options, seed: 10 });
    expect(a).toHaveLength(8);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    const more = await Promise.all([11, 12, 13].map((seed) => sampleCaptions(model.captionDecoder, memory, { ...options, seed })));
    const all = [a, c, ...more].flat();
    for (const s of all) {
      expect(s.tokens.length + (s.finished ? 1 : 0)).toBeLessThanOrEqual(6);
      if (!s.finished) expect(s.tokens).toHaveLength(6);
      for (const id of s.tokens) expect([0, 1, 2, 3]).not.toContain(id);
    }
    expect(new Set(all.flatMap((s) => s.tokens)).size).toBeGreaterThan(4); // really sampled, not one argmax
    memory.dispose();
    model.dispose();
  });
});

describe('train with objective scst', () => {
  // A frozen backbone: features are cached, so the test spends its time on the decoder.
  const config = () => {
    const c = tinyConfig('s2cpnet', 3);
    return { ...c, encoder: { ...c.encoder, freeze: 'all' as const } };
  };
  let ceDir = '';

  beforeAll(async () => {
    const ce = await train({ data: preparedDir, runDir: path.join(root, 'ce'), config: config(), batchSize: 8, learningRate: 3e-3, maxEpochs: 20, validation: { maxImages: 2 } });
    ce.model.dispose();
    ceDir = ce.lastDir;
  }, 120_000);

  const scstOptions = async (runDir: string): Promise<TrainOptions> => ({
    data: preparedDir,
    runDir: path.join(root, runDir),
    config: config(),
    objective: 'scst',
    scst: { samples: 5, baseline: 'mean', maxLength: 16 },
    initFrom: await loadCheckpoint(ceDir),
    batchSize: 8,
    learningRate: 2e-3,
    schedule: { factor: 1, patience: 1000, stopPatience: 1000 },
    validation: { maxImages: 2 },
  });

  it('needs a model to fine-tune', async () => {
    const { initFrom: _, ...options } = await scstOptions('no-init');
    const error = await trainFailure(options);
    expect(error.message).toMatch(/scst fine-tunes a cross-entropy model.*--init-from/);
  });

  it('raises the mean sampled reward on the synthetic set within 120 steps', async () => {
    const rewards: number[] = [];
    const result = await train({ ...(await scstOptions('scst')), maxEpochs: 30, onProgress: (p) => void rewards.push(p.reward!) });
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    const first = mean(rewards.slice(0, 20));
    const last = mean(rewards.slice(-20));
    expect(rewards).toHaveLength(120);
    expect(last).toBeGreaterThan(first * 1.5);
    expect(last - first).toBeGreaterThan(0.1);
    const log = (await fsp.readFile(path.join(root, 'scst', 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(log).toHaveLength(30);
    expect(log[0].objective).toBe('scst');
    expect(log[0].trainReward).toBeGreaterThan(0);
    expect(log[0].trainBaseline).toBeCloseTo(log[0].trainReward, 9); // mean of others: same mean
    expect(log[0].val.CIDEr).toBeGreaterThanOrEqual(0);
    // best/ is chosen on val CIDEr
    expect(result.bestScore).toBe(Math.max(...log.map((r) => r.val.CIDEr)));
    result.model.dispose();
  }, 120_000);

  it('an interrupted SCST run resumed gives the same weights and history as an uninterrupted one', async () => {
    const straight = await train({ ...(await scstOptions('straight')), maxEpochs: 2 });
    const straightWeights = straight.model.namedWeights().map((w) => Array.from(w.variable.read().dataSync()));
    straight.model.dispose();
    const controller = new AbortController();
    let batches = 0;
    const interrupted = await train({
      ...(await scstOptions('resumed')),
      maxEpochs: 2,
      signal: controller.signal,
      onProgress: () => {
        batches += 1;
        if (batches === 3) controller.abort();
      },
    }).catch((e: unknown) => e);
    expect(S2CPNetError.isInstance(interrupted) && (interrupted as S2CPNetError).code).toBe('INTERRUPTED');
    const mismatch = await trainFailure({ ...(await scstOptions('resumed')), maxEpochs: 2, resume: true, scst: { samples: 4 } });
    expect(mismatch.message).toMatch(/cannot resume: the run's objective/);
    const resumed = await train({ ...(await scstOptions('resumed')), maxEpochs: 2, resume: true });
    expect(resumed.history.map((h) => [h.trainLoss, h.trainReward])).toEqual(straight.history.map((h) => [h.trainLoss, h.trainReward]));
    expect(resumed.model.namedWeights().map((w) => Array.from(w.variable.read().dataSync()))).toEqual(straightWeights);
    resumed.model.dispose();
  }, 120_000);
});
