/**
 * METEOR 1.5 as the COCO caption toolkit runs it (`java -jar meteor-1.5.jar - - -stdio -l en -norm`), in pure
 * TypeScript.
 *
 * Per image the toolkit sends `SCORE ||| ref1 ||| ... ||| refK ||| candidate` (the candidate with `|||` removed
 * and double spaces halved); Meteor normalises every segment with its own tokenizer, aligns the candidate with
 * each reference on its own and keeps the statistics of the first reference with the highest score. The corpus
 * score is the score of the field-wise sum of all images' statistics, not the mean of the image scores.
 *
 * Modules: exact, stem (Snowball English), synonym (WordNet 3.0) and, when a table is given, paraphrase. Without
 * a table the paraphrase module matches nothing, which is what Meteor does with an empty table.
 */
import { MetricsInputError } from '../errors.js';
import type { CaptionItem } from '../types.js';
import type { CaptionLimits } from '../validate.js';
import { assertScoreableItems } from '../validate.js';
import type { Alignment } from './aligner.js';
import { MeteorAligner } from './aligner.js';
import { javaTrim, meteorWords } from './normalizer.js';
import type { ParaphraseTable } from './paraphrase.js';
import { ENGLISH_FUNCTION_WORDS } from './resources/function-words.js';
import type { MeteorParameters, MeteorStats } from './stats.js';
import {
  METEOR_ENGLISH_RANK_PARAMETERS,
  meteorBreakdown,
  meteorScoreFromStats,
  statsFromAlignment,
  sumMeteorStats,
} from './stats.js';
import { SnowballEnglishStemmer } from './stemmer.js';
import type { SynonymDictionary } from './synonyms.js';
import { loadDefaultSynonymDictionary } from './synonyms.js';

/** Which Meteor modules run, and with what data; `maxCaptionWords` bounds the captions `computeMeteor` accepts. */
export interface MeteorOptions extends CaptionLimits {
  /** Stem module (Snowball English). Default true. */
  stem?: boolean;
  /**
   * Synonym module. Default true, using the WordNet 3.0 data shipped with this package (`data/`); pass a
   * dictionary to use other data, or false to switch the module off.
   */
  synonyms?: boolean | SynonymDictionary;
  /** Paraphrase module data (see `loadParaphraseTable`). Without it the module matches nothing. */
  paraphrases?: ParaphraseTable;
  /** Scoring parameters; default Meteor 1.5 English `rank` (0.85, 0.20, 0.60, 0.75; weights 1.0/0.6/0.8/0.6). */
  parameters?: MeteorParameters;
}

/** One image's METEOR result. */
export interface MeteorImageResult {
  score: number;
  /** The 23 statistics of the chosen reference. */
  stats: MeteorStats;
  /** Index of the reference Meteor kept: the first with the highest score. */
  chosenReference: number;
}

export interface MeteorResult {
  corpus: number;
  /** Field-wise sum of all images' statistics; `corpus` is its score. */
  corpusStats: MeteorStats;
  perImage: MeteorImageResult[];
}

/**
 * The segments Meteor's stdio protocol receives for one image: the toolkit joins them with ` ||| ` into one
 * line and Meteor splits that line again on `|||`, so a `|||` inside a reference makes extra references (and
 * one inside the candidate is removed beforehand). Line breaks would end the protocol line, so they become spaces.
 */
export function meteorSegments(candidate: string, references: readonly string[]): { test: string; refs: string[] } {
  const cleanedCandidate = candidate.replaceAll('|||', '').replaceAll('  ', ' ');
  const line = ['SCORE', ...references, cleanedCandidate].join(' ||| ').replace(/[\r\n]/g, ' ');
  const parts = line.split('|||');
  // Java's String.split drops trailing empty strings.
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  if (parts.length < 3) {
    throw new MetricsInputError('METEOR needs a candidate and at least one reference');
  }
  return {
    refs: parts.slice(1, -1).map(javaTrim),
    test: javaTrim(parts[parts.length - 1]!),
  };
}

