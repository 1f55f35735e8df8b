import * as tf from '@tensorflow/tfjs-core';
import type { CaptionDecoder } from '@s2cpnet/core';
import { argMax, checkDecodeInputs, suppressTokens, type DecodedCaption, type DecodeOptions } from './types';

/**
 * Greedy decoding for a batch of images: at each step every unfinished caption takes its most probable next word
 * (the lowest id on ties). Runs on the decoder's cached step path, so each word costs one position.
 * `memory` [B,N,D] -> one caption per image. No tensor outlives the call.
 *
 * @example
 * ```ts
 * const [caption] = greedyDecode(decoder, memory, { startId: 1, endId: 2, maxLength: 25 });
 * console.log(caption.tokens, caption.logProb);
 * ```
 */
export function greedyDecode<State>(decoder: CaptionDecoder<State>, memory: tf.Tensor3D, options: DecodeOptions): DecodedCaption[] {
  const { maxLength, returnAttention, suppressIds } = checkDecodeInputs('greedyDecode', decoder, memory, options);
  const batch = memory.shape[0];
  const vocab = decoder.vocabSize;
  const results: DecodedCaption[] = Array.from({ length: batch }, () => ({ tokens: [], logProb: 0, score: 0, finished: false, attention: [] }));
  const done = new Array<boolean>(batch).fill(false);
  const current = new Int32Array(batch).fill(options.startId);
  let state = decoder.initState(memory);
  try {
    for (let t = 0; t < maxLength && done.some((d) => !d); t++) {
      const input = tf.tensor1d(current, 'int32');
      const step = decoder.step(input, state, { returnAttention });
      input.dispose();
      state = step.state;
      const logProbs = tf.tidy(() => tf.logSoftmax(step.logits, -1));
      const values = logProbs.dataSync() as Float32Array;
      suppressTokens(values, vocab, suppressIds);
      const attention = step.attention ? (step.attention.dataSync() as Float32Array) : null;
      const tokens = step.attention ? step.attention.shape[1] : 0;
      tf.dispose([logProbs, step.logits, step.attention ?? []]);
      for (let b = 0; b < batch; b++) {
        if (done[b]) continue;
        const word = argMax(values, b * vocab, vocab);
        const result = results[b]!;
        result.logProb += values[b * vocab + word]!;
        if (word === options.endId) {
          result.finished = true;
          done[b] = true;
        } else {
          result.tokens.push(word);
          if (attention) result.attention.push(attention.slice(b * tokens, (b + 1) * tokens));
        }
        current[b] = word;
      }
    }
  } finally {
    decoder.disposeState(state);
  }
  for (const result of results) result.score = result.logProb;
  return results;
}
