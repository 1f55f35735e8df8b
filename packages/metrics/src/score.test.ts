import { describe, expect, it } from 'vitest';

import { MetricsInputError } from './errors.js';
import { scoreCaptions, scoreCaptionsSync, smScore } from './score.js';
import { GOLDEN_DIR, GOLDEN_SUBSETS, goldenItems, goldenScores } from './testing/golden.js';
import type { MetricName } from './types.js';

describe.skipIf(GOLDEN_DIR === undefined)('scoreCaptions on the golden data', () => {
  it.each(GOLDEN_SUBSETS)('%s: raw captions, tokenized by us, give the toolkit numbers', async (subset) => {
    const golden = goldenScores(subset);
    const report = await scoreCaptions(goldenItems(subset, true));
    const corpus = golden.corpus;
    expect(Math.abs(report.corpus.Bleu_4! - corpus.Bleu_4)).toBeLessThanOrEqual(1e-9);
    expect(Math.abs(report.corpus.ROUGE_L! - corpus.ROUGE_L)).toBeLessThanOrEqual(1e-9);
    expect(Math.abs(report.corpus.CIDEr! - corpus.CIDEr)).toBeLessThanOrEqual(1e-9);
    expect(Math.abs(report.corpus.METEOR! - corpus.METEOR_no_paraphrase)).toBeLessThanOrEqual(1e-6);
    expect(Math.abs(report.corpus.Sm! - corpus.Sm_with_METEOR_no_paraphrase)).toBeLessThanOrEqual(1e-6);
    report.perImage.forEach((image, index) => {
      const expected = golden.per_image[index]!;
      expect(image.imageId).toBe(expected.image_id);
      expect(Math.abs(image.Bleu_1! - expected.Bleu_1)).toBeLessThanOrEqual(1e-9);
      expect(Math.abs(image.CIDEr! - expected.CIDEr)).toBeLessThanOrEqual(1e-9);
      expect(Math.abs(image.METEOR! - expected.METEOR_no_paraphrase)).toBeLessThanOrEqual(1e-6);
    });
  });

  it('with tokenize: false, pre-tokenized captions give the same numbers as raw ones with tokenize: true', () => {
    const raw = scoreCaptionsSync(goldenItems('random_50', true));
    const pretokenized = scoreCaptionsSync(goldenItems('random_50'), { tokenize: false });
    expect(pretokenized.corpus).toEqual(raw.corpus);
    expect(pretokenized.timingsMs.tokenize).toBeUndefined();
  });
});

describe('scoreCaptions options and checks', () => {
  const items = [
    { imageId: 1, candidate: 'A big stadium with white stands.', references: ['there is a big stadium with white stands'] },
    { imageId: 2, candidate: 'many ships in the port', references: ['several ships are docked in the port', 'a port'] },
  ];

  it('computes only the chosen metrics, and Sm only when all four are there', () => {
    const report = scoreCaptionsSync(items, { metrics: ['Bleu', 'CIDEr'] });
    expect(Object.keys(report.corpus)).toEqual(['Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'CIDEr']);
    expect(Object.keys(report.perImage[0]!)).toEqual(['imageId', 'Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'CIDEr']);
    expect(report.timingsMs.METEOR).toBeUndefined();
  });

  it('gives Sm as the mean of Bleu_4, METEOR, ROUGE_L and CIDEr, per image and for the corpus', () => {
    const report = scoreCaptionsSync(items);
    const { Bleu_4, METEOR, ROUGE_L, CIDEr, Sm } = report.corpus;
    expect(Sm).toBe(smScore(Bleu_4!, METEOR!, ROUGE_L!, CIDEr!));
    const image = report.perImage[1]!;
    expect(image.Sm).toBe((image.Bleu_4! + image.METEOR! + image.ROUGE_L! + image.CIDEr!) / 4);
  });

  it('the async and sync calls agree', async () => {
    expect((await scoreCaptions(items)).corpus).toEqual(scoreCaptionsSync(items).corpus);
  });

  it('rejects bad input with the image named', () => {
    expect(() => scoreCaptionsSync([])).toThrow(/no images/);
    expect(() => scoreCaptionsSync([{ imageId: 7, candidate: 'x', references: [] }])).toThrow(/image_id 7.*at least one reference/);
    expect(() =>
      scoreCaptionsSync([{ imageId: 7, candidate: 5 as unknown as string, references: ['a'] }]),
    ).toThrow(MetricsInputError);
    expect(() => scoreCaptionsSync([...items, items[0]!])).toThrow(/image_id 1.*twice/);
    expect(() => scoreCaptionsSync(items, { metrics: ['BLEU' as MetricName] })).toThrow(/unknown metric "BLEU"/);
  });

  it('limits caption length in words, on the text as given and after PTB tokenization, for every metric', async () => {
    const words = (count: number): string => Array.from({ length: count }, (_, i) => ['a', 'ship', 'in', 'port'][i % 4]).join(' ');
    const long = [{ imageId: 'x', candidate: words(1200), references: ['a ship in a port'] }];
    expect(() => scoreCaptionsSync(long)).toThrow(/image_id "x": the candidate caption has 1200 words, more than the limit of 1000/);
    await expect(scoreCaptions(long, { metrics: ['Bleu'] })).rejects.toThrow(MetricsInputError);
    expect(() => scoreCaptionsSync([{ imageId: 2, candidate: 'a', references: ['a', words(1001)] }])).toThrow(/image_id 2: reference 1 has 1001 words/);
    // 600 words as written, 1,200 tokens once PTB splits the clitics off (ship 's).
    const clitics = [{ imageId: 3, candidate: Array.from({ length: 600 }, () => "ship's").join(' '), references: ['a ship'] }];
    expect(() => scoreCaptionsSync(clitics)).toThrow(/image_id 3: the candidate caption has 1200 words after PTB tokenization, more than the limit of 1000/);
    expect(scoreCaptionsSync(clitics, { tokenize: false }).perImage).toHaveLength(1);
    // A raised limit, or none, lets them through; a limit that is not a positive whole number is an error.
    const report = scoreCaptionsSync(long, { maxCaptionWords: 1200 });
    expect(report.corpus.METEOR).toBeGreaterThan(0);
    expect(scoreCaptionsSync(long, { maxCaptionWords: Infinity }).corpus).toEqual(report.corpus);
    expect(() => scoreCaptionsSync(items, { maxCaptionWords: 4 })).toThrow(/image_id 1: the candidate caption has 6 words/);
    for (const bad of [0, -1, 2.5, Number.NaN]) expect(() => scoreCaptionsSync(items, { maxCaptionWords: bad })).toThrow(/maxCaptionWords must be/);
  });

  it('the sync call refuses a jar or a table file (they need async work)', () => {
    expect(() => scoreCaptionsSync(items, { meteor: { jarPath: '/x.jar' } })).toThrow(/use scoreCaptions/);
  });
});
