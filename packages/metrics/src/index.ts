/**
 * @s2cpnet/metrics: the COCO caption evaluation toolkit's metrics in pure TypeScript: the PTB tokenizer,
 * BLEU-1..4, METEOR 1.5, ROUGE_L, CIDEr-D and Sm, with the toolkit's numbers.
 *
 * @packageDocumentation
 */
export { MetricsInputError } from './errors.js';
export type { MetricsInputLocation } from './errors.js';
export type { CaptionItem, CaptionScores, ImageId, MetricName } from './types.js';
export { ALL_METRICS, SCORE_KEYS } from './types.js';
export { DEFAULT_MAX_CAPTION_WORDS } from './validate.js';
export type { CaptionLimits } from './validate.js';

export { PUNCTUATION_FILTER, ptbTokenizeLowercased, tokenizeCaption } from './tokenizer.js';
export { computeBleu } from './bleu.js';
export type { BleuResult, BleuScores } from './bleu.js';
export { computeRougeL, longestCommonSubsequence, rougeLScore } from './rouge.js';
export type { RougeResult } from './rouge.js';
export { CiderDScorer, computeCiderD } from './cider.js';
export type { CiderDScorerOptions, CiderResult, CiderReferenceSet } from './cider.js';

export { computeMeteor, meteorSegments, meteorVocabulary, MeteorScorer } from './meteor/meteor.js';
export type { MeteorImageResult, MeteorOptions, MeteorResult } from './meteor/meteor.js';
export type { Alignment, Match } from './meteor/aligner.js';
export { computeMeteorWithJar } from './meteor/jar.js';
export type { MeteorJarOptions } from './meteor/jar.js';
export {
  formatMeteorStats,
  METEOR_ENGLISH_RANK_PARAMETERS,
  METEOR_STATS_FIELDS,
  METEOR_STATS_LENGTH,
  meteorBreakdown,
  meteorScoreFromStats,
  parseMeteorStats,
  sumMeteorStats,
} from './meteor/stats.js';
export type { MeteorBreakdown, MeteorParameters, MeteorStats } from './meteor/stats.js';
export { meteorNormalizeLine, meteorWords } from './meteor/normalizer.js';
export { loadParaphraseTable, ParaphraseTable } from './meteor/paraphrase.js';
export type { LoadParaphraseOptions } from './meteor/paraphrase.js';
export { loadDefaultSynonymDictionary, loadSynonymDictionary, SynonymDictionary } from './meteor/synonyms.js';
export type { WordNetSource } from './meteor/synonyms.js';
export { ENGLISH_FUNCTION_WORDS } from './meteor/resources/function-words.js';

export { scoreCaptions, scoreCaptionsSync, smScore, tokenizeItems } from './score.js';
export type { ImageScores, ScoreCaptionsOptions, ScoreMeteorOptions, ScoreReport } from './score.js';

export {
  DEFAULT_MAX_CAPTION_FILE_BYTES,
  loadCaptionFiles,
  pairCaptions,
  parseCocoResults,
  parseJsonText,
  parseReferences,
  readJsonFile,
} from './io.js';
export type { CandidateCaption, FileSizeLimit, ReferenceLoadOptions, ReferenceSet } from './io.js';

export { runMetricsBenchmark, syntheticCaptionCorpus } from './bench.js';
export type { MetricsBenchmarkOptions, MetricsBenchmarkResult } from './bench.js';