/** A reusable METEOR scorer: holds the aligner with its caches and the normalised-word cache. */
export class MeteorScorer {
  private readonly aligner: MeteorAligner;
  private readonly parameters: MeteorParameters;
  private readonly segmentCache = new Map<string, { words: string[]; ids: number[] }>();

  constructor(options: MeteorOptions = {}) {
    const synonyms =
      options.synonyms === false
        ? undefined
        : options.synonyms === undefined || options.synonyms === true
          ? loadDefaultSynonymDictionary()
          : options.synonyms;
    this.aligner = new MeteorAligner({
      stemmer: options.stem === false ? undefined : new SnowballEnglishStemmer(),
      synonyms,
      paraphrases: options.paraphrases,
      functionWords: new Set(ENGLISH_FUNCTION_WORDS),
    });
    this.parameters = options.parameters ?? METEOR_ENGLISH_RANK_PARAMETERS;
  }

  private segment(text: string): { words: string[]; ids: number[] } {
    let segment = this.segmentCache.get(text);
    if (segment === undefined) {
      const words = meteorWords(text);
      segment = { words, ids: this.aligner.wordIds(words) };
      this.segmentCache.set(text, segment);
    }
    return segment;
  }

  /** Meteor's words for a segment (normalised and lower-cased), memoised. */
  words(segment: string): string[] {
    return this.segment(segment).words;
  }

  /** Align a candidate with one reference (both raw segments; Meteor normalises them). */
  alignPair(candidate: string, reference: string): Alignment {
    return this.aligner.alignIds(this.segment(candidate).ids, this.segment(reference).ids);
  }

  /** Score one image: align with every reference, keep the first with the strictly highest score. */
  scoreImage(candidate: string, references: readonly string[]): MeteorImageResult {
    const { test, refs } = meteorSegments(candidate, references);
    const testIds = this.segment(test).ids;
    let best: MeteorImageResult | undefined;
    refs.forEach((reference, index) => {
      const stats = statsFromAlignment(this.aligner.alignIds(testIds, this.segment(reference).ids));
      const score = meteorScoreFromStats(stats, this.parameters);
      if (best === undefined || score > best.score) best = { score, stats, chosenReference: index };
    });
    return best!;
  }

  /** Score a corpus from per-image statistics: the score of their field-wise sum. */
  corpusScore(perImageStats: readonly MeteorStats[]): { score: number; stats: MeteorStats } {
    const stats = sumMeteorStats(perImageStats);
    return { score: meteorScoreFromStats(stats, this.parameters), stats };
  }

  /** Precision, recall and penalty of a stats line under this scorer's parameters. */
  breakdown(stats: MeteorStats): ReturnType<typeof meteorBreakdown> {
    return meteorBreakdown(stats, this.parameters);
  }
}

/**
 * METEOR 1.5 per image and for the corpus, in pure TypeScript. Captions are used as given (the toolkit gives
 * Meteor PTB-tokenized text; Meteor then applies its own normalisation, which this reproduces).
 *
 * @example
 * const { corpus, perImage } = computeMeteor([
 *   { imageId: 1, candidate: 'a big stadium', references: ['there is a large stadium'] },
 * ]);
 */
export function computeMeteor(items: readonly CaptionItem[], options: MeteorOptions = {}): MeteorResult {
  assertScoreableItems(items, options);
  const scorer = new MeteorScorer(options);
  const perImage = items.map((item) => scorer.scoreImage(item.candidate, item.references));
  const corpus = scorer.corpusScore(perImage.map((image) => image.stats));
  return { corpus: corpus.score, corpusStats: corpus.stats, perImage };
}

/** Meteor's words of every segment of these items, for filtering a paraphrase table on load. */
export function meteorVocabulary(items: readonly CaptionItem[]): Set<string> {
  const vocabulary = new Set<string>();
  for (const item of items) {
    const { test, refs } = meteorSegments(item.candidate, item.references);
    for (const segment of [test, ...refs]) for (const word of meteorWords(segment)) vocabulary.add(word);
  }
  return vocabulary;
}
