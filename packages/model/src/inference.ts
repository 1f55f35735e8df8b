import * as tf from '@tensorflow/tfjs-core';
import { beamSearch, beamSearchAsync, greedyDecode, greedyDecodeAsync, type DecodedCaption } from '@s2cpnet/caption-decoder/decoding';
import { predictCategories, type CategoryPrediction } from '@s2cpnet/category-decoder';
import type { S2CPNet, StepInputs } from './s2cpnet';

/** Turns ids into words (a `Vocabulary` from `@s2cpnet/data` fits). */
export interface WordTable {
  readonly startId: number;
  readonly endId: number;
  /** `<pad>`, when the table has one: never generated. */
  readonly padId?: number;
  /** `<unk>`, when the table has one: never generated. */
  readonly unknownId?: number;
  wordOf(id: number): string;
}

/** The ids a caption never contains: `<start>`, and `<pad>` and `<unk>` when the table has them. */
export function defaultSuppressedIds(words: WordTable): number[] {
  return [words.startId, words.padId, words.unknownId].filter((id): id is number => id !== undefined && id !== words.endId);
}

export interface CaptionOptions {
  /** Beam width; 1 decodes greedily. Default 3. */
  beamSize?: number;
  /** Most words per caption. Default 25. */
  maxLength?: number;
  /** GNMT length-penalty exponent (0: none). Default 0. */
  lengthPenalty?: number;
  /** Beam search: fewest words before `<end>` may be chosen. Default 0. */
  minLength?: number;
  /** Word ids never generated. Default `defaultSuppressedIds(words)`: `<start>`, `<pad>`, `<unk>`. */
  suppressIds?: readonly number[];
  /** Collect per-word attention maps over the grid. Default true. */
  returnAttention?: boolean;
  /** Category probability threshold. Default 0.5. */
  categoryThreshold?: number;
}

export interface WordAttention {
  word: string;
  /** Attention over the G x G grid, row-major, summing to 1. */
  weights: Float32Array;
}

export interface CaptionResult {
  caption: string;
  tokens: number[];
  logProb: number;
  /** Predicted noun classes with probability >= threshold, most probable first (empty without a category head). */
  categories: CategoryPrediction[];
  attention: WordAttention[];
  /** Side G of the attention grid. */
  grid: number;
}

/**
 * The search settings `CaptionOptions` mean, with their defaults (beam 3, 25 words, no length penalty, no minimum
 * length, attention on, `<start>`/`<pad>`/`<unk>` suppressed): what every runtime's decoding uses.
 */
export function decodeSettings(words: WordTable, options: CaptionOptions = {}) {
  const beamSize = options.beamSize ?? 3;
  return {
    beamSize,
    search: {
      startId: words.startId,
      endId: words.endId,
      maxLength: options.maxLength ?? 25,
      returnAttention: options.returnAttention ?? true,
      suppressIds: options.suppressIds ?? defaultSuppressedIds(words),
      beamSize,
      lengthPenalty: options.lengthPenalty ?? 0,
      minLength: options.minLength ?? 0,
    },
  };
}

/** What `captionBatch` / `captionBatchAsync` read: pixels of both views, or their cached backbone features. */
export type CaptionInputs = Pick<StepInputs, 'images' | 'masks' | 'imageFeatures' | 'maskFeatures'>;

/**
 * Captions a batch: encodes each image once, decodes with true beam search (or greedily) over cached keys and
 * values, and predicts the noun categories from the same memory. Reads synchronously: on GPU backends (webgpu) use
 * `captionBatchAsync`.
 */
export function captionBatch(model: S2CPNet, inputs: CaptionInputs, words: WordTable, classNames: readonly string[], options: CaptionOptions = {}): CaptionResult[] {
  const { beamSize, search: decodeOptions } = decodeSettings(words, options);
  const memory = model.memory(inputs, { training: false });
  try {
    const decoded: DecodedCaption[] = beamSize <= 1 ? greedyDecode(model.captionDecoder, memory, decodeOptions) : beamSearch(model.captionDecoder, memory, decodeOptions);
    let categories: CategoryPrediction[][] = decoded.map(() => []);
    if (model.categoryHead) {
      const logits = tf.tidy(() => model.categoryHead!.logits(memory, { training: false }));
      categories = predictCategories(logits, classNames, options.categoryThreshold ?? 0.5);
      logits.dispose();
    }
    return captionResults(model, decoded, categories, words);
  } finally {
    memory.dispose();
  }
}

/**
 * `captionBatch` with asynchronous reads only: the form every hot path of the toolkit uses (evaluation, the
 * captioner, training's validation), so GPU backends, which have no synchronous reads under Node, run them too.
 * Same results as `captionBatch` on every backend.
 */
export async function captionBatchAsync(model: S2CPNet, inputs: CaptionInputs, words: WordTable, classNames: readonly string[], options: CaptionOptions = {}): Promise<CaptionResult[]> {
  const { beamSize, search: decodeOptions } = decodeSettings(words, options);
  const memory = model.memory(inputs, { training: false });
  try {
    const decoded: DecodedCaption[] = beamSize <= 1 ? await greedyDecodeAsync(model.captionDecoder, memory, decodeOptions) : await beamSearchAsync(model.captionDecoder, memory, decodeOptions);
    let categories: CategoryPrediction[][] = decoded.map(() => []);
    if (model.categoryHead) {
      const logits = tf.tidy(() => model.categoryHead!.logits(memory, { training: false }));
      try {
        categories = predictCategories((await logits.array()) as number[][], classNames, options.categoryThreshold ?? 0.5);
      } finally {
        logits.dispose();
      }
    }
    return captionResults(model, decoded, categories, words);
  } finally {
    memory.dispose();
  }
}

function captionResults(model: S2CPNet, decoded: DecodedCaption[], categories: CategoryPrediction[][], words: WordTable): CaptionResult[] {
  return decoded.map((d, i) => {
    const tokenWords = d.tokens.map((id) => words.wordOf(id));
    return {
      caption: tokenWords.join(' '),
      tokens: d.tokens,
      logProb: d.logProb,
      categories: categories[i] ?? [],
      attention: d.attention.map((weights, k) => ({ word: tokenWords[k]!, weights })),
      grid: model.gridSize,
    };
  });
}
