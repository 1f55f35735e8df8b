/**
 * One conformance suite for every category head in the factory map: output shapes, gradients reach every
 * trainable weight, config round trip through tfjs serialization, save/load by weight path, no leaked tensors,
 * determinism under a seed.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, registerCoreLayers, type S2Layer } from '@s2cpnet/core';
import { copyWeightsByPath, expectClose, expectNoLeaks, randomTensor, testBackends, useBackend } from '@s2cpnet/core/testing';
import { createCategoryHead, defaultCategoryHeads, type CategoryHeadComponent, type CategoryHeadConfig } from './factory';
import { nounSequenceTargets } from './next-noun';
import { registerCategoryDecoderLayers } from './register';

const images = 2;
const memoryTokens = 4;
const memoryWidth = 6;
const configs: Record<CategoryHeadConfig['type'], CategoryHeadConfig> = {
  'multi-label': { type: 'multi-label', numClasses: 5, memoryWidth, dim: 8, numHeads: 2, ffnDim: 12, dropout: 0.1 },
  'next-noun': { type: 'next-noun', vocabSize: 9, memoryWidth, dim: 8, numHeads: 2, ffnDim: 12, numLayers: 1, maxNouns: 3, dropout: 0.1 },
};

/** Targets of the kind the head asks for, and the forward options that go with them. */
function targetsFor(head: CategoryHeadComponent): { targets: tf.Tensor2D; options: { nounTokens?: tf.Tensor2D } } {
  if (head.targetKind === 'multi-hot') {
    const targets = tf.tensor2d([[1, 0, 1, 0, 0], [0, 1, 1, 0, 1]]);
    return { targets, options: {} };
  }
  const targets = nounSequenceTargets([[5, 6], [7, 3, 4, 8]], { maxNouns: 3, endId: 2 });
  return { targets, options: { nounTokens: targets } };
}

