/**
 * METEOR 1.5 against the jar's own outputs: normalised words, word alignments, the 23 statistics, scores, and
 * the corpus score of summed statistics.
 */
import { describe, expect, it } from 'vitest';

import { GOLDEN_DIR, GOLDEN_SUBSETS, goldenItems, goldenScores, readGoldenJson } from '../testing/golden.js';
import { computeMeteor, meteorSegments, MeteorScorer } from './meteor.js';
import { meteorWords } from './normalizer.js';
import {
  formatMeteorStats,
  meteorBreakdown,
  meteorScoreFromStats,
  parseMeteorStats,
  statsFromAlignment,
  sumMeteorStats,
} from './stats.js';

interface AlignmentExample {
  id: string;
  note: string;
  candidate: string;
  references: string[];
  chosen_reference_index: number;
  stats: string;
  score: number;
  per_reference: {
    reference_index: number;
    meteor_candidate_words: string[];
    meteor_reference_words: string[];
    stats: string;
    precision: number | null;
    recall: number;
    frag_penalty: number | null;
    score: number;
    matches: { candidate_start: number; reference_start: number; candidate_len: number; reference_len: number; module_index: number }[];
  }[];
}

const examples =
  GOLDEN_DIR === undefined
    ? []
    : readGoldenJson<{ examples: AlignmentExample[] }>('meteor_alignment_examples.json').examples;

describe.skipIf(GOLDEN_DIR === undefined)('METEOR alignment examples (jar -writeAlignments output)', () => {
  const scorer = new MeteorScorer();

  it.each(examples)('$id: $note', (example) => {
    for (const reference of example.per_reference) {
      const referenceText = example.references[reference.reference_index]!;
      expect(meteorWords(example.candidate)).toEqual(reference.meteor_candidate_words);
      expect(meteorWords(referenceText)).toEqual(reference.meteor_reference_words);

      const alignment = scorer.alignPair(example.candidate, referenceText);
      const matches = alignment.matches
        .filter((match) => match !== null)
        .map((match) => [match.matchStart, match.matchLength, match.start, match.length, match.module])
        .sort((a, b) => a[0]! - b[0]!);
      const expected = reference.matches.map((match) => [
        match.candidate_start,
        match.candidate_len,
        match.reference_start,
        match.reference_len,
        match.module_index,
      ]);
      expect(matches).toEqual(expected);

      const stats = statsFromAlignment(alignment);
      expect(formatMeteorStats(stats)).toBe(reference.stats);
      const breakdown = meteorBreakdown(stats);
      expect(breakdown.score).toBeCloseTo(reference.score, 12);
      expect(breakdown.recall).toBeCloseTo(reference.recall, 12);
      if (reference.precision !== null) expect(breakdown.precision).toBeCloseTo(reference.precision, 12);
      if (reference.frag_penalty !== null) expect(breakdown.fragPenalty).toBeCloseTo(reference.frag_penalty, 12);
    }
    const image = scorer.scoreImage(example.candidate, example.references);
    expect(image.chosenReference).toBe(example.chosen_reference_index);
    expect(formatMeteorStats(image.stats)).toBe(example.stats);
    expect(image.score).toBeCloseTo(example.score, 12);
  });
});

