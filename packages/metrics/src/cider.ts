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
import { MetricsInputError } from './errors.js';
import { numpyMean, splitPythonWhitespace } from './text.js';
import { tokenizeCaption } from './tokenizer.js';
import type { CaptionItem, ImageId } from './types.js';
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

/** One image's references for a `CiderDScorer`. */
export interface CiderReferenceSet {
  imageId: ImageId;
  /** At least one reference caption. */
  references: readonly string[];
}

export interface CiderDScorerOptions {
  /** PTB-tokenize the references and text candidates first, as `scoreCaptions` does. Default true. */
  tokenize?: boolean;
}

/**
 * CIDEr-D of single candidates against a fixed reference corpus, e.g. the rewards of self-critical training: the
 * document frequencies (N = number of images) and every reference's tf-idf vector are computed once, so a score
 * costs only the candidate's n-grams. `score(imageId, candidate)` equals `computeCiderD` over the corpus's images
 * with that candidate at `imageId` (document frequencies come from references only, so the other candidates do not
 * matter). The scorer never grows: n-grams the references lack are counted per candidate and forgotten.
 *
 * @example
 * const scorer = new CiderDScorer([{ imageId: 1, references: ['a red car.'] }, { imageId: 2, references: ['a tree'] }]);
 * scorer.score(1, 'a red car');
 */
export class CiderDScorer {
  /** Number of images N of the reference corpus. */
  readonly imageCount: number;
  private readonly tokenize: boolean;
  private readonly index = new NgramIndex();
  private readonly imageIndex = new Map<ImageId, number>();
  private readonly referenceVectors: TfIdfVector[][];
  private readonly idf: Float64Array;
  private readonly logImageCount: number;
  private readonly referenceWeight: Float64Array;
  private readonly weightOwner: Int32Array;
  private serial = 0;

  constructor(corpus: readonly CiderReferenceSet[], options: CiderDScorerOptions = {}) {
    if (!Array.isArray(corpus) || corpus.length === 0) throw new MetricsInputError('CiderDScorer: the reference corpus has no images');
    this.tokenize = options.tokenize ?? true;
    this.imageCount = corpus.length;
    const tokenized = corpus.map((set, image) => {
      if (!Array.isArray(set?.references) || set.references.length === 0 || set.references.some((r: unknown) => typeof r !== 'string')) {
        throw new MetricsInputError(`CiderDScorer: image ${JSON.stringify(set?.imageId)} (index ${image}) needs at least one reference string`);
      }
      if (this.imageIndex.has(set.imageId)) throw new MetricsInputError(`CiderDScorer: image id ${JSON.stringify(set.imageId)} appears twice`);
      this.imageIndex.set(set.imageId, image);
      return set.references.map((r: string) => this.index.sentence(this.tokenize ? tokenizeCaption(r) : r));
    });
    const documentFrequency = new Int32Array(this.index.size);
    const countedFor = new Int32Array(this.index.size).fill(-1);
    tokenized.forEach((references, image) => {
      for (const { data, distinct } of references) {
        for (let slot = 0; slot < distinct; slot++) {
          const id = data[slot]!;
          if (countedFor[id] !== image) {
            countedFor[id] = image;
            documentFrequency[id]!++;
          }
        }
      }
    });
    this.logImageCount = Math.log(corpus.length);
    this.idf = new Float64Array(this.index.size);
    for (let id = 0; id < this.idf.length; id++) this.idf[id] = this.logImageCount - Math.log(Math.max(1, documentFrequency[id]!));
    this.referenceVectors = tokenized.map((references) => references.map((ngrams: SentenceNgrams) => toVector(ngrams, this.idf)));
    this.referenceWeight = new Float64Array(this.index.size);
    this.weightOwner = new Int32Array(this.index.size).fill(-1);
  }

  /** True when the corpus has references for `imageId`. */
  has(imageId: ImageId): boolean {
    return this.imageIndex.has(imageId);
  }

  /** CIDEr-D of a caption text (PTB-tokenized first unless `tokenize: false`) against `imageId`'s references. */
  score(imageId: ImageId, candidate: string): number {
    return this.scoreWords(imageId, splitPythonWhitespace(this.tokenize ? tokenizeCaption(candidate) : candidate));
  }

