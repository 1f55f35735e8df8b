/**
 * The WordNet 3.0 synonym data this package ships (`data/`, built by `scripts/build-wordnet.mjs`) against the files
 * Meteor 1.5 itself reads, and the loader's other source: WordNet directories a user gives.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

import { describe, expect, it } from 'vitest';

import { METEOR_RESOURCES_DIR } from '../testing/golden.js';
import { ENGLISH_NONBREAKING_PREFIXES } from './resources/nonbreaking-prefixes.js';
import { ENGLISH_FUNCTION_WORDS } from './resources/function-words.js';
import { loadDefaultSynonymDictionary, loadSynonymDictionary } from './synonyms.js';

const DATA_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'data');

/** A shipped data file: `key value value ...` per line, as key -> sorted values. */
function readShippedData(name: string): Map<string, string[]> {
  const text = gunzipSync(readFileSync(join(DATA_DIR, name))).toString('latin1');
  const entries = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [key, ...values] = line.split(' ');
    expect(entries.has(key!), `${name}: ${key} appears twice`).toBe(false);
    entries.set(key!, values.sort());
  }
  return entries;
}

/** Keys whose values differ between two maps (either side missing included), for a short failure message. */
function differentKeys(actual: Map<string, string[]>, expected: Map<string, string[]>): string[] {
  const keys = new Set([...actual.keys(), ...expected.keys()]);
  return [...keys].filter((key) => actual.get(key)?.join(' ') !== expected.get(key)?.join(' '));
}

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

  it('the shipped data files hold exactly english.synsets and english.exceptions, with the WordNet licence beside them', () => {
    // Meteor's files have a word line, then a line of its synset offsets; the shipped file one line per word.
    const synsets = new Map(readPairs('english.synsets').map(([word, offsets]) => [word, offsets.split(' ').sort()]));
    expect(synsets.size).toBe(147_306);
    expect(differentKeys(readShippedData('wordnet-3.0-synsets.txt.gz'), synsets)).toEqual([]);
    // Meteor's exceptions file has a base form, then the irregular forms of it; the shipped file is by form.
    const exceptions = new Map<string, string[]>();
    for (const [base, forms] of readPairs('english.exceptions')) {
      for (const form of forms.split(' ')) exceptions.set(form, [...(exceptions.get(form) ?? []), base]);
    }
    for (const bases of exceptions.values()) bases.sort();
    expect(differentKeys(readShippedData('wordnet-3.0-exceptions.txt.gz'), exceptions)).toEqual([]);
    expect(readFileSync(join(DATA_DIR, 'WORDNET-LICENSE'), 'latin1')).toMatch(/WordNet 3\.0 Copyright 2006 by Princeton University/);
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

  it('reads WordNet index and exception files from directories a user gives, each source on its own', () => {
    const directory = mkdtempSync(join(tmpdir(), 's2cpnet-wordnet-'));
    try {
      const licence = '  1 WordNet 3.0 Copyright 2006 by Princeton University.  \n';
      writeFileSync(join(directory, 'index.noun'), `${licence}harbour n 2 1 @ 2 0 00000111 00000222  \nport n 1 1 @ 1 0 00000111  \n`);
      writeFileSync(join(directory, 'index.verb'), `${licence}dock v 1 1 @ 1 0 00000222  \n`);
      writeFileSync(join(directory, 'index.adj'), licence);
      writeFileSync(join(directory, 'index.adv'), licence);
      for (const pos of ['noun', 'verb', 'adj', 'adv']) writeFileSync(join(directory, `${pos}.exc`), pos === 'verb' ? 'docken dock\n' : '');
      const own = loadSynonymDictionary({ indexDirectory: directory, exceptionDirectory: directory });
      expect(own.size).toBe(3);
      expect(own.synsets('harbour')).toEqual([111, 222]);
      expect(own.irregularBases('docken')).toEqual(['dock']);
      expect(own.irregularBases('are')).toBeUndefined();
      expect(own.stemSynsets('docken')).toEqual([222]);
      // Only the exceptions given: the synsets are the shipped WordNet 3.0 ones.
      const mixed = loadSynonymDictionary({ exceptionDirectory: directory });
      expect(mixed.size).toBe(dictionary.size);
      expect(mixed.irregularBases('docken')).toEqual(['dock']);
      expect(mixed.irregularBases('are')).toBeUndefined();
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it('reports a missing data directory as an input error naming the file', () => {
    expect(() => loadSynonymDictionary({ indexDirectory: '/nonexistent/wordnet' })).toThrow(/\/nonexistent\/wordnet\/index\.noun/);
  });
});