describe.skipIf(GOLDEN_DIR === undefined)('METEOR on the golden subsets', () => {
  it.each(GOLDEN_SUBSETS)('%s: every stats line equal, scores within 1e-6, corpus from summed stats', (subset) => {
    const golden = goldenScores(subset);
    const result = computeMeteor(goldenItems(subset));
    const mismatches = golden.per_image.filter(
      (expected, index) => formatMeteorStats(result.perImage[index]!.stats) !== expected.meteor_stats_no_paraphrase,
    );
    expect(mismatches.map((entry) => entry.image_id)).toEqual([]);
    golden.per_image.forEach((expected, index) => {
      expect(Math.abs(result.perImage[index]!.score - expected.METEOR_no_paraphrase)).toBeLessThanOrEqual(1e-6);
    });
    expect(Math.abs(result.corpus - golden.corpus.METEOR_no_paraphrase)).toBeLessThanOrEqual(1e-6);
  });

  it('scores every golden stats line to within 1e-12 (computeMetrics)', () => {
    const golden = goldenScores('all');
    for (const image of golden.per_image) {
      expect(meteorScoreFromStats(parseMeteorStats(image.meteor_stats_no_paraphrase))).toBeCloseTo(
        image.METEOR_no_paraphrase,
        12,
      );
    }
    const summed = sumMeteorStats(golden.per_image.map((image) => parseMeteorStats(image.meteor_stats_no_paraphrase)));
    expect(meteorScoreFromStats(summed)).toBeCloseTo(golden.corpus.METEOR_no_paraphrase, 12);
  });

  it('the corpus score is not the mean of the image scores', () => {
    const result = computeMeteor(goldenItems('all'));
    const mean = result.perImage.reduce((sum, image) => sum + image.score, 0) / result.perImage.length;
    expect(Math.abs(mean - result.corpus)).toBeGreaterThan(1e-3);
  });
});

describe('METEOR behaviour', () => {
  it('normalises like Meteor -norm: hyphens, clitics, initialisms, multiple dots', () => {
    expect(meteorWords('a cross-shaped roof')).toEqual(['a', 'cross', 'shaped', 'roof']);
    expect(meteorWords("the ship 's deck is n't")).toEqual(['the', 'ship', "'", 's', 'deck', 'is', 'n', "'t"]);
    expect(meteorWords('U.S. roads... 12,000 cars')).toEqual(['us', 'roads', '...', '12,000', 'cars']);
    expect(meteorWords('Dr. Smith said no.')).toEqual(['dr.', 'smith', 'said', 'no', '.']);
  });

  it('treats an empty candidate as Meteor does: score 0 against the first reference', () => {
    const result = computeMeteor([{ imageId: 1, candidate: '', references: ['a long bridge', 'a bridge'] }]);
    expect(result.perImage[0]!.score).toBe(0);
    expect(result.perImage[0]!.chosenReference).toBe(0);
    expect(result.perImage[0]!.stats.slice(0, 4)).toEqual([0, 3, 0, 1]);
  });

  it('splits a reference containing ||| as the stdio protocol does, and strips it from the candidate', () => {
    expect(meteorSegments('a b ||| c', ['x ||| y', 'z'])).toEqual({ test: 'a b c', refs: ['x', 'y', 'z'] });
  });

  it('compares words by Java String.hashCode, so colliding strings match exactly', () => {
    // "aaan" and "aac0" share a Java hash: Meteor aligns them as an exact match.
    const scorer = new MeteorScorer({ stem: false, synonyms: false });
    const alignment = scorer.alignPair('aaan', 'aac0');
    expect(alignment.matches[0]).toMatchObject({ module: 0, start: 0, matchStart: 0 });
  });

  it('without the stem and synonym modules only exact matches count', () => {
    const full = computeMeteor([{ imageId: 1, candidate: 'a big ship', references: ['a large ships'] }]);
    const exactOnly = computeMeteor([{ imageId: 1, candidate: 'a big ship', references: ['a large ships'] }], {
      stem: false,
      synonyms: false,
    });
    expect(full.perImage[0]!.stats[21]).toBe(3);
    expect(exactOnly.perImage[0]!.stats[21]).toBe(1);
    expect(full.corpus).toBeGreaterThan(exactOnly.corpus);
  });

  it('formats and parses stats lines as the jar prints them', () => {
    const stats = [8, 6, 2, 2, 4, 4, 2, 2, ...new Array<number>(12).fill(0), 4, 6, 6];
    const line = formatMeteorStats(stats);
    expect(line).toBe('8.0 6.0 2.0 2.0 4.0 4.0 2.0 2.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 4.0 6.0 6.0');
    expect(parseMeteorStats(line)).toEqual(stats);
    expect(formatMeteorStats([12_345_678, ...new Array<number>(22).fill(0)]).split(' ')[0]).toBe('1.2345678E7');
    expect(() => parseMeteorStats('Error: specify SCORE or EVAL')).toThrow(/23 numbers/);
  });
});
