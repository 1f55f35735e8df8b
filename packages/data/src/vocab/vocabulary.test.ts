import { describe, expect, it } from 'vitest';
import type { DatasetImage, Split } from '../dataset/types';
import { countLongCaptions, Vocabulary } from './vocabulary';

function image(id: string, split: Split, ...captions: string[]): DatasetImage {
  return {
    id,
    file: `/images/${id}`,
    split,
    jsonPath: '$',
    captions: captions.map((raw) => ({ raw, tokens: raw.split(' ') })),
  };
}

// "road" 3x in train, "river" 2x in train + 5x in val (must not count), "cars" once.
const dataset = {
  images: [
    image('a', 'train', 'a road', 'a road and a river'),
    image('b', 'train', 'a road with cars', 'a river'),
    image('c', 'val', 'river river river river river'),
    image('d', 'test', 'a lake'),
  ],
};

describe('Vocabulary.build', () => {
  it('counts TRAIN only, keeps words seen at least minWordFreq times, special tokens first', () => {
    const vocabulary = Vocabulary.build(dataset, { minWordFreq: 3 });
    expect(vocabulary.wordOf(0)).toBe('<pad>');
    expect([vocabulary.startId, vocabulary.endId, vocabulary.unknownId]).toEqual([1, 2, 3]);
    expect(vocabulary.wordList).toEqual(['a', 'road']); // a: 5, road: 3; river only 2 in train
    expect(vocabulary.size).toBe(6);
    expect(vocabulary.idOf('river')).toBe(vocabulary.unknownId);
    expect(vocabulary.trainCount('a')).toBe(5);
  });

  it('orders ties alphabetically so ids do not depend on file order', () => {
    const forward = Vocabulary.build(dataset, { minWordFreq: 1 });
    const reversed = Vocabulary.build({ images: [...dataset.images].reverse() }, { minWordFreq: 1 });
    expect(reversed.wordList).toEqual(forward.wordList);
    expect(forward.wordList).toEqual(['a', 'road', 'river', 'and', 'cars', 'with']);
  });

  it('defaults to minWordFreq 5 and maxCaptionWords 25', () => {
    const vocabulary = Vocabulary.build(dataset);
    expect(vocabulary.settings).toEqual({ minWordFreq: 5, maxCaptionWords: 25 });
    expect(vocabulary.wordList).toEqual(['a']);
  });

  it('rejects nonsense settings', () => {
    expect(() => Vocabulary.build(dataset, { minWordFreq: 0 })).toThrow(/minWordFreq: expected an integer >= 1, found 0/);
  });
});

describe('encoding', () => {
  const vocabulary = Vocabulary.build(dataset, { minWordFreq: 1, maxCaptionWords: 3 });

  it('encodes a training row with <start>, <end>, padding, <unk> and lower-casing', () => {
    const row = vocabulary.encodeCaption(['A', 'road', 'lake'], 7);
    expect(Array.from(row)).toEqual([1, vocabulary.idOf('a'), vocabulary.idOf('road'), 3, 2, 0, 0]);
    expect(vocabulary.decode(row)).toEqual(['a', 'road', '<unk>']);
  });

  it('truncates captions longer than maxCaptionWords', () => {
    const row = vocabulary.encodeCaption(['a', 'road', 'and', 'a', 'river']);
    expect(row.length).toBe(5);
    expect(vocabulary.decode(row)).toEqual(['a', 'road', 'and']);
    expect(row[4]).toBe(vocabulary.endId);
  });

  it('writes rows into a batch buffer at an offset', () => {
    const buffer = new Int32Array(12).fill(-1);
    vocabulary.encodeCaption(['river'], 5, buffer, 5);
    expect(Array.from(buffer)).toEqual([-1, -1, -1, -1, -1, 1, vocabulary.idOf('river'), 2, 0, 0, -1, -1]);
    expect(() => vocabulary.encodeCaption(['river'], 5, buffer, 9)).toThrow(/does not fit/);
  });

  it('decode stops at <end> and skips <start>/<pad>; bad ids throw', () => {
    expect(vocabulary.decode([1, vocabulary.idOf('road'), 0, 2, vocabulary.idOf('a')])).toEqual(['road']);
    expect(() => vocabulary.decode([999])).toThrow(/id 999 is outside/);
  });
});

describe('saving', () => {
  it('round-trips through JSON with its settings', () => {
    const vocabulary = Vocabulary.build(dataset, { minWordFreq: 2, maxCaptionWords: 10 });
    const json = JSON.parse(JSON.stringify(vocabulary.toJSON()));
    expect(json.settings).toEqual({ minWordFreq: 2, maxCaptionWords: 10, lowerCase: true, countedOn: 'train' });
    const back = Vocabulary.fromJSON(json, 'vocabulary.json');
    expect(back.wordList).toEqual(vocabulary.wordList);
    expect(back.settings).toEqual(vocabulary.settings);
    expect(back.trainCount('road')).toBe(3);
  });

  it('names the JSON path of a broken vocabulary file', () => {
    const json = Vocabulary.build(dataset).toJSON();
    expect(() => Vocabulary.fromJSON({ ...json, words: ['<start>', ...json.words.slice(1)] }, 'v.json')).toThrow(
      /v\.json: \$\.words\[0\]: expected "<pad>"/,
    );
    expect(() => Vocabulary.fromJSON({ ...json, format: 'other' })).toThrow(/\$\.format/);
    expect(() => Vocabulary.fromJSON({ ...json, words: [...json.words, 'a'], trainCounts: [...json.trainCounts, 1] })).toThrow(/twice/);
  });
});

describe('countLongCaptions', () => {
  it('counts captions over the limit, per split or overall', () => {
    expect(countLongCaptions(dataset, 3)).toEqual({ truncated: 3, total: 6, longest: 5 });
    expect(countLongCaptions(dataset, 3, 'train')).toEqual({ truncated: 2, total: 4, longest: 5 });
  });
});
