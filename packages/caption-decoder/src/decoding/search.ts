import * as tf from '@tensorflow/tfjs-core';
import type { CaptionDecoder } from '@s2cpnet/core';

/**
 * What a search asks of the model at each step: optionally keep and reorder the rows of the cached state (row
 * `i` of the new state is row `reorder[i]` of the old one; the row count may change), then feed one token per row.
 */
export interface StepRequest {
  /** Rows to keep, in their new order, before feeding `tokens`; null keeps the state as it is. */
  reorder: Int32Array | null;
  /** One token id per row. */
  tokens: Int32Array;
}

/** What the model answers to a `StepRequest`. */
export interface StepAnswer {
  /** Next-token log-probabilities, [rows, vocab] row-major. The search may overwrite entries (suppressed ids). */
  logProbs: Float32Array;
  /** The last layer's cross-attention averaged over heads, [rows, memoryTokens] row-major, when requested. */
  attention: Float32Array | null;
  /** Memory tokens per attention row (0 without attention). */
  memoryTokens: number;
}

/**
 * A search as a generator: it yields `StepRequest`s, is resumed with the model's `StepAnswer`, and returns its
 * result. The same search code then runs over any model: a tfjs decoder synchronously (`runSearch`), or an ONNX
 * Runtime session, whose calls are asynchronous (`runSearchAsync`).
 */
export type Search<Result> = Generator<StepRequest, Result, StepAnswer>;

/** Drives a search with a synchronous step function. */
export function runSearch<Result>(search: Search<Result>, step: (request: StepRequest) => StepAnswer): Result {
  let next = search.next(undefined as never);
  while (!next.done) next = search.next(step(next.value));
  return next.value;
}

/** Drives a search with an asynchronous step function (e.g. ONNX Runtime's `session.run`). */
export async function runSearchAsync<Result>(search: Search<Result>, step: (request: StepRequest) => Promise<StepAnswer>): Promise<Result> {
  let next = search.next(undefined as never);
  while (!next.done) next = search.next(await step(next.value));
  return next.value;
}

/** Runs `search` over a tfjs decoder and `memory` (its state is freed whatever happens). */
export function runTfjsSearch<State, Result>(decoder: CaptionDecoder<State>, memory: tf.Tensor3D, returnAttention: boolean, search: Search<Result>): Result {
  const stepper = tfjsStepper(decoder, memory, returnAttention);
  try {
    return runSearch(search, stepper.step);
  } finally {
    stepper.dispose();
  }
}

/**
 * The synchronous step function of a tfjs `CaptionDecoder` over `memory`: it owns the decoder state and frees it
 * in `dispose` (call it in a `finally`).
 */
export function tfjsStepper<State>(
  decoder: CaptionDecoder<State>,
  memory: tf.Tensor3D,
  returnAttention: boolean,
): { step: (request: StepRequest) => StepAnswer; dispose: () => void } {
  let state = decoder.initState(memory);
  return {
    step(request) {
      if (request.reorder) {
        const indices = tf.tensor1d(request.reorder, 'int32');
        try {
          state = decoder.reorderState(state, indices);
        } finally {
          indices.dispose();
        }
      }
      const input = tf.tensor1d(request.tokens, 'int32');
      const out = decoder.step(input, state, { returnAttention });
      input.dispose();
      state = out.state;
      const logProbs = tf.tidy(() => tf.logSoftmax(out.logits, -1));
      const values = logProbs.dataSync() as Float32Array;
      const attention = out.attention ? (out.attention.dataSync() as Float32Array) : null;
      const memoryTokens = out.attention ? out.attention.shape[1] : 0;
      tf.dispose([logProbs, out.logits, ...(out.attention ? [out.attention] : [])]);
      return { logProbs: values, attention, memoryTokens };
    },
    dispose() {
      decoder.disposeState(state);
    },
  };
}
