/**
 * BLEU-1..4 exactly as the COCO caption toolkit computes it (`bleu/bleu_scorer.py`, option `closest`).
 *
 * Per image: n-gram counts of the candidate clipped by the maximum count in any single reference; the
 * effective reference length is the reference closest in length to the candidate (a tie goes to the shorter).
 * Every precision factor is smoothed as `(correct + 1e-15) / (guess + 1e-9)`, so a missing n-gram order gives a
 * tiny positive score rather than 0. The corpus score uses the counts and lengths summed over all images.
 */
import { ensureCapacity, MAX_ORDER, NgramIndex } from './ngrams.js';
import type { CaptionItem } from './types.js';
import type { CaptionLimits } from './validate.js';
import { assertScoreableItems } from './validate.js';

/** BLEU-1..4 for one image or for the corpus. */
export interface BleuScores {
  Bleu_1: number;
  Bleu_2: number;
  Bleu_3: number;
  Bleu_4: number;
}

export interface BleuResult {
  corpus: BleuScores;
  perImage: BleuScores[];
}

const TINY = 1e-15;
const SMALL = 1e-9;

interface BleuCounts {
  testLength: number;
  referenceLength: number;
  guess: number[];
  correct: number[];
}

/** Counts BLEU statistics with integer n-gram ids and per-image clipping tables in typed arrays. */
class BleuCounter {
  private readonly index: NgramIndex;
  private maxCount = new Int32Array(1024);
  private maxCountImage = new Int32Array(1024).fill(-1);
  private image = 0;

  constructor(index: NgramIndex) {
    this.index = index;
  }

  count(item: CaptionItem): BleuCounts {
    const image = this.image++;
    const referenceLengths: number[] = [];
    const references = item.references.map((reference) => this.index.sentence(reference));
    const testNgrams = this.index.sentence(item.candidate);
    this.grow(this.index.size);
    // Maximum count of each n-gram in any single reference.
    for (const reference of references) {
      referenceLengths.push(reference.length);
      const { data, distinct } = reference;
      for (let slot = 0; slot < distinct; slot++) {
        const id = data[slot]!;
        const count = data[distinct + slot]!;
        if (this.maxCountImage[id] !== image) {
          this.maxCountImage[id] = image;
          this.maxCount[id] = count;
        } else if (count > this.maxCount[id]!) {
          this.maxCount[id] = count;
        }
      }
    }
    const testLength = testNgrams.length;

    // The toolkit takes min over (|len - testlen|, len) tuples: closest length, shorter on a tie.
    let referenceLength = referenceLengths[0]!;
    for (const length of referenceLengths) {
      const distance = Math.abs(length - testLength);
      const bestDistance = Math.abs(referenceLength - testLength);
      if (distance < bestDistance || (distance === bestDistance && length < referenceLength)) referenceLength = length;
    }

    const guess: number[] = [];
    const correct: number[] = [];
    const { data, distinct, offsets } = testNgrams;
    for (let k = 0; k < MAX_ORDER; k++) {
      guess.push(Math.max(0, testLength - k));
      let clipped = 0;
      for (let slot = offsets[k]!; slot < offsets[k + 1]!; slot++) {
        const id = data[slot]!;
        const referenceMax = this.maxCountImage[id] === image ? this.maxCount[id]! : 0;
        clipped += Math.min(referenceMax, data[distinct + slot]!);
      }
      correct.push(clipped);
    }
    return { testLength, referenceLength, guess, correct };
  }

  private grow(size: number): void {
    if (this.maxCount.length >= size) return;
    const previous = this.maxCountImage.length;
    this.maxCount = ensureCapacity(this.maxCount, size);
    this.maxCountImage = ensureCapacity(this.maxCountImage, size);
    this.maxCountImage.fill(-1, previous);
  }
}

function bleuFromCounts(counts: BleuCounts): BleuScores {
  const scores: number[] = [];
  let product = 1;
  for (let k = 0; k < MAX_ORDER; k++) {
    product *= (counts.correct[k]! + TINY) / (counts.guess[k]! + SMALL);
    scores.push(product ** (1 / (k + 1)));
  }
  const ratio = (counts.testLength + TINY) / (counts.referenceLength + SMALL);
  if (ratio < 1) {
    const brevity = Math.exp(1 - 1 / ratio);
    for (let k = 0; k < MAX_ORDER; k++) scores[k]! *= brevity;
  }
  return { Bleu_1: scores[0]!, Bleu_2: scores[1]!, Bleu_3: scores[2]!, Bleu_4: scores[3]! };
}

/**
 * BLEU-1..4 per image and for the corpus. Captions are split on whitespace as given: tokenize them first
 * (see `tokenizeCaption`) to match the toolkit on raw text.
 *
 * @example
 * const { corpus } = computeBleu([{ imageId: 1, candidate: 'a red car', references: ['a red car on a road'] }]);
 */
export function computeBleu(items: readonly CaptionItem[], limits: CaptionLimits = {}): BleuResult {
  assertScoreableItems(items, limits);
  return bleuWithIndex(items, new NgramIndex());
}

/** BLEU with a caller's n-gram index (shared with CIDEr-D when both run on the same captions). */
export function bleuWithIndex(items: readonly CaptionItem[], index: NgramIndex): BleuResult {
  const total: BleuCounts = { testLength: 0, referenceLength: 0, guess: [0, 0, 0, 0], correct: [0, 0, 0, 0] };
  const perImage: BleuScores[] = [];
  const counter = new BleuCounter(index);
  for (const item of items) {
    const counts = counter.count(item);
    perImage.push(bleuFromCounts(counts));
    total.testLength += counts.testLength;
    total.referenceLength += counts.referenceLength;
    for (let k = 0; k < MAX_ORDER; k++) {
      total.guess[k]! += counts.guess[k]!;
      total.correct[k]! += counts.correct[k]!;
    }
  }
  return { corpus: bleuFromCounts(total), perImage };
}
