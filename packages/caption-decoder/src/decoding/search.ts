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
 * `runTfjsSearch` reading each step's log-probabilities asynchronously: the form for GPU backends (webgpu has no
 * synchronous reads under Node), and as exact as the synchronous one on every backend.
 */
export async function runTfjsSearchAsync<State, Result>(decoder: CaptionDecoder<State>, memory: tf.Tensor3D, returnAttention: boolean, search: Search<Result>): Promise<Result> {
  const stepper = tfjsStepper(decoder, memory, returnAttention);
  try {
    return await runSearchAsync(search, stepper.stepAsync);
  } finally {
    stepper.dispose();
  }
}

/**
 * The step functions of a tfjs `CaptionDecoder` over `memory`, synchronous (`step`) and asynchronous (`stepAsync`,
 * which reads with `await data()`): it owns the decoder state and frees it in `dispose` (call it in a `finally`).
 */
export function tfjsStepper<State>(
  decoder: CaptionDecoder<State>,
  memory: tf.Tensor3D,
  returnAttention: boolean,
): { step: (request: StepRequest) => StepAnswer; stepAsync: (request: StepRequest) => Promise<StepAnswer>; dispose: () => void } {
  let state = decoder.initState(memory);
  /** Feeds one step; returns the tensors to read (the caller disposes them). */
  const advance = (request: StepRequest): { logProbs: tf.Tensor; attention: tf.Tensor | null } => {
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
    out.logits.dispose();
    return { logProbs, attention: out.attention ?? null };
  };
  return {
    step(request) {
      const { logProbs, attention } = advance(request);
      try {
        return {
          logProbs: logProbs.dataSync() as Float32Array,
          attention: attention ? (attention.dataSync() as Float32Array) : null,
          memoryTokens: attention ? attention.shape[1]! : 0,
        };
      } finally {
        tf.dispose([logProbs, ...(attention ? [attention] : [])]);
      }
    },
    async stepAsync(request) {
      const { logProbs, attention } = advance(request);
      try {
        const [values, weights] = await Promise.all([logProbs.data(), attention ? attention.data() : Promise.resolve(null)]);
        return { logProbs: values as Float32Array, attention: weights as Float32Array | null, memoryTokens: attention ? attention.shape[1]! : 0 };
      } finally {
        tf.dispose([logProbs, ...(attention ? [attention] : [])]);
      }
    },
    dispose() {
      decoder.disposeState(state);
    },
  };
}
