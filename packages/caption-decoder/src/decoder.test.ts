import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S2CPNetError } from '@s2cpnet/core';
import {
  checkWeightGradients,
  expectClose,
  expectGradientsMatch,
  expectNoLeaks,
  perturbWeights,
  randomTensor,
  randomTokens,
  reference64,
  testBackends,
  useBackend,
} from '@s2cpnet/core/testing';
import { TransformerCaptionDecoder, type CaptionDecoderState } from './decoder';
import { captionDecoderLayerTypes, type CaptionDecoderLayerType } from './config';
import { captionDecoderParameterCount } from './size';
import * as ref from './testing/reference64';

const sizes = { vocabSize: 13, memoryWidth: 6, dim: 8, numLayers: 2, numHeads: 2, ffnDim: 12, maxLength: 7 };
const images = 2;
const memoryTokens = 3;
const length = 5;

function makeDecoder(layerType: CaptionDecoderLayerType, dropout = 0, seed = 21): TransformerCaptionDecoder {
  const decoder = new TransformerCaptionDecoder({ ...sizes, layerType, dropout, seed });
  decoder.ensureBuilt([null, sizes.memoryWidth]);
  perturbWeights(decoder, seed + 1, 0.1);
  return decoder;
}

/** Runs the cached step path over every column of `tokens` and stacks the logits into [rows, T, V]. */
function stepThrough(decoder: TransformerCaptionDecoder, memory: tf.Tensor3D, tokens: tf.Tensor2D, rowsPerImage = 1): tf.Tensor3D {
  let state: CaptionDecoderState = decoder.initState(memory);
  if (rowsPerImage > 1) {
    const expand = tf.tensor1d(Array.from({ length: memory.shape[0] * rowsPerImage }, (_, i) => Math.floor(i / rowsPerImage)), 'int32');
    state = decoder.reorderState(state, expand);
    expand.dispose();
  }
  const columns = tf.unstack(tokens, 1) as tf.Tensor1D[];
  const logits: tf.Tensor2D[] = [];
  for (const column of columns) {
    const out = decoder.step(column, state);
    state = out.state;
    logits.push(out.logits);
  }
  decoder.disposeState(state);
  const stacked = tf.stack(logits, 1) as tf.Tensor3D;
  tf.dispose([...columns, ...logits]);
  return stacked;
}

