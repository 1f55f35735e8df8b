import { describe, expect, it } from 'vitest';
import { CiderDScorer, computeCiderD } from './cider.js';
import { MetricsInputError } from './errors.js';
import { tokenizeItems } from './score.js';

const corpus = [
  { imageId: 'a', references: ['A red car is parked beside the road.', 'a car beside a road', 'There is a red car on the road.'] },
  { imageId: 'b', references: ['Many green trees surround a white house.', 'a house among trees'] },
  { imageId: 'c', references: ['A river runs through the green field.', 'green field with a river', 'a river and a field'] },
  { imageId: 'd', references: ['two planes are parked at the airport', 'planes near a runway'] },
];

const candidates = [
  'a red car beside the road',
  'a car car car on the road road',
  'a purple elephant dances', // words no reference has
  '',
  'a river runs through the green field',
  'many green trees surround a white house near a river and a field beside planes',
  'road',
];

describe('CiderDScorer', () => {
  it('scores each candidate as computeCiderD does over the corpus, to the last bit', () => {
    const scorer = new CiderDScorer(corpus);
    for (const [image, set] of corpus.entries()) {
      for (const candidate of candidates) {
        // The corpus scorer on tokenized items, this candidate at this image, the references' own text elsewhere.
        const items = tokenizeItems(corpus.map((s, i) => ({ imageId: s.imageId, candidate: i === image ? candidate : s.references[0]!, references: s.references })));
        const expected = computeCiderD(items).perImage[image]!;
        expect(scorer.score(set.imageId, candidate), `${set.imageId}: ${candidate}`).toBe(expected);
      }
    }
  });

  it('never grows: unseen n-grams are forgotten, and scores repeat exactly', () => {
    const scorer = new CiderDScorer(corpus);
    const first = candidates.map((c) => scorer.score('a', c));
    for (let i = 0; i < 3; i++) expect(candidates.map((c) => scorer.score('a', c))).toEqual(first);
    expect(scorer.scoreWords('a', ['a', 'red', 'car', 'beside', 'the', 'road'])).toBe(first[0]);
    expect(scorer.imageCount).toBe(4);
  });

  it('refuses an empty corpus, repeated ids, images without references and unknown images', () => {
    expect(() => new CiderDScorer([])).toThrow(MetricsInputError);
    expect(() => new CiderDScorer([corpus[0]!, corpus[0]!])).toThrow(/appears twice/);
    expect(() => new CiderDScorer([{ imageId: 1, references: [] }])).toThrow(/at least one reference/);
    expect(() => new CiderDScorer(corpus).score('zzz', 'a')).toThrow(/no references for image "zzz"/);
  });
});
