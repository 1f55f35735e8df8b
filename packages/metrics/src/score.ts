/**
 * One call that scores a set of captions the way the COCO caption toolkit's `COCOEvalCap` does: PTB-tokenize
 * candidates and references, then BLEU-1..4, METEOR, ROUGE_L and CIDEr-D, plus this field's
 * Sm = mean(Bleu_4, METEOR, ROUGE_L, CIDEr).
 */
import { bleuWithIndex } from './bleu.js';
import { ciderWithIndex } from './cider.js';
import { MetricsInputError } from './errors.js';
import { computeMeteorWithJar } from './meteor/jar.js';
import type { MeteorOptions, MeteorResult } from './meteor/meteor.js';
import { computeMeteor, meteorVocabulary } from './meteor/meteor.js';
import { loadParaphraseTable } from './meteor/paraphrase.js';
import { NgramIndex } from './ngrams.js';
import { computeRougeL } from './rouge.js';
import { tokenizeCaption } from './tokenizer.js';
import type { CaptionItem, CaptionScores, ImageId, MetricName } from './types.js';
import { ALL_METRICS } from './types.js';
import type { CaptionLimits } from './validate.js';
import { assertCaptionLengths, assertScoreableItems, DEFAULT_MAX_CAPTION_WORDS } from './validate.js';

/** METEOR settings for `scoreCaptions`. */
export interface ScoreMeteorOptions extends MeteorOptions {
  /** Run this meteor-1.5.jar through Java instead of the TypeScript METEOR (for Meteor's full paraphrase table). */
  jarPath?: string;
  /** The java executable for `jarPath`. Default `java`. */
  javaPath?: string;
  /** A Meteor paraphrase table file (`paraphrase-en.gz` format) for the TypeScript METEOR. */
  paraphraseTableFile?: string;
}

export interface ScoreCaptionsOptions extends CaptionLimits {
  /**
   * Most words in a caption, counted on the text as given and again after PTB tokenization (which splits off
   * punctuation); a longer caption is refused with a MetricsInputError naming the image. Default 1000
   * (`DEFAULT_MAX_CAPTION_WORDS`); it also applies to METEOR, whatever `meteor.maxCaptionWords` says.
   */
  maxCaptionWords?: number;
  /** PTB-tokenize candidates and references first, as the toolkit does. Default true. */
  tokenize?: boolean;
  /** Which metric families to compute. Default all four. */
  metrics?: readonly MetricName[];
  meteor?: ScoreMeteorOptions;
  /** Aborts a running Meteor jar. */
  signal?: AbortSignal;
}

/** One image's scores. */
export interface ImageScores extends CaptionScores {
  imageId: ImageId;
}

export interface ScoreReport {
  /** Corpus scores with the toolkit's key names, plus Sm when all four families were computed. */
  corpus: CaptionScores;
  /** Per-image scores, in the order of the input items. */
  perImage: ImageScores[];
  /** METEOR's statistics, when METEOR was computed (per image and summed). */
  meteor?: MeteorResult;
  /** Milliseconds spent per stage (tokenize, Bleu, METEOR, ROUGE_L, CIDEr). */
  timingsMs: Record<string, number>;
}

/** Sm as this field reports it: the plain mean of BLEU-4, METEOR, ROUGE_L and CIDEr. */
export function smScore(bleu4: number, meteor: number, rougeL: number, cider: number): number {
  return (bleu4 + meteor + rougeL + cider) / 4;
}

/** Resolve and check the metric list. */
function metricSet(metrics: readonly MetricName[] | undefined): Set<MetricName> {
  const chosen = new Set<MetricName>();
  for (const metric of metrics ?? ALL_METRICS) {
    if (!ALL_METRICS.includes(metric)) {
      throw new MetricsInputError(`unknown metric ${JSON.stringify(metric)}; expected one of ${ALL_METRICS.join(', ')}`);
    }
    chosen.add(metric);
  }
  if (chosen.size === 0) throw new MetricsInputError('no metric chosen');
  return chosen;
}

/** Tokenize every caption with the toolkit's PTB tokenizer, memoising repeated captions. */
export function tokenizeItems(items: readonly CaptionItem[]): CaptionItem[] {
  const cache = new Map<string, string>();
  const tokenize = (caption: string): string => {
    let tokens = cache.get(caption);
    if (tokens === undefined) {
      tokens = tokenizeCaption(caption);
      cache.set(caption, tokens);
    }
    return tokens;
  };
  return items.map((item) => ({
    imageId: item.imageId,
    candidate: tokenize(item.candidate),
    references: item.references.map(tokenize),
  }));
}

interface PreparedRun {
  items: CaptionItem[];
  metrics: Set<MetricName>;
  timingsMs: Record<string, number>;
  limits: CaptionLimits;
}

function prepare(items: readonly CaptionItem[], options: ScoreCaptionsOptions): PreparedRun {
  const limits: CaptionLimits = { maxCaptionWords: options.maxCaptionWords ?? DEFAULT_MAX_CAPTION_WORDS };
  // The word limit is checked before tokenizing, so that the tokenizer never sees a runaway caption, and after.
  assertScoreableItems(items, limits);
  const metrics = metricSet(options.metrics);
  const timingsMs: Record<string, number> = {};
  let prepared: CaptionItem[] = items.slice();
  if (options.tokenize ?? true) {
    const started = performance.now();
    prepared = tokenizeItems(items);
    timingsMs.tokenize = performance.now() - started;
    assertCaptionLengths(prepared, limits, 'after PTB tokenization');
  }
  return { items: prepared, metrics, timingsMs, limits };
}

