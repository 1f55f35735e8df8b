import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { DatasetImage, Split } from '../dataset/types';
import { buildCategoryLabels, CategoryLabels, DEFAULT_NOUN_RULES } from './categories';
import { extractNouns, NounExtractor } from './extractor';
import { DEFAULT_NOUN_STOP_LIST, DEFAULT_TAG_OVERRIDES, layoutUse } from './lexicon';

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

  // Out-of-sample cases written for the layout rules (not UCM captions): the same words as layout and as things.
  it('layout rules: layout words used as layout are not targets; the same words naming things are', () => {
    const targets = new NounExtractor({ layoutRules: true, mergePlurals: true });
    const cases: [string, string[]][] = [
      ['many cars arranged in lines in the parking lot', ['car', 'parking', 'lot']],
      ['the farmland is divided into rectangles by narrow roads', ['farmland', 'road']],
      ['small houses built in two neat lines along the street', ['house', 'street']],
      ['storage tanks placed in a circle around a pump house', ['storage', 'tank', 'pump', 'house']],
      ['a line of tall trees beside the river', ['tree', 'river']],
      ['solar panels laid out in a grid on the roof', ['panel', 'roof']], // "solar": an adjective to the tagger
      ['a straight runway with white marking lines on it', ['runway', 'marking', 'line']],
      ['two runways with mark lines and a terminal', ['runway', 'mark', 'line', 'terminal']],
      ['a statue stands in the circle', ['statue', 'circle']], // "in the": a place, not a layout
      ['trees grow in the strip between the roads', ['tree', 'strip', 'road']],
      ['a long landing strip next to a hangar', ['landing', 'strip', 'hangar']],
    ];
    for (const [caption, expected] of cases) expect(targets.nounsOf(caption), caption).toEqual(expected);
    // Without the rules (noun rules v1) the layout uses are nouns like any other.
    expect(new NounExtractor().nounsOf('many cars arranged in lines in the parking lot')).toEqual(['cars', 'lines', 'parking', 'lot']);
    expect(layoutUse('cars parked in lines'.split(' '), 3)).toMatch(/"in … lines": how targets are laid out/);
    expect(layoutUse('a line of trees'.split(' '), 1)).toMatch(/a quantity/);
    expect(layoutUse('white marking lines'.split(' '), 2)).toBeNull();
    expect(layoutUse('a grove of trees'.split(' '), 1)).toBeNull(); // not a layout word
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
  // Noun rules v1 here (every noun as written); v2, the default, is the test after these.
  const labels = buildCategoryLabels(dataset, { minNounFreq: 2, rules: 'v1' });

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
    expect(buildCategoryLabels(dataset, { rules: 'v1' }).classes).toEqual([]);
    // With plurals merged (v2, the default) "airplane" is in 5 train captions: 4 as "airplane", 1 as "airplanes".
    expect(buildCategoryLabels(dataset).classes).toEqual(['airplane']);
  });

  it('noun rules v2 (default) merge singular and plural into one class and leave out layout words; v1 keeps them apart', () => {
    expect(DEFAULT_NOUN_RULES).toBe('v2');
    const sydney = {
      images: [
        image('1', 'train', 'two runways and a terminal', 'a runway near the terminal'),
        image('2', 'train', 'planes parked in lines near the runways', 'a plane on the runway'),
        image('3', 'train', 'a plane and planes', 'cars arranged in lines'),
        image('4', 'val', 'a runway'),
      ],
    };
    const v2 = buildCategoryLabels(sydney, { minNounFreq: 2 });
    expect(v2.classes).toEqual(['runway', 'plane', 'terminal']);
    expect(v2.trainCounts).toEqual([4, 3, 2]);
    expect(v2.nounsOf('4')).toEqual(['runway']);
    expect(v2.settings).toMatchObject({ rules: 'v2', mergePlurals: true, layoutRules: true });
    const v1 = buildCategoryLabels(sydney, { minNounFreq: 2, rules: 'v1' });
    expect(v1.classes).toEqual(['lines', 'plane', 'planes', 'runway', 'runways', 'terminal']);
    expect(v1.settings).toMatchObject({ rules: 'v1', mergePlurals: false, layoutRules: false });
    // Saved settings keep the rules; files written before they were versioned read as v1.
    expect(CategoryLabels.fromJSON(JSON.parse(JSON.stringify(v2.toJSON()))).settings.rules).toBe('v2');
    const old = JSON.parse(JSON.stringify(v1.toJSON()));
    delete old.settings.rules;
    delete old.settings.layoutRules;
    expect(CategoryLabels.fromJSON(old).settings).toMatchObject({ rules: 'v1', layoutRules: false });
    expect(() => CategoryLabels.fromJSON({ ...old, settings: { ...old.settings, rules: 'v9' } }, 'nouns.json')).toThrow(/\$\.settings\.rules: expected "v1", "v2" or "custom"/);
    expect(() => buildCategoryLabels(sydney, { rules: 'v9' as 'v1' })).toThrow(/nounRules/);
  });
});
