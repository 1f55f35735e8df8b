import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { DatasetImage, Split } from '../dataset/types';
import { buildCategoryLabels, CategoryLabels } from './categories';
import { extractNouns, NounExtractor } from './extractor';
import { DEFAULT_NOUN_STOP_LIST, DEFAULT_TAG_OVERRIDES } from './lexicon';

interface GoldItem {
  sentid: number;
  caption: string;
  nouns: string[];
}

const gold = JSON.parse(readFileSync(new URL('./fixtures/ucm-nouns-gold.json', import.meta.url), 'utf8')) as { items: GoldItem[] };

function precisionRecall(extractor: NounExtractor): { precision: number; recall: number; misses: string[] } {
  let truePositives = 0;
  let found = 0;
  let expected = 0;
  const misses: string[] = [];
  for (const item of gold.items) {
    const predicted = new Set(extractor.nounsOf(item.caption.split(' ')));
    const wanted = new Set(item.nouns);
    found += predicted.size;
    expected += wanted.size;
    for (const noun of predicted) {
      if (wanted.has(noun)) truePositives++;
      else misses.push(`extra "${noun}" in: ${item.caption}`);
    }
    for (const noun of wanted) if (!predicted.has(noun)) misses.push(`missed "${noun}" in: ${item.caption}`);
  }
  return { precision: truePositives / found, recall: truePositives / expected, misses };
}

describe('noun extraction against hand-labelled UCM captions', () => {
  it('has at least 100 labelled captions, each noun taken from its caption', () => {
    expect(gold.items.length).toBeGreaterThanOrEqual(100);
    for (const item of gold.items) for (const noun of item.nouns) expect(item.caption.split(' ')).toContain(noun);
  });

  it('reaches precision and recall >= 0.95 with the domain lexicon', () => {
    const { precision, recall, misses } = precisionRecall(new NounExtractor());
    if (!process.env.S2CPNET_QUIET) console.log(`with lexicon: P=${precision.toFixed(3)} R=${recall.toFixed(3)}`, misses);
    expect(precision).toBeGreaterThanOrEqual(0.95);
    expect(recall).toBeGreaterThanOrEqual(0.95);
  });

  it('reaches precision and recall >= 0.95 with the bare tagger too (the lexicon is not what carries it)', () => {
    const { precision, recall, misses } = precisionRecall(new NounExtractor({ overrides: [] }));
    if (!process.env.S2CPNET_QUIET) console.log(`bare tagger: P=${precision.toFixed(3)} R=${recall.toFixed(3)}`, misses);
    expect(precision).toBeGreaterThanOrEqual(0.95);
    expect(recall).toBeGreaterThanOrEqual(0.95);
    expect(precision).toBeLessThan(1); // the lexicon exists because the bare tagger does make mistakes here
  });
});

describe('NounExtractor', () => {
  const extractor = new NounExtractor();

  it('keeps singular and plural common nouns, not verbs, adjectives, pronouns or numerals', () => {
    expect(extractNouns('Two white airplanes are parked at the airport near it.')).toEqual(['airplanes', 'airport']);
    expect(extractor.nounsOf(['many', 'buildings', 'with', 'a', 'swimming', 'pool'])).toEqual(['buildings', 'swimming', 'pool']);
  });

  it('treats a hyphenated token as one noun when its last part is a noun', () => {
    expect(extractor.nounsOf(['this', 'is', 'a', 't-junction'])).toEqual(['t-junction']);
  });

  it('applies context-conditioned overrides only in their context', () => {
    const tags = extractor.tag(['a', 'crystal', 'clear', 'lake', 'and', 'a', 'crystal']);
    expect(tags[1]!.noun).toBeNull();
    expect(tags[6]!.noun).toBe('crystal');
  });

  it('merges plurals on request, without touching gerunds, and lets the stop-list see the surface form', () => {
    const merging = new NounExtractor({ mergePlurals: true });
    expect(merging.nounsOf(['two', 'airplanes', 'and', 'an', 'airplane', 'near', 'swimming', 'pools'])).toEqual(['airplane', 'swimming', 'pool']);
    expect(merging.nounsOf(['lots', 'of', 'cars', 'in', 'the', 'parking', 'lot'], new Set(['lots']))).toEqual(['car', 'parking', 'lot']);
  });

  it('documents every override and keeps the spec stop-list words', () => {
    expect(DEFAULT_TAG_OVERRIDES.every((o) => o.reason.length > 10 && o.word === o.word.toLowerCase())).toBe(true);
    for (const word of ['one', 'size', 'kinds', 'lots', 'side', 'part']) expect(DEFAULT_NOUN_STOP_LIST).toContain(word);
  });
});

function image(id: string, split: Split, ...captions: string[]): DatasetImage {
  return { id, file: `/x/${id}`, split, jsonPath: '$', captions: captions.map((raw) => ({ raw, tokens: raw.split(' ') })) };
}

describe('buildCategoryLabels', () => {
  const dataset = {
    images: [
      image('1', 'train', 'an airplane at the airport', 'an airplane on the runway', 'lots of cars'),
      image('2', 'train', 'an airplane near the airport', 'two airplanes and some cars'),
      image('3', 'train', 'a river with trees', 'an airplane at the airport'),
      image('4', 'val', 'a river and a river and trees', 'trees trees', 'a river'),
      image('5', 'test', 'a beach'),
    ],
  };
  const labels = buildCategoryLabels(dataset, { minNounFreq: 2 });

  it('keeps nouns seen in at least minNounFreq TRAIN captions, minus the stop-list', () => {
    // train caption counts: airplane 4, airport 3, cars 2, runway 1, airplanes 1, river 1, trees 1, lots (stop-list)
    expect(labels.classes).toEqual(['airplane', 'airport', 'cars']);
    expect(labels.trainCounts).toEqual([4, 3, 2]);
    expect(labels.settings.tagger).toContain('wink-nlp');
  });

  it('labels every image with the union of the class nouns of its captions', () => {
    expect(labels.nounsOf('1')).toEqual(['airplane', 'airport', 'cars']);
    expect(labels.nounsOf('3')).toEqual(['airplane', 'airport']);
    expect(labels.nounsOf('4')).toEqual([]); // river and trees are val-only frequent: not classes
    expect(Array.from(labels.multiHot('2'))).toEqual([1, 1, 1]);
    expect(Array.from(labels.multiHot('5'))).toEqual([0, 0, 0]);
  });

  it('round-trips through JSON and validates it', () => {
    const json = JSON.parse(JSON.stringify(labels.toJSON()));
    const back = CategoryLabels.fromJSON(json, 'nouns.json');
    expect(back.classes).toEqual(labels.classes);
    expect(back.nounsOf('1')).toEqual(labels.nounsOf('1'));
    expect(() => CategoryLabels.fromJSON({ ...json, images: { 1: ['boat'] } }, 'nouns.json')).toThrow(
      /nouns\.json: \$\.images\["1"\]\[0\]: "boat" is not one of the classes/,
    );
  });

  it('uses the spec default of 5 train captions', () => {
    expect(buildCategoryLabels(dataset).classes).toEqual([]);
  });
});
