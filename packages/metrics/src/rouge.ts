/**
 * ROUGE_L exactly as the COCO caption toolkit computes it (`rouge/rouge.py`).
 *
 * Captions are split on single spaces (so an empty caption is one empty token). With LCS the longest common
 * subsequence against each reference, precision and recall are each maximised over the references
 * independently, then combined as F = (1 + b^2) P R / (R + b^2 P) with b = 1.2. The corpus score is the mean.
 */
import { numpyMean } from './text.js';
import type { CaptionItem } from './types.js';
import type { CaptionLimits } from './validate.js';
import { assertScoreableItems } from './validate.js';

const BETA = 1.2;

export interface RougeResult {
  corpus: number;
  perImage: number[];
}

/** Length of the longest common subsequence of two token lists, in O(min(m, n)) memory. */
export function longestCommonSubsequence(a: readonly string[], b: readonly string[]): number {
  const [longer, shorter] = a.length >= b.length ? [a, b] : [b, a];
  let previous = new Int32Array(shorter.length + 1);
  let current = new Int32Array(shorter.length + 1);
  for (let i = 1; i <= longer.length; i++) {
    const token = longer[i - 1];
    for (let j = 1; j <= shorter.length; j++) {
      current[j] = token === shorter[j - 1] ? previous[j - 1]! + 1 : Math.max(previous[j]!, current[j - 1]!);
    }
    [previous, current] = [current, previous];
  }
  return previous[shorter.length]!;
}

/** ROUGE_L of one candidate against its references. */
export function rougeLScore(candidate: string, references: readonly string[]): number {
  const candidateTokens = candidate.split(' ');
  let precisionMax = 0;
  let recallMax = 0;
  for (const reference of references) {
    const referenceTokens = reference.split(' ');
    const lcs = longestCommonSubsequence(referenceTokens, candidateTokens);
    precisionMax = Math.max(precisionMax, lcs / candidateTokens.length);
    recallMax = Math.max(recallMax, lcs / referenceTokens.length);
  }
  if (precisionMax === 0 || recallMax === 0) return 0;
  return ((1 + BETA ** 2) * precisionMax * recallMax) / (recallMax + BETA ** 2 * precisionMax);
}

/**
 * ROUGE_L per image and its corpus mean. Captions are used as given: tokenize them first to match the toolkit
 * on raw text.
 *
 * @example
 * computeRougeL([{ imageId: 1, candidate: 'a red car', references: ['a red car on a road'] }]).corpus;
 */
export function computeRougeL(items: readonly CaptionItem[], limits: CaptionLimits = {}): RougeResult {
  assertScoreableItems(items, limits);
  const perImage = items.map((item) => rougeLScore(item.candidate, item.references));
  return { corpus: numpyMean(perImage), perImage };
}