for (const backend of testBackends()) {
  describe(`TransformerCaptionDecoder on ${backend}`, () => {
    let memory: tf.Tensor3D;
    let tokens: tf.Tensor2D;
    beforeAll(async () => {
      await useBackend(backend);
      memory = randomTensor([images, memoryTokens, sizes.memoryWidth], 4) as tf.Tensor3D;
      tokens = randomTokens(images, length, sizes.vocabSize, 5);
    });
    afterAll(() => tf.dispose([memory, tokens]));

    describe.each(captionDecoderLayerTypes)('%s layers', (layerType) => {
      let decoder: TransformerCaptionDecoder;
      beforeAll(() => {
        decoder = makeDecoder(layerType);
      });
      afterAll(() => decoder.dispose());

      it('matches the float64 equations (logits and every layer cross-attention)', () => {
        const { logits, attention } = expectNoLeaks(() => {
          const out = decoder.forward(memory, tokens, { returnAttention: true });
          const values = { logits: out.logits.arraySync(), attention: out.crossAttention!.map((a) => a.arraySync()) };
          tf.dispose([out.logits, ...out.crossAttention!]);
          return { logits: values.logits, attention: values.attention };
        });
        const weights = reference64.readWeights(decoder);
        const memoryRows = memory.arraySync();
        const tokenRows = tokens.arraySync();
        const shape = { layerType, dim: sizes.dim, numLayers: sizes.numLayers, numHeads: sizes.numHeads };
        for (let b = 0; b < images; b++) {
          const expected = ref.decoderForward(weights, shape, memoryRows[b]!, tokenRows[b]!);
          expectClose(logits[b]!.flat(), expected.logits.flat(), 1e-5);
          for (let l = 0; l < sizes.numLayers; l++) expectClose(attention[l]![b]!.flat(2), expected.crossAttention[l]!.flat(2), 1e-5);
        }
      });

      it('gives the same logits on the cached step path as teacher forcing (1e-5)', () => {
        const full = decoder.forward(memory, tokens).logits;
        const stepped = expectNoLeaks(() => {
          const s = stepThrough(decoder, memory, tokens);
          const values = s.dataSync().slice() as Float32Array;
          s.dispose();
          return values;
        });
        expectClose(stepped, full, 1e-5);
        full.dispose();
      });

      it('shares memory keys/values across captions of one image (captionsPerImage) exactly like tiling the memory', () => {
        const perImage = 3;
        const captions = randomTokens(images * perImage, length, sizes.vocabSize, 8);
        const shared = decoder.forward(memory, captions, { captionsPerImage: perImage, returnAttention: true });
        const tiled = tf.tidy(() => tf.reshape(tf.tile(tf.expandDims(memory, 1), [1, perImage, 1, 1]), [images * perImage, memoryTokens, -1]) as tf.Tensor3D);
        const reference = decoder.forward(tiled, captions, { returnAttention: true });
        expectClose(shared.logits, reference.logits, 1e-5);
        shared.crossAttention!.forEach((a, l) => expectClose(a, reference.crossAttention![l]!, 1e-5));
        // The step path with beams laid out per image gives the same logits too.
        const stepped = stepThrough(decoder, memory, captions, perImage);
        expectClose(stepped, reference.logits, 1e-5);
        tf.dispose([captions, tiled, stepped, shared.logits, reference.logits, ...shared.crossAttention!, ...reference.crossAttention!]);
      });

      it('reorders cached rows like reordering the captions (including across images)', () => {
        const prefix = tf.slice(tokens, [0, 0], [images, 2]) as tf.Tensor2D;
        let state = decoder.initState(memory);
        for (const column of tf.unstack(prefix, 1) as tf.Tensor1D[]) {
          const out = decoder.step(column, state);
          state = out.state;
          tf.dispose([out.logits, column]);
        }
        // rows: [image1, image0, image1]: the memory can no longer be shared per image and is gathered per row.
        const order = [1, 0, 1];
        const indices = tf.tensor1d(order, 'int32');
        state = decoder.reorderState(state, indices);
        expect(state.rows).toBe(3);
        expect(state.memoryItems).toBe(3);
        const nextWord = tf.tensor1d([3, 4, 5], 'int32');
        const out = decoder.step(nextWord, state, { returnAttention: true });
        decoder.disposeState(out.state);

        const reorderedMemory = tf.gather(memory, indices);
        const fullTokens = tf.concat([tf.gather(prefix, indices), tf.reshape(nextWord, [3, 1])], 1) as tf.Tensor2D;
        const full = decoder.forward(reorderedMemory as tf.Tensor3D, fullTokens, { returnAttention: true });
        const lastLogits = tf.squeeze(tf.slice(full.logits, [0, 2, 0], [3, 1, -1]), [1]);
        expectClose(out.logits, lastLogits, 1e-5);
        const lastAttention = tf.mean(tf.squeeze(tf.slice(full.crossAttention![sizes.numLayers - 1]!, [0, 0, 2, 0], [3, -1, 1, -1]), [2]), 1);
        expectClose(out.attention!, lastAttention, 1e-5);
        tf.dispose([prefix, indices, nextWord, out.logits, out.attention!, reorderedMemory, fullTokens, full.logits, ...full.crossAttention!, lastLogits, lastAttention]);
      });

      it('keeps the memory shared when rows stay within their image', () => {
        let state = decoder.initState(memory);
        const expand = tf.tensor1d([0, 0, 0, 1, 1, 1], 'int32');
        state = decoder.reorderState(state, expand);
        expect(state.memoryItems).toBe(images);
        const shuffle = tf.tensor1d([2, 0, 0, 5, 3, 3], 'int32');
        state = decoder.reorderState(state, shuffle);
        expect(state.memoryItems).toBe(images);
        expect(state.rows).toBe(6);
        decoder.disposeState(state);
        tf.dispose([expand, shuffle]);
      });

      it('has memory gradients that agree with finite differences', () => {
        const probe = randomTensor([images, length, sizes.vocabSize], 31);
        expectNoLeaks(() =>
          expectGradientsMatch((m) => tf.mul(decoder.forward(m as tf.Tensor3D, tokens).logits, probe), [memory], { label: `${layerType} decoder` }),
        );
        probe.dispose();
      });

      it('has weight gradients that agree with finite differences and reach every weight', () => {
        const probe = randomTensor([images, length, sizes.vocabSize], 32);
        // Single entries moved by 1e-3. Through two layers of FFN ReLUs a step sometimes lands near a kink, and the
        // float32 logits round at ~1e-3 of such a change, so a few percent is the honest floor here (the layer-level
        // checks are tighter); a wrong gradient is off by O(1).
        const result = expectNoLeaks(() =>
          checkWeightGradients(decoder, () => tf.mul(decoder.forward(memory, tokens).logits, probe), { eps: 1e-3, elementsPerWeight: 2 }),
        );
        expect(result.unreached).toEqual([]);
        expect(result.maxRelativeError, result.worstPath).toBeLessThan(5e-2);
        probe.dispose();
      });

      it('has as many parameters as the stated formula', () => {
        expect(decoder.countParams()).toBe(captionDecoderParameterCount({ ...sizes, layerType }));
        expect(decoder.countParams()).toBe(decoder.namedWeights().reduce((n, w) => n + w.variable.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0));
      });

      it('leaks no tensor in forward, step, reorder and dispose', () => {
        expectNoLeaks(() => {
          const out = decoder.forward(memory, tokens, { training: true, dropoutSeed: 3, returnAttention: true });
          tf.dispose([out.logits, ...out.crossAttention!]);
          let state = decoder.initState(memory);
          const start = tf.tensor1d([1, 1], 'int32');
          const step = decoder.step(start, state, { returnAttention: true });
          state = step.state;
          const indices = tf.tensor1d([1, 1, 0], 'int32');
          state = decoder.reorderState(state, indices);
          decoder.disposeState(state);
          tf.dispose([start, step.logits, step.attention!, indices]);
        });
      });
    });

    it('matches the parameter formula for other sizes (default FFN width, 1 layer, long positions)', () => {
      for (const layerType of captionDecoderLayerTypes) {
        const args = { vocabSize: 9, memoryWidth: 5, dim: 4, numLayers: 1, numHeads: 1, maxLength: 40, layerType };
        const decoder = new TransformerCaptionDecoder(args);
        decoder.ensureBuilt([null, 5]);
        expect(decoder.countParams()).toBe(captionDecoderParameterCount(args));
        decoder.dispose();
      }
    });

    describe('rejects bad inputs with the argument named', () => {
      let decoder: TransformerCaptionDecoder;
      beforeAll(() => {
        decoder = makeDecoder('gated');
      });
      afterAll(() => decoder.dispose());

      it('memory of the wrong width', () => {
        const bad = tf.zeros([2, 3, 5]) as tf.Tensor3D;
        expect(() => decoder.forward(bad, tokens)).toThrow(/memory.*width 6/);
        expect(() => decoder.initState(bad)).toThrow(/memory.*width 6/);
        bad.dispose();
      });

      it('float tokens, wrong caption rows, positions past maxLength', () => {
        const floatTokens = tf.zeros([2, 3]) as tf.Tensor2D;
        expect(() => decoder.forward(memory, floatTokens)).toThrow(/tokens.*int32/);
        expect(() => decoder.forward(memory, tokens, { captionsPerImage: 2 })).toThrow(/2 images x 2 captions = 4 rows, found 2/);
        const long = randomTokens(2, 8, sizes.vocabSize, 1);
        const error = (() => {
          try {
            decoder.forward(memory, long);
          } catch (e) {
            return e;
          }
          return null;
        })();
        expect(S2CPNetError.isInstance(error)).toBe(true);
        expect(String(error)).toMatch(/positions 0\.\.7 exceed maxLength 7/);
        tf.dispose([floatTokens, long]);
      });

      it('steps past maxLength, bad row counts and bad reorder indices', () => {
        expectNoLeaks(() => {
          let state = decoder.initState(memory);
          const word = tf.tensor1d([1, 2], 'int32');
          for (let t = 0; t < sizes.maxLength; t++) {
            const out = decoder.step(word, state);
            state = out.state;
            out.logits.dispose();
          }
          expect(() => decoder.step(word, state)).toThrow(/exceed maxLength 7/);
          const three = tf.tensor1d([1, 2, 3], 'int32');
          expect(() => decoder.step(three, state)).toThrow(/expected 2 rows/);
          const outside = tf.tensor1d([0, 2], 'int32');
          expect(() => decoder.reorderState(state, outside)).toThrow(/index 2 at 1 is outside 0\.\.1/);
          decoder.disposeState(state);
          tf.dispose([word, three, outside]);
        });
      });
    });
  });
}
