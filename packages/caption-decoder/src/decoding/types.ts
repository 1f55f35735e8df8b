import type * as tf from '@tensorflow/tfjs-core';
import { ShapeError, assertRank, type CaptionDecoder } from '@s2cpnet/core';

/** One decoded caption. */
export interface DecodedCaption {
  /** Generated word ids, without `<start>` and `<end>`. */
  tokens: number[];
  /** Sum of the natural-log probabilities of every generated token, `<end>` included when it was generated. */
  logProb: number;
  /** The ranking score: `logProb` divided by the length penalty (equal to `logProb` when the penalty is 0). */
  score: number;
  /** True when the caption ended with `<end>`; false when it was cut at `maxLength`. */
  finished: boolean;
  /**
   * Per word of `tokens`, the last layer's cross-attention over the N memory tokens (mean over heads) at the step
   * that generated the word; empty when `returnAttention` is false.
   */
  attention: Float32Array[];
}

export interface DecodeOptions {
  /** Id of `<start>`, fed first. */
  startId: number;
  /** Id of `<end>`, which finishes a caption. */
  endId: number;
  /** Maximum number of generated tokens (words, or words and `<end>`). Default 25. */
  maxLength?: number;
  /** Collect per-word attention maps. Default true. */
  returnAttention?: boolean;
  /**
   * Ids that are never generated (for example `<unk>`, `<pad>` and `<start>`): their log-probabilities are set to
   * -Infinity before a word is chosen. The other words keep the model's own log-probabilities (not renormalised).
   * Default none. `endId` cannot be suppressed.
   */
  suppressIds?: readonly number[];
}

export const DEFAULT_MAX_DECODE_LENGTH = 25;

export function checkDecodeInputs<State>(
  caller: string,
  decoder: CaptionDecoder<State>,
  memory: tf.Tensor3D,
  options: DecodeOptions,
): { maxLength: number; returnAttention: boolean; suppressIds: number[] } {
  assertRank(caller, 'memory', memory, 3);
  if (memory.shape[2] !== decoder.memoryWidth) {
    throw new ShapeError(caller, 'memory', `expected width ${decoder.memoryWidth}, found shape [${memory.shape.join(', ')}]`);
  }
  // A decoder that states how many positions it can read (TransformerCaptionDecoder does) is checked up front,
  // rather than failing after some steps: `maxLength` tokens need positions 0..maxLength-1.
  const positions = (decoder as { maxLength?: unknown }).maxLength;
  return checkSearchOptions(caller, { vocabSize: decoder.vocabSize, positions: typeof positions === 'number' ? positions : undefined }, options);
}

/**
 * Checks the decoding options against a model's vocabulary size and (when known) the number of positions its
 * decoder can read; returns the resolved max length, attention flag and de-duplicated suppressed ids.
 */
export function checkSearchOptions(
  caller: string,
  model: { vocabSize: number; positions?: number },
  options: DecodeOptions,
): { maxLength: number; returnAttention: boolean; suppressIds: number[] } {
  for (const key of ['startId', 'endId'] as const) {
    const id = options[key];
    if (!Number.isInteger(id) || id < 0 || id >= model.vocabSize) {
      throw new ShapeError(caller, key, `expected an integer id in 0..${model.vocabSize - 1}, found ${id}`);
    }
  }
  const maxLength = options.maxLength ?? DEFAULT_MAX_DECODE_LENGTH;
  if (!Number.isInteger(maxLength) || maxLength < 1) throw new ShapeError(caller, 'maxLength', `expected a positive integer, found ${maxLength}`);
  if (model.positions !== undefined && maxLength > model.positions) {
    throw new ShapeError(caller, 'maxLength', `${maxLength} tokens would exceed maxLength ${model.positions} of the decoder's positions`);
  }
  const suppressIds = [...new Set(options.suppressIds ?? [])];
  for (const id of suppressIds) {
    if (!Number.isInteger(id) || id < 0 || id >= model.vocabSize) {
      throw new ShapeError(caller, 'suppressIds', `expected integer ids in 0..${model.vocabSize - 1}, found ${id}`);
    }
    if (id === options.endId) throw new ShapeError(caller, 'suppressIds', `cannot suppress endId ${id}: captions could never finish`);
  }
  return { maxLength, returnAttention: options.returnAttention ?? true, suppressIds };
}

/** Sets the log-probabilities of `ids` to -Infinity in every row of a [rows, vocab] block. */
export function suppressTokens(values: Float32Array, vocab: number, ids: readonly number[]): void {
  if (ids.length === 0) return;
  for (let offset = 0; offset < values.length; offset += vocab) for (const id of ids) values[offset + id] = -Infinity;
}

/** Index of the largest value of `row` (the first one on ties). */
export function argMax(values: Float32Array, offset: number, length: number): number {
  let best = 0;
  for (let i = 1; i < length; i++) if (values[offset + i]! > values[offset + best]!) best = i;
  return best;
}
