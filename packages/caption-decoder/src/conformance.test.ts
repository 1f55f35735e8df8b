/**
 * One conformance suite for every caption decoder in the factory map (timm-style: the whole registry is tested):
 * output shapes, gradients reach every trainable weight, config round trip through tfjs serialization, save/load
 * by weight path, no leaked tensors, determinism under a seed.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, S2CPNetError, registerCoreLayers, type S2Layer } from '@s2cpnet/core';
import { copyWeightsByPath, expectClose, expectNoLeaks, randomTensor, randomTokens, testBackends, useBackend } from '@s2cpnet/core/testing';
import { createCaptionDecoder, defaultCaptionDecoders, type CaptionDecoderComponent, type CaptionDecoderConfig } from './factory';
import { captionCrossEntropy } from './loss';
import { registerCaptionDecoderLayers } from './register';

const sizes = { vocabSize: 11, memoryWidth: 6, dim: 8, numLayers: 2, numHeads: 2, ffnDim: 12, maxLength: 8, dropout: 0.1 };
const images = 2;
const memoryTokens = 4;
const length = 5;

function maxAbsDifference(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

function rebuildFromConfig(layer: S2Layer): CaptionDecoderComponent {
  const className = layer.getClassName();
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[className];
  if (!entry) throw new Error(`${className} is not registered`);
  const [cls, fromConfig] = entry;
  const config = JSON.parse(JSON.stringify(layer.getConfig())) as tf.serialization.ConfigDict;
  return fromConfig(cls, config) as unknown as CaptionDecoderComponent;
}

for (const backend of testBackends()) {
  describe(`caption decoder conformance on ${backend}`, () => {
    let memory: tf.Tensor3D;
    let inputs: tf.Tensor2D;
    let targets: tf.Tensor2D;
    beforeAll(async () => {
      await useBackend(backend);
      registerCoreLayers();
      registerCaptionDecoderLayers();
      memory = randomTensor([images, memoryTokens, sizes.memoryWidth], 1) as tf.Tensor3D;
      inputs = randomTokens(images * 2, length, sizes.vocabSize, 2);
      targets = randomTokens(images * 2, length, sizes.vocabSize, 3, 0);
    });
    afterAll(() => tf.dispose([memory, inputs, targets]));

    describe.each(Object.keys(defaultCaptionDecoders) as CaptionDecoderConfig['type'][])('%s', (type) => {
      let decoder: CaptionDecoderComponent;
      beforeAll(() => {
        decoder = createCaptionDecoder({ type, ...sizes, seed: 5 });
        decoder.ensureBuilt([null, sizes.memoryWidth]);
      });
      afterAll(() => decoder.dispose());

      it('returns the documented shapes (teacher forcing with 2 captions per image, and one step)', () => {
        expectNoLeaks(() => {
          const out = decoder.forward(memory, inputs, { captionsPerImage: 2, returnAttention: true });
          expect(out.logits.shape).toEqual([images * 2, length, sizes.vocabSize]);
          expect(out.crossAttention!.map((a) => a.shape)).toEqual(Array(sizes.numLayers).fill([images * 2, sizes.numHeads, length, memoryTokens]));
          tf.dispose([out.logits, ...out.crossAttention!]);
          const state = decoder.initState(memory);
          const start = tf.tensor1d([1, 1], 'int32');
          const step = decoder.step(start, state, { returnAttention: true });
          expect(step.logits.shape).toEqual([images, sizes.vocabSize]);
          expect(step.attention!.shape).toEqual([images, memoryTokens]);
          const rowSums = tf.sum(step.attention!, 1);
          expectClose(rowSums, [1, 1], 1e-5);
          rowSums.dispose();
          decoder.disposeState(step.state);
          tf.dispose([start, step.logits, step.attention!]);
        });
      });

      it('sends gradients of the training loss to every trainable weight, without leaks', () => {
        const trainable = decoder.namedWeights().filter((w) => w.variable.trainable);
        expect(trainable.length).toBe(decoder.trainableWeights.length);
        expectNoLeaks(() => {
          const { value, grads } = tf.variableGrads(
            () =>
              captionCrossEntropy(
                decoder.forward(memory, inputs, { captionsPerImage: 2, training: true, dropoutSeed: 9 }).logits,
                targets,
                0,
                { labelSmoothing: 0.1 },
              ),
            trainable.map((w) => w.variable.read() as tf.Variable),
          );
          const silent = trainable.filter((w) => {
            const g = grads[(w.variable.read() as tf.Variable).name];
            // Attention key biases have zero gradient by construction (softmax ignores a shift shared by all keys).
            return !w.path.endsWith('key/bias') && (!g || tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]!) === 0);
          });
          expect(silent.map((w) => w.path)).toEqual([]);
          expect(Number.isFinite(value.dataSync()[0]!)).toBe(true);
          tf.dispose([value, grads]);
        });
      });

      it('round-trips its config through tfjs serialization (same config, same outputs)', () => {
        const rebuilt = rebuildFromConfig(decoder);
        expect(rebuilt.getConfig()).toEqual(decoder.getConfig());
        const a = decoder.forward(memory, inputs, { captionsPerImage: 2 }).logits;
        const b = rebuilt.forward(memory, inputs, { captionsPerImage: 2 }).logits;
        expectClose(a, b, 0);
        tf.dispose([a, b]);
        rebuilt.dispose();
      });

      it('saves and loads weights by path into a layer rebuilt from config with another seed', () => {
        const other = createCaptionDecoder({ ...(decoder.getConfig() as unknown as CaptionDecoderConfig), type, seed: 6 });
        const before = other.forward(memory, inputs, { captionsPerImage: 2 }).logits;
        const expected = decoder.forward(memory, inputs, { captionsPerImage: 2 }).logits;
        expect(maxAbsDifference(before, expected)).toBeGreaterThan(1e-3);
        expect(other.namedWeights().map((w) => w.path)).toEqual(decoder.namedWeights().map((w) => w.path));
        copyWeightsByPath(decoder, other);
        const after = other.forward(memory, inputs, { captionsPerImage: 2 }).logits;
        expectClose(after, expected, 0);
        tf.dispose([before, expected, after]);
        other.dispose();
      });

      it('is deterministic under its seed (weights and training-mode dropout)', () => {
        const twin = createCaptionDecoder({ type, ...sizes, seed: 5 });
        const stranger = createCaptionDecoder({ type, ...sizes, seed: 7 });
        const run = (d: CaptionDecoderComponent, dropoutSeed: number) =>
          d.forward(memory, inputs, { captionsPerImage: 2, training: true, dropoutSeed }).logits;
        const a = run(decoder, 1);
        const b = run(twin, 1);
        const c = run(decoder, 2);
        const d = run(stranger, 1);
        expectClose(a, b, 0);
        expect(maxAbsDifference(a, c)).toBeGreaterThan(1e-3);
        expect(maxAbsDifference(a, d)).toBeGreaterThan(1e-3);
        tf.dispose([a, b, c, d]);
        twin.dispose();
        stranger.dispose();
      });
    });

    it('rejects unknown types listing the valid ones, and bad sizes with their JSON path', () => {
      const unknown = () => createCaptionDecoder({ type: 'lstm', vocabSize: 5, memoryWidth: 4 } as unknown as CaptionDecoderConfig);
      expect(unknown).toThrow(ConfigError);
      expect(unknown).toThrow(/\$\.captionDecoder\.type: unknown caption decoder type "lstm"; expected one of: "gated", "plain", "gated-reference"/);
      expect(() => createCaptionDecoder({ type: 'gated', vocabSize: 5, memoryWidth: 4, dim: 10, numHeads: 4 })).toThrow(
        /\$\.captionDecoder\.numHeads: dim 10 must be divisible by numHeads 4/,
      );
      expect(() => createCaptionDecoder({ type: 'plain', vocabSize: 5, memoryWidth: 0 }, undefined, { jsonPath: '$.model.decoder' })).toThrow(
        /\$\.model\.decoder\.memoryWidth: expected a positive integer, found 0/,
      );
      try {
        createCaptionDecoder({ type: 'gated', vocabSize: 5, memoryWidth: 4, dropout: 1.5 });
      } catch (error) {
        expect(S2CPNetError.isInstance(error)).toBe(true);
      }
    });

    it('accepts a user factory next to the defaults', () => {
      let called = 0;
      const map = {
        ...defaultCaptionDecoders,
        tiny: (config: { type: 'tiny'; vocabSize: number }) => {
          called++;
          return defaultCaptionDecoders.plain({ type: 'plain', vocabSize: config.vocabSize, memoryWidth: 3, dim: 4, numHeads: 1, numLayers: 1 }, undefined);
        },
      };
      const decoder = createCaptionDecoder<CaptionDecoderConfig | { type: 'tiny'; vocabSize: number }>({ type: 'tiny', vocabSize: 7 }, map);
      expect(called).toBe(1);
      expect(decoder.vocabSize).toBe(7);
    });
  });
}
