/**
 * CIDEr-D exactly as the COCO caption toolkit computes it (`cider/cider_scorer.py`).
 *
 * For n = 1..4: tf-idf vectors with the raw count as tf and idf = log(N) - log(max(1, df)), where N is the
 * number of images scored and df the number of images whose reference set contains the n-gram. The candidate's
 * weights are clipped by the reference's (min(w_cand, w_ref) * w_ref), divided by both norms, and damped by a
 * Gaussian length penalty with sigma 6 on the difference of bigram counts (the toolkit's "length" counts bigrams,
 * i.e. words - 1). Per image: mean over n of the sum over references, divided by the number of references, x 10.
 * The corpus score is the mean over images. With a single image log(N) = 0 and every score is 0.
 */
import type { SentenceNgrams } from './ngrams.js';
import { MAX_ORDER, NgramIndex } from './ngrams.js';
import { numpyMean } from './text.js';
import type { CaptionItem } from './types.js';
import type { CaptionLimits } from './validate.js';
import { assertScoreableItems } from './validate.js';

const SIGMA = 6;

export interface CiderResult {
  corpus: number;
  perImage: number[];
}

/** A caption's tf-idf vector: weights in the same slots as its n-gram ids (see SentenceNgrams). */
interface TfIdfVector {
  ngrams: SentenceNgrams;
  weights: Float64Array;
  norms: number[];
  /** Number of bigrams: the toolkit's caption "length". */
  length: number;
}

function toVector(ngrams: SentenceNgrams, idf: Float64Array): TfIdfVector {
  const { data, distinct, offsets } = ngrams;
  const weights = new Float64Array(distinct);
  const norms: number[] = [];
  let length = 0;
  for (let k = 0; k < MAX_ORDER; k++) {
    let squaredNorm = 0;
    for (let slot = offsets[k]!; slot < offsets[k + 1]!; slot++) {
      const count = data[distinct + slot]!;
      const weight = count * idf[data[slot]!]!;
      weights[slot] = weight;
      squaredNorm += weight ** 2;
      if (k === 1) length += count;
    }
    norms.push(Math.sqrt(squaredNorm));
  }
  return { ngrams, weights, norms, length };
}

/**
 * CIDEr-D per image and its corpus mean. Document frequencies come from the references of exactly these items,
 * so an image's score depends on the set it is scored in. Captions are used as given: tokenize them first to
 * match the toolkit on raw text.
 *
 * @example
 * computeCiderD(items).corpus;
 */
export function computeCiderD(items: readonly CaptionItem[], limits: CaptionLimits = {}): CiderResult {
  assertScoreableItems(items, limits);
  return ciderWithIndex(items, new NgramIndex());
}

/** CIDEr-D with a caller's n-gram index (shared with BLEU when both run on the same captions). */
export function ciderWithIndex(items: readonly CaptionItem[], index: NgramIndex): CiderResult {
  const references = items.map((item) => item.references.map((reference) => index.sentence(reference)));
  const candidates = items.map((item) => index.sentence(item.candidate));

  // Document frequency: the number of images whose reference set contains the n-gram. The index may be
  // shared, so only these items' references count.
  const documentFrequency = new Int32Array(index.size);
  const countedFor = new Int32Array(index.size).fill(-1);
  for (let image = 0; image < references.length; image++) {
    for (const ngrams of references[image]!) {
      const { data, distinct } = ngrams;
      for (let slot = 0; slot < distinct; slot++) {
        const id = data[slot]!;
        if (countedFor[id] !== image) {
          countedFor[id] = image;
          documentFrequency[id]!++;
        }
      }
    }
  }
  // idf per n-gram: log(N) - log(max(1, df)), computed once per id with the toolkit's expression.
  const logImageCount = Math.log(items.length);
  const idf = new Float64Array(index.size);
  for (let id = 0; id < idf.length; id++) idf[id] = logImageCount - Math.log(Math.max(1, documentFrequency[id]!));

  // Scratch table: the current reference's weight per n-gram id, valid where `weightOwner` holds its serial.
  const referenceWeight = new Float64Array(index.size);
  const weightOwner = new Int32Array(index.size).fill(-1);
  let serial = 0;
  const perImage = new Array<number>(items.length);
  for (let image = 0; image < items.length; image++) {
    const candidate = toVector(candidates[image]!, idf);
    const { data: candidateIds, offsets } = candidate.ngrams;
    const summed = [0, 0, 0, 0];
    for (const referenceNgrams of references[image]!) {
      const reference = toVector(referenceNgrams, idf);
      const owner = serial++;
      const { data: referenceIds, distinct: referenceDistinct } = referenceNgrams;
      for (let slot = 0; slot < referenceDistinct; slot++) {
        referenceWeight[referenceIds[slot]!] = reference.weights[slot]!;
        weightOwner[referenceIds[slot]!] = owner;
      }
      const delta = candidate.length - reference.length;
      const penalty = Math.E ** (-(delta ** 2) / (2 * SIGMA ** 2));
      for (let k = 0; k < MAX_ORDER; k++) {
        let value = 0;
        for (let slot = offsets[k]!; slot < offsets[k + 1]!; slot++) {
          const id = candidateIds[slot]!;
          const weight = weightOwner[id] === owner ? referenceWeight[id]! : 0;
          value += Math.min(candidate.weights[slot]!, weight) * weight;
        }
        if (candidate.norms[k] !== 0 && reference.norms[k] !== 0) value /= candidate.norms[k]! * reference.norms[k]!;
        summed[k]! += value * penalty;
      }
    }
    // np.mean over four values sums them in order; then the toolkit divides by the reference count and x10.
    let score = (summed[0]! + summed[1]! + summed[2]! + summed[3]!) / MAX_ORDER;
    score /= items[image]!.references.length;
    score *= 10;
    perImage[image] = score;
  }
  return { corpus: numpyMean(perImage), perImage };
}