function maxAbsDifference(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

function rebuildFromConfig(layer: S2Layer): CategoryHeadComponent {
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[layer.getClassName()];
  if (!entry) throw new Error(`${layer.getClassName()} is not registered`);
  const [cls, fromConfig] = entry;
  return fromConfig(cls, JSON.parse(JSON.stringify(layer.getConfig())) as tf.serialization.ConfigDict) as unknown as CategoryHeadComponent;
}

for (const backend of testBackends()) {
  describe(`category head conformance on ${backend}`, () => {
    let memory: tf.Tensor3D;
    beforeAll(async () => {
      await useBackend(backend);
      registerCoreLayers();
      registerCategoryDecoderLayers();
      memory = randomTensor([images, memoryTokens, memoryWidth], 1) as tf.Tensor3D;
    });
    afterAll(() => memory.dispose());

    describe.each(Object.keys(defaultCategoryHeads) as CategoryHeadConfig['type'][])('%s', (type) => {
      let head: CategoryHeadComponent;
      let targets: tf.Tensor2D;
      let options: { nounTokens?: tf.Tensor2D };
      beforeAll(() => {
        head = createCategoryHead({ ...configs[type], seed: 5 });
        head.ensureBuilt([null, memoryWidth]);
        ({ targets, options } = targetsFor(head));
      });
      afterAll(() => {
        targets.dispose();
        head.dispose();
      });

      it('returns [B, K] logits (K = classes, or steps x words for sequences) and a scalar loss', () => {
        expectNoLeaks(() => {
          const logits = head.logits(memory, options);
          const perImage = head.targetKind === 'multi-hot' ? head.numClasses : targets.shape[1] * head.numClasses;
          expect(logits.shape).toEqual([images, perImage]);
          const loss = head.loss(logits, targets);
          expect(loss.shape).toEqual([]);
          expect(Number.isFinite(loss.dataSync()[0]!)).toBe(true);
          tf.dispose([logits, loss]);
        });
      });

      it('sends gradients of the training loss to every trainable weight, without leaks', () => {
        const trainable = head.namedWeights().filter((w) => w.variable.trainable);
        expect(trainable.length).toBe(head.trainableWeights.length);
        expectNoLeaks(() => {
          const { value, grads } = tf.variableGrads(
            () => head.loss(head.logits(memory, { ...options, training: true, dropoutSeed: 3 }), targets),
            trainable.map((w) => w.variable.read() as tf.Variable),
          );
          const silent = trainable.filter((w) => {
            const g = grads[(w.variable.read() as tf.Variable).name];
            // Attention key biases have zero gradient by construction (softmax ignores a shift shared by all keys).
            return !w.path.endsWith('key/bias') && (!g || tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]!) === 0);
          });
          expect(silent.map((w) => w.path)).toEqual([]);
          tf.dispose([value, grads]);
        });
      });

      it('round-trips its config through tfjs serialization (same config, same outputs)', () => {
        const rebuilt = rebuildFromConfig(head);
        expect(rebuilt.getConfig()).toEqual(head.getConfig());
        const a = head.logits(memory, options);
        const b = rebuilt.logits(memory, options);
        expectClose(a, b, 0);
        tf.dispose([a, b]);
        rebuilt.dispose();
      });

      it('saves and loads weights by path into a head rebuilt from config with another seed', () => {
        const other = createCategoryHead({ ...(head.getConfig() as unknown as CategoryHeadConfig), type, seed: 6 });
        const before = other.logits(memory, options);
        const expected = head.logits(memory, options);
        expect(maxAbsDifference(before, expected)).toBeGreaterThan(1e-3);
        copyWeightsByPath(head, other);
        const after = other.logits(memory, options);
        expectClose(after, expected, 0);
        tf.dispose([before, expected, after]);
        other.dispose();
      });

      it('is deterministic under its seed (weights and training-mode dropout)', () => {
        const twin = createCategoryHead({ ...configs[type], seed: 5 });
        const stranger = createCategoryHead({ ...configs[type], seed: 8 });
        const run = (h: CategoryHeadComponent, dropoutSeed: number) => h.logits(memory, { ...options, training: true, dropoutSeed });
        const a = run(head, 1);
        const b = run(twin, 1);
        const c = run(head, 2);
        const d = run(stranger, 1);
        expectClose(a, b, 0);
        expect(maxAbsDifference(a, c)).toBeGreaterThan(1e-4);
        expect(maxAbsDifference(a, d)).toBeGreaterThan(1e-3);
        tf.dispose([a, b, c, d]);
        twin.dispose();
        stranger.dispose();
      });
    });

    it('rejects unknown types listing the valid ones, and bad sizes with their JSON path', () => {
      expect(() => createCategoryHead({ type: 'softmax' } as unknown as CategoryHeadConfig)).toThrow(ConfigError);
      expect(() => createCategoryHead({ type: 'softmax' } as unknown as CategoryHeadConfig)).toThrow(
        /\$\.categoryHead\.type: unknown category head type "softmax"; expected one of: "multi-label", "next-noun"/,
      );
      expect(() => createCategoryHead({ type: 'multi-label', numClasses: 0, memoryWidth: 4 })).toThrow(/\$\.categoryHead\.numClasses: expected a positive integer, found 0/);
      expect(() => createCategoryHead({ type: 'multi-label', numClasses: 3, memoryWidth: 4, classifier: 'x' as 'shared' })).toThrow(/\$\.categoryHead\.classifier/);
      expect(() => createCategoryHead({ type: 'next-noun', vocabSize: 5, memoryWidth: 4, endId: 9 }, undefined, { jsonPath: '$.model.nouns' })).toThrow(
        /\$\.model\.nouns\.endId: expected an id in 0\.\.4, found 9/,
      );
      expect(() => createCategoryHead({ type: 'next-noun', vocabSize: 5, memoryWidth: 4, endId: 1 })).toThrow(/must differ/);
    });
  });
}
