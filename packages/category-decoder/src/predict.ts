import type * as tf from '@tensorflow/tfjs-core';
import { ShapeError } from '@s2cpnet/core';

/** One predicted class. */
export interface CategoryPrediction {
  /** Class name (from `classNames`). */
  name: string;
  /** Class index k. */
  index: number;
  /** sigmoid(logit). */
  probability: number;
}

type LogitRows = tf.Tensor | readonly (readonly number[])[] | readonly number[];

function toRows(logits: LogitRows): { rows: number[][]; single: boolean } {
  if (Array.isArray(logits)) {
    if (logits.length > 0 && Array.isArray(logits[0])) return { rows: (logits as number[][]).map((r) => [...r]), single: false };
    return { rows: [[...(logits as number[])]], single: true };
  }
  const tensor = logits as tf.Tensor;
  if (tensor.rank === 1) return { rows: [Array.from(tensor.dataSync())], single: true };
  if (tensor.rank === 2) return { rows: tensor.arraySync() as number[][], single: false };
  throw new ShapeError('predictCategories', 'logits', `expected rank 1 or 2, found shape [${tensor.shape.join(', ')}]`);
}

const sigmoid = (z: number) => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));

/**
 * The classes of each image whose probability `sigmoid(logit)` is at least `threshold` (default 0.5, spec
 * section 6), most probable first (ties: lower class index first).
 * `logits` [B,K] (tensor or nested arrays) gives one list per image; [K] gives a single list.
 *
 * @example
 * ```ts
 * const [nouns] = predictCategories(head.logits(memory), nounVocabulary);
 * // [{ name: 'building', index: 4, probability: 0.93 }, { name: 'road', index: 17, probability: 0.71 }]
 * ```
 */
export function predictCategories(logits: tf.Tensor2D | readonly (readonly number[])[], classNames: readonly string[], threshold?: number): CategoryPrediction[][];
export function predictCategories(logits: tf.Tensor1D | readonly number[], classNames: readonly string[], threshold?: number): CategoryPrediction[];
export function predictCategories(logits: LogitRows, classNames: readonly string[], threshold = 0.5): CategoryPrediction[][] | CategoryPrediction[] {
  if (!(threshold >= 0 && threshold <= 1)) throw new ShapeError('predictCategories', 'threshold', `expected a probability in [0, 1], found ${threshold}`);
  const { rows, single } = toRows(logits);
  const predictions = rows.map((row, b) => {
    if (row.length !== classNames.length) {
      throw new ShapeError('predictCategories', 'classNames', `has ${classNames.length} names but logits row ${b} has ${row.length} classes`);
    }
    return row
      .map((z, index) => ({ name: classNames[index]!, index, probability: sigmoid(z) }))
      .filter((p) => p.probability >= threshold)
      .sort((a, b2) => b2.probability - a.probability || a.index - b2.index);
  });
  return single ? predictions[0]! : predictions;
}

/**
 * Reads the nouns of the next-noun head: per image, the argmax word of each step until `<end>`, without `<pad>`,
 * `<start>` and repeats, in generation order. `logits` [B, S*V] (the head's flattened step logits) or [B,S,V].
 */
export function predictNounSequence(
  logits: tf.Tensor,
  words: readonly string[],
  options: { endId: number; startId?: number; padId?: number },
): string[][] {
  const vocab = words.length;
  const [batch] = logits.shape as number[];
  const values = logits.dataSync();
  const perImage = values.length / batch!;
  if (!Number.isInteger(perImage / vocab)) {
    throw new ShapeError('predictNounSequence', 'logits', `row of ${perImage} values is not a whole number of steps over ${vocab} words`);
  }
  const steps = perImage / vocab;
  const skip = new Set([options.padId ?? 0, options.startId ?? 1]);
  const out: string[][] = [];
  for (let b = 0; b < batch!; b++) {
    const seen = new Set<number>();
    const nouns: string[] = [];
    for (let s = 0; s < steps; s++) {
      const offset = b * perImage + s * vocab;
      let best = 0;
      for (let w = 1; w < vocab; w++) if (values[offset + w]! > values[offset + best]!) best = w;
      if (best === options.endId) break;
      if (skip.has(best) || seen.has(best)) continue;
      seen.add(best);
      nouns.push(words[best]!);
    }
    out.push(nouns);
  }
  return out;
}