function timed<T>(timings: Record<string, number>, name: string, run: () => T): T {
  const started = performance.now();
  const result = run();
  timings[name] = performance.now() - started;
  return result;
}

function assemble(run: PreparedRun, meteor: MeteorResult | undefined): ScoreReport {
  const { items, metrics, timingsMs, limits } = run;
  // BLEU and CIDEr-D split captions the same way, so they share one n-gram index.
  const ngrams = new NgramIndex();
  const bleu = metrics.has('Bleu') ? timed(timingsMs, 'Bleu', () => bleuWithIndex(items, ngrams)) : undefined;
  const rouge = metrics.has('ROUGE_L') ? timed(timingsMs, 'ROUGE_L', () => computeRougeL(items, limits)) : undefined;
  const cider = metrics.has('CIDEr') ? timed(timingsMs, 'CIDEr', () => ciderWithIndex(items, ngrams)) : undefined;

  const fill = (target: CaptionScores, index: number | undefined): void => {
    const pick = <T>(corpus: T, perImage: readonly T[]): T => (index === undefined ? corpus : perImage[index]!);
    if (bleu) Object.assign(target, pick(bleu.corpus, bleu.perImage));
    if (meteor) {
      target.METEOR = index === undefined ? meteor.corpus : meteor.perImage[index]!.score;
    }
    if (rouge) target.ROUGE_L = pick(rouge.corpus, rouge.perImage);
    if (cider) target.CIDEr = pick(cider.corpus, cider.perImage);
    if (bleu && meteor && rouge && cider) {
      target.Sm = smScore(target.Bleu_4!, target.METEOR!, target.ROUGE_L!, target.CIDEr!);
    }
  };

  const corpus: CaptionScores = {};
  fill(corpus, undefined);
  const perImage = items.map((item, index) => {
    const scores: ImageScores = { imageId: item.imageId };
    fill(scores, index);
    return scores;
  });
  const report: ScoreReport = { corpus, perImage, timingsMs };
  if (meteor) report.meteor = meteor;
  return report;
}

/**
 * Score captions with the pure-TypeScript metrics only (no Java, no files), synchronously.
 *
 * @example
 * const report = scoreCaptionsSync([
 *   { imageId: 1, candidate: 'A big stadium.', references: ['There is a large stadium.', 'A stadium.'] },
 * ]);
 * report.corpus.CIDEr; // 0 for a single image, as in the toolkit
 */
export function scoreCaptionsSync(items: readonly CaptionItem[], options: Omit<ScoreCaptionsOptions, 'signal'> = {}): ScoreReport {
  if (options.meteor?.jarPath !== undefined || options.meteor?.paraphraseTableFile !== undefined) {
    throw new MetricsInputError('scoreCaptionsSync cannot run a Meteor jar or read a paraphrase table: use scoreCaptions');
  }
  const run = prepare(items, options);
  const meteor = run.metrics.has('METEOR')
    ? timed(run.timingsMs, 'METEOR', () => computeMeteor(run.items, { ...options.meteor, ...run.limits }))
    : undefined;
  return assemble(run, meteor);
}

/**
 * Score captions against references and return corpus and per-image scores with the toolkit's key names
 * (Bleu_1..Bleu_4, METEOR, ROUGE_L, CIDEr) plus Sm.
 *
 * @example
 * const report = await scoreCaptions(items, { tokenize: true, metrics: ['Bleu', 'CIDEr'] });
 * console.log(report.corpus.Bleu_4, report.perImage[0].CIDEr);
 */
export async function scoreCaptions(items: readonly CaptionItem[], options: ScoreCaptionsOptions = {}): Promise<ScoreReport> {
  const run = prepare(items, options);
  let meteor: MeteorResult | undefined;
  if (run.metrics.has('METEOR')) {
    const meteorOptions = options.meteor ?? {};
    const started = performance.now();
    if (meteorOptions.jarPath !== undefined) {
      meteor = await computeMeteorWithJar(run.items, {
        jarPath: meteorOptions.jarPath,
        ...(meteorOptions.javaPath !== undefined ? { javaPath: meteorOptions.javaPath } : {}),
        ...(meteorOptions.parameters !== undefined ? { parameters: meteorOptions.parameters } : {}),
        ...(options.signal !== undefined ? { signal: options.signal } : {}),
        ...run.limits,
      });
    } else {
      let paraphrases = meteorOptions.paraphrases;
      if (meteorOptions.paraphraseTableFile !== undefined) {
        paraphrases = await loadParaphraseTable(meteorOptions.paraphraseTableFile, {
          vocabulary: meteorVocabulary(run.items),
        });
      }
      meteor = computeMeteor(run.items, { ...meteorOptions, ...(paraphrases ? { paraphrases } : {}), ...run.limits });
    }
    run.timingsMs.METEOR = performance.now() - started;
  }
  return assemble(run, meteor);
}