  /** CIDEr-D of a caption given as words (used as they are: no tokenization) against `imageId`'s references. */
  scoreWords(imageId: ImageId, words: readonly string[]): number {
    const image = this.imageIndex.get(imageId);
    if (image === undefined) throw new MetricsInputError(`CiderDScorer: no references for image ${JSON.stringify(imageId)}`);
    const candidate = this.candidateVector(words);
    const summed = [0, 0, 0, 0];
    const references = this.referenceVectors[image]!;
    if (this.serial > 0x3fffffff) {
      this.weightOwner.fill(-1);
      this.serial = 0;
    }
    // The same operations in the same order as `ciderWithIndex`, so the scores agree to the last bit.
    for (const reference of references) {
      const owner = this.serial++;
      const { data: referenceIds, distinct: referenceDistinct } = reference.ngrams;
      for (let slot = 0; slot < referenceDistinct; slot++) {
        this.referenceWeight[referenceIds[slot]!] = reference.weights[slot]!;
        this.weightOwner[referenceIds[slot]!] = owner;
      }
      const delta = candidate.length - reference.length;
      const penalty = Math.E ** (-(delta ** 2) / (2 * SIGMA ** 2));
      for (let k = 0; k < MAX_ORDER; k++) {
        let value = 0;
        for (let slot = candidate.offsets[k]!; slot < candidate.offsets[k + 1]!; slot++) {
          const id = candidate.ids[slot]!;
          const weight = id >= 0 && this.weightOwner[id] === owner ? this.referenceWeight[id]! : 0;
          value += Math.min(candidate.weights[slot]!, weight) * weight;
        }
        if (candidate.norms[k] !== 0 && reference.norms[k] !== 0) value /= candidate.norms[k]! * reference.norms[k]!;
        summed[k]! += value * penalty;
      }
    }
    let score = (summed[0]! + summed[1]! + summed[2]! + summed[3]!) / MAX_ORDER;
    score /= references.length;
    score *= 10;
    return score;
  }

  /**
   * The candidate's tf-idf vector without adding to the index: per order, its n-grams in first-occurrence order,
   * with the reference corpus's id, or -1 for an n-gram no reference has (idf log N, never matched).
   */
  private candidateVector(words: readonly string[]): { ids: number[]; weights: number[]; offsets: number[]; norms: number[]; length: number } {
    const wordIds = words.map((w) => this.index.knownWord(w));
    const orderIds: number[][] = [[], [], [], []];
    const orderCounts: number[][] = [[], [], [], []];
    const slots: Map<number | string, number>[] = [new Map(), new Map(), new Map(), new Map()];
    for (let start = 0; start < words.length; start++) {
      let id = wordIds[start]!;
      for (let k = 0; k < MAX_ORDER && start + k < words.length; k++) {
        if (k > 0) id = id >= 0 && wordIds[start + k]! >= 0 ? this.index.knownExtension(id, wordIds[start + k]!) : -1;
        const key = id >= 0 ? id : words.slice(start, start + k + 1).join(' ');
        const slot = slots[k]!.get(key);
        if (slot === undefined) {
          slots[k]!.set(key, orderIds[k]!.length);
          orderIds[k]!.push(id);
          orderCounts[k]!.push(1);
        } else orderCounts[k]![slot]!++;
      }
    }
    const ids: number[] = [];
    const weights: number[] = [];
    const offsets = [0];
    const norms: number[] = [];
    let length = 0;
    for (let k = 0; k < MAX_ORDER; k++) {
      let squaredNorm = 0;
      orderIds[k]!.forEach((id, slot) => {
        const count = orderCounts[k]![slot]!;
        const weight = count * (id >= 0 ? this.idf[id]! : this.logImageCount - Math.log(1));
        ids.push(id);
        weights.push(weight);
        squaredNorm += weight ** 2;
        if (k === 1) length += count;
      });
      offsets.push(ids.length);
      norms.push(Math.sqrt(squaredNorm));
    }
    return { ids, weights, offsets, norms, length };
  }
}
