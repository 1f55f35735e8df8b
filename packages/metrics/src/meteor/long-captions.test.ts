/**
 * METEOR on captions far longer than any real one: the alignment search keeps Meteor's beam of 40 paths and
 * builds only those (memory grows with the caption, not with the caption times the matches), and the scorers
 * refuse captions over the word limit unless it is raised.
 */
import { describe, expect, it } from 'vitest';

import { MetricsInputError } from '../errors.js';
import { DEFAULT_MAX_CAPTION_WORDS } from '../validate.js';
import { computeMeteor } from './meteor.js';

/** Deterministic caption words from a small vocabulary, so that every reference word matches many of them. */
function longCaption(words: number, seed = 7): string {
  const vocabulary = 'a large white building is near the parking lot with many cars and green trees around two buildings road river bridge over in of on'.split(' ');
  let state = seed;
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    out.push(vocabulary[state % vocabulary.length]!);
  }
  return out.join(' ');
}

const REFERENCES = [
  'a large white building is near a parking lot with many cars',
  'many green trees are around the building',
  'there is a bridge over the river',
  'two buildings are near a road',
  'some cars are parked in the parking lot',
];

describe('METEOR on very long captions', () => {
  it('scores a 20,000-word candidate against normal references', () => {
    const result = computeMeteor([{ imageId: 'long', candidate: longCaption(20_000), references: REFERENCES }], {
      maxCaptionWords: 20_000,
    });
    const image = result.perImage[0]!;
    expect(image.stats[0]).toBe(20_000);
    expect(image.score).toBeGreaterThan(0);
    expect(image.score).toBeLessThanOrEqual(1);
    // Every reference word occurs in the candidate, so the best reference is fully matched.
    expect(image.stats[22]).toBe(image.stats[1]);
  });

  it('scores a normal candidate against a 20,000-word reference', () => {
    const result = computeMeteor(
      [{ imageId: 'long-ref', candidate: 'a large white building near a parking lot', references: [longCaption(20_000, 11)] }],
      { maxCaptionWords: 20_000 },
    );
    const image = result.perImage[0]!;
    expect(image.stats[1]).toBe(20_000);
    expect(image.stats[21]).toBe(8);
    expect(image.score).toBeGreaterThan(0);
    expect(image.score).toBeLessThanOrEqual(1);
  });

  it(`refuses a caption of more than ${DEFAULT_MAX_CAPTION_WORDS} words by default, naming the image and the limit`, () => {
    const items = [{ imageId: 'img-7', candidate: longCaption(DEFAULT_MAX_CAPTION_WORDS + 1), references: REFERENCES }];
    expect(() => computeMeteor(items)).toThrow(MetricsInputError);
    expect(() => computeMeteor(items)).toThrow(
      /image_id "img-7": the candidate caption has 1001 words, more than the limit of 1000 \(raise it with maxCaptionWords/,
    );
    const longReference = [{ imageId: 3, candidate: 'a road', references: ['a road', longCaption(1500)] }];
    expect(() => computeMeteor(longReference)).toThrow(/image_id 3: reference 1 has 1500 words, more than the limit of 1000/);
    // Exactly at the limit is fine.
    const atLimit = computeMeteor([{ imageId: 1, candidate: longCaption(DEFAULT_MAX_CAPTION_WORDS), references: REFERENCES }]);
    expect(atLimit.perImage[0]!.stats[0]).toBe(DEFAULT_MAX_CAPTION_WORDS);
  });
});
