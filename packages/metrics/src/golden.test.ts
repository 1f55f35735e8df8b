/**
 * BLEU, ROUGE_L and CIDEr-D against the COCO caption toolkit's own outputs on every golden subset.
 */
import { describe, expect, it } from 'vitest';

import { computeBleu } from './bleu.js';
import { computeCiderD } from './cider.js';
import { computeRougeL } from './rouge.js';
import { GOLDEN_DIR, GOLDEN_SUBSETS, goldenItems, goldenScores } from './testing/golden.js';

const TOLERANCE = 1e-9;
const BLEU_KEYS = ['Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4'] as const;

describe.skipIf(GOLDEN_DIR === undefined)('toolkit parity: BLEU, ROUGE_L, CIDEr-D', () => {
  describe.each(GOLDEN_SUBSETS)('subset %s', (subset) => {
    const items = GOLDEN_DIR === undefined ? [] : goldenItems(subset);
    const golden = GOLDEN_DIR === undefined ? undefined : goldenScores(subset);

    it('BLEU-1..4: corpus and every image within 1e-9', () => {
      const bleu = computeBleu(items);
      for (const key of BLEU_KEYS) expect(Math.abs(bleu.corpus[key] - golden!.corpus[key])).toBeLessThanOrEqual(TOLERANCE);
      golden!.per_image.forEach((expected, index) => {
        for (const key of BLEU_KEYS) {
          expect(Math.abs(bleu.perImage[index]![key] - expected[key]), `${expected.image_id} ${key}`).toBeLessThanOrEqual(
            TOLERANCE,
          );
        }
      });
    });

    it('ROUGE_L: corpus and every image within 1e-9', () => {
      const rouge = computeRougeL(items);
      expect(Math.abs(rouge.corpus - golden!.corpus.ROUGE_L)).toBeLessThanOrEqual(TOLERANCE);
      golden!.per_image.forEach((expected, index) => {
        expect(Math.abs(rouge.perImage[index]! - expected.ROUGE_L), expected.image_id).toBeLessThanOrEqual(TOLERANCE);
      });
    });

    it('CIDEr-D: corpus and every image within 1e-9', () => {
      const cider = computeCiderD(items);
      expect(Math.abs(cider.corpus - golden!.corpus.CIDEr)).toBeLessThanOrEqual(TOLERANCE);
      golden!.per_image.forEach((expected, index) => {
        expect(Math.abs(cider.perImage[index]! - expected.CIDEr), expected.image_id).toBeLessThanOrEqual(TOLERANCE);
      });
    });
  });

  it('CIDEr-D of one image depends on the set it is scored in (document frequencies)', () => {
    const all = goldenItems('all');
    const two = goldenItems('two_images');
    const inAll = computeCiderD(all).perImage[all.findIndex((item) => item.imageId === two[0]!.imageId)]!;
    const inTwo = computeCiderD(two).perImage[0]!;
    expect(inAll).not.toBeCloseTo(inTwo, 3);
  });
});

describe('metric edge cases', () => {
  it('BLEU gives a tiny positive score, not 0, for a missing n-gram order', () => {
    const bleu = computeBleu([{ imageId: 1, candidate: 'island', references: ['island'] }]);
    expect(bleu.corpus.Bleu_1).toBeCloseTo(1, 6);
    expect(bleu.corpus.Bleu_2).toBeGreaterThan(1e-4);
    expect(bleu.corpus.Bleu_2).toBeLessThan(2e-3);
  });

  it('BLEU breaks a closest-length tie toward the shorter reference', () => {
    // Candidate of 3 words, references of 2 and 4 words: the shorter wins, so there is no brevity penalty.
    const tie = computeBleu([{ imageId: 1, candidate: 'p q r', references: ['p q', 'p q r s'] }]);
    // Same clipped counts, but the 2-word reference is the unique closest.
    const unique = computeBleu([{ imageId: 1, candidate: 'p q r', references: ['p q', 'p q r s t'] }]);
    expect(tie.corpus.Bleu_1).toBeCloseTo(unique.corpus.Bleu_1, 12);
    expect(tie.corpus.Bleu_1).toBeGreaterThan(0.99);
  });

  it('ROUGE_L maximises precision and recall over references independently', () => {
    // P is best against the first reference, R against the second.
    const score = computeRougeL([{ imageId: 1, candidate: 'a b', references: ['a b c d e f', 'a'] }]).corpus;
    const precision = 1;
    const recall = 1;
    expect(score).toBeCloseTo(((1 + 1.44) * precision * recall) / (recall + 1.44 * precision), 12);
  });

  it('an empty candidate scores 0 on BLEU, ROUGE_L and CIDEr-D', () => {
    const items = [
      { imageId: 1, candidate: '', references: ['a long bridge', 'a bridge'] },
      { imageId: 2, candidate: 'a lake', references: ['a blue lake'] },
    ];
    expect(computeBleu(items).perImage[0]!.Bleu_1).toBe(0);
    expect(computeRougeL(items).perImage[0]).toBe(0);
    expect(computeCiderD(items).perImage[0]).toBe(0);
  });

  it('CIDEr-D of a one-image corpus is 0 (log N = 0)', () => {
    expect(computeCiderD([{ imageId: 1, candidate: 'a lake', references: ['a lake'] }]).corpus).toBe(0);
  });
});
