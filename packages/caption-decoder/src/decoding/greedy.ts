import type * as tf from '@tensorflow/tfjs-core';
import type { CaptionDecoder } from '@s2cpnet/core';
import { runTfjsSearch, runTfjsSearchAsync, type Search } from './search';
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
  const checked = checkDecodeInputs('greedyDecode', decoder, memory, options);
  return runTfjsSearch(decoder, memory, checked.returnAttention, greedySearch(memory.shape[0], decoder.vocabSize, { ...options, ...checked }));
}

/** `greedyDecode` with asynchronous reads (the form for GPU backends such as webgpu); same results. */
export function greedyDecodeAsync<State>(decoder: CaptionDecoder<State>, memory: tf.Tensor3D, options: DecodeOptions): Promise<DecodedCaption[]> {
  const checked = checkDecodeInputs('greedyDecode', decoder, memory, options);
  return runTfjsSearchAsync(decoder, memory, checked.returnAttention, greedySearch(memory.shape[0], decoder.vocabSize, { ...options, ...checked }));
}

/**
 * Greedy decoding as a search generator over `batch` rows (see `Search`): the model-independent part of
 * `greedyDecode`, shared with other runtimes. `options` must already be checked (`checkSearchOptions`).
 */
export function* greedySearch(
  batch: number,
  vocab: number,
  options: DecodeOptions & { maxLength: number; returnAttention: boolean; suppressIds: readonly number[] },
): Search<DecodedCaption[]> {
  const { maxLength, suppressIds } = options;
  const results: DecodedCaption[] = Array.from({ length: batch }, () => ({ tokens: [], logProb: 0, score: 0, finished: false, attention: [] }));
  const done = new Array<boolean>(batch).fill(false);
  const current = new Int32Array(batch).fill(options.startId);
  for (let t = 0; t < maxLength && done.some((d) => !d); t++) {
    const answer = yield { reorder: null, tokens: current.slice() };
    const values = answer.logProbs;
    suppressTokens(values, vocab, suppressIds);
    const attention = answer.attention;
    const tokens = answer.memoryTokens;
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
  for (const result of results) result.score = result.logProb;
  return results;
}
