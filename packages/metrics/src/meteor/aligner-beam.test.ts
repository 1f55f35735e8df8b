/**
 * The aligner's beam search, which builds only the 40 paths it keeps, against a direct transcription of Meteor's
 * (`aligner-reference.test-util.ts`), which builds and sorts every extension. Captions are drawn from a small
 * vocabulary with exact, stem and synonym relations, so that most reference words have many candidate matches,
 * the beam overflows at most positions and ties between paths are frequent.
 */
import { describe, expect, it } from 'vitest';

import { ENGLISH_FUNCTION_WORDS } from './resources/function-words.js';
import { MeteorAligner } from './aligner.js';
import { MeteorTranscriptionAligner } from './aligner-reference.test-util.js';
import { SnowballEnglishStemmer } from './stemmer.js';
import { loadDefaultSynonymDictionary } from './synonyms.js';

const VOCABULARY = [
  'a', 'the', 'is', 'are', 'be', 'of', 'building', 'buildings', 'built', 'construction', 'house', 'houses', 'car', 'cars',
  'auto', 'automobile', 'green', 'parking', 'bridge', 'spans', 'span', 'river', 'rivers', 'top', 'covered', 'blue', 'dark',
];

function randomWords(next: () => number, length: number, vocabularySize: number): string[] {
  return Array.from({ length }, () => VOCABULARY[Math.floor(next() * vocabularySize)]!);
}

describe('the bounded beam search chooses what Meteor\'s search chooses', () => {
  const resources = {
    stemmer: new SnowballEnglishStemmer(),
    synonyms: loadDefaultSynonymDictionary(),
    functionWords: new Set(ENGLISH_FUNCTION_WORDS),
  };

  it('on 400 random caption pairs with many competing matches', () => {
    let state = 20_240_613;
    const next = (): number => {
      state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
      return state / 2 ** 32;
    };
    const bounded = new MeteorAligner(resources);
    const transcription = new MeteorTranscriptionAligner(resources);
    let compared = 0;
    for (let trial = 0; trial < 400; trial++) {
      const vocabularySize = 3 + Math.floor(next() * (VOCABULARY.length - 3));
      const candidate = randomWords(next, 1 + Math.floor(next() * 60), vocabularySize);
      const reference = randomWords(next, 1 + Math.floor(next() * 25), vocabularySize);
      const expected = transcription.align(candidate, reference);
      const actual = bounded.align(candidate, reference);
      expect(actual, `${candidate.join(' ')} ||| ${reference.join(' ')}`).toEqual(expected);
      compared++;
    }
    expect(compared).toBe(400);
  });
});
