/**
 * The synonym data we build from the npm WordNet 3.0 packages against the files Meteor 1.5 itself reads.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { METEOR_RESOURCES_DIR } from '../testing/golden.js';
import { ENGLISH_NONBREAKING_PREFIXES } from './resources/nonbreaking-prefixes.js';
import { ENGLISH_FUNCTION_WORDS } from './resources/function-words.js';
import { loadDefaultSynonymDictionary, loadSynonymDictionary } from './synonyms.js';

function readPairs(file: string): [string, string][] {
  const lines = readFileSync(join(METEOR_RESOURCES_DIR!, file), 'utf8').split('\n');
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < lines.length; i += 2) pairs.push([lines[i]!, lines[i + 1]!]);
  return pairs;
}

describe.skipIf(METEOR_RESOURCES_DIR === undefined)("Meteor 1.5's own resource files", () => {
  const dictionary = loadDefaultSynonymDictionary();

  it('english.synsets: the same words with the same synset offsets', () => {
    const pairs = readPairs('english.synsets');
    expect(dictionary.size).toBe(pairs.length);
    const different = pairs.filter(([word, offsets]) => {
      const expected = new Set(offsets.split(' ').map(Number));
      const actual = new Set(dictionary.synsets(word));
      return actual.size !== expected.size || [...expected].some((offset) => !actual.has(offset));
    });
    expect(different.map(([word]) => word)).toEqual([]);
  });

  it('english.exceptions: the same irregular forms with the same base forms', () => {
    const expected = new Map<string, Set<string>>();
    for (const [base, forms] of readPairs('english.exceptions')) {
      for (const form of forms.split(' ')) {
        if (!expected.has(form)) expected.set(form, new Set());
        expected.get(form)!.add(base);
      }
    }
    const different = [...expected].filter(([form, bases]) => {
      const actual = new Set(dictionary.irregularBases(form) ?? []);
      return actual.size !== bases.size || [...bases].some((base) => !actual.has(base));
    });
    expect(different.map(([form]) => form)).toEqual([]);
  });

  it('english.words: the embedded function-word list', () => {
    const words = readFileSync(join(METEOR_RESOURCES_DIR!, 'english.words'), 'utf8').split('\n');
    if (words[words.length - 1] === '') words.pop();
    expect([...ENGLISH_FUNCTION_WORDS]).toEqual(words);
  });

  it('english.prefixes: the embedded non-breaking prefixes', () => {
    const expected = new Map<string, string>();
    for (const line of readFileSync(join(METEOR_RESOURCES_DIR!, 'english.prefixes'), 'utf8').split('\n')) {
      const tokens = line.split(/\s+/).filter(Boolean);
      if (tokens.length === 0 || tokens[0]!.startsWith('#')) continue;
      expected.set(tokens[0]!, tokens[1] === '#NUMERIC_ONLY#' ? 'numeric' : 'any');
    }
    expect(new Map(ENGLISH_NONBREAKING_PREFIXES)).toEqual(expected);
  });
});

describe('synonym dictionary behaviour', () => {
  const dictionary = loadDefaultSynonymDictionary();

  it("applies WordNet's morphy suffix rules in Meteor's order", () => {
    expect(dictionary.morph('ships')).toBe('ship');
    expect(dictionary.morph('boxes')).toBe('box');
    expect(dictionary.morph('parked')).toBe('park');
    expect(dictionary.morph('dress')).toBe('dress');
    expect(dictionary.morph('qzxv')).toBe('');
  });

  it('uses irregular forms before the suffix rules', () => {
    expect(dictionary.irregularBases('are')).toContain('be');
    const be = new Set(dictionary.synsets('be'));
    expect(dictionary.stemSynsets('is').some((offset) => be.has(offset))).toBe(true);
  });

  it('keys synsets by offset alone, so offsets shared across parts of speech link unrelated words', () => {
    // parking/green and bridge/spans match in the jar's output for this reason.
    const green = dictionary.matchSet('green');
    expect([...dictionary.matchSet('parking')].some((offset) => green.has(offset))).toBe(true);
    const spans = dictionary.matchSet('spans');
    expect([...dictionary.matchSet('bridge')].some((offset) => spans.has(offset))).toBe(true);
  });

  it('reports a missing data directory as an input error naming the file', () => {
    expect(() => loadSynonymDictionary({ indexDirectory: '/nonexistent/wordnet' })).toThrow(/\/nonexistent\/wordnet\/index\.noun/);
  });
});
