/**
 * Meteor's sufficient statistics and its scoring formula (`MeteorStats`, `MeteorScorer.computeMetrics`).
 *
 * A stats line has 23 fields: `tstLen refLen tstFuncWords refFuncWords`, then for each module (exact, stem,
 * synonym, paraphrase) `tstContent refContent tstFunction refFunction`, then `chunks tstWordMatches
 * refWordMatches`. A corpus is scored by summing the lines field by field and scoring the sum once.
 */
import { MetricsInputError } from '../errors.js';
import type { Alignment } from './aligner.js';
import { MODULE_COUNT } from './aligner.js';

/** The 23 Meteor statistics of one segment (or of a corpus, summed). */
export type MeteorStats = readonly number[];

export const METEOR_STATS_LENGTH = 23;

/** The field names of a stats line, in order. */
export const METEOR_STATS_FIELDS: readonly string[] = [
  'tstLen',
  'refLen',
  'tstFuncWords',
  'refFuncWords',
  ...['exact', 'stem', 'synonym', 'paraphrase'].flatMap((module) => [
    `${module}_tstContent`,
    `${module}_refContent`,
    `${module}_tstFunction`,
    `${module}_refFunction`,
  ]),
  'chunks',
  'tstWordMatches',
  'refWordMatches',
];

/** Meteor's parameters. The defaults are Meteor 1.5's for English, task `rank` (what `-l en` selects). */
export interface MeteorParameters {
  alpha: number;
  beta: number;
  gamma: number;
  delta: number;
  /** Weights of the exact, stem, synonym and paraphrase modules. */
  moduleWeights: readonly [number, number, number, number];
}

export const METEOR_ENGLISH_RANK_PARAMETERS: MeteorParameters = {
  alpha: 0.85,
  beta: 0.2,
  gamma: 0.6,
  delta: 0.75,
  moduleWeights: [1.0, 0.6, 0.8, 0.6],
};

/** Precision, recall, fragmentation penalty and score of a stats line, as Meteor computes them. */
export interface MeteorBreakdown {
  precision: number;
  recall: number;
  fMean: number;
  fragPenalty: number;
  score: number;
}

/** The statistics of one alignment. */
export function statsFromAlignment(alignment: Alignment): number[] {
  const stats = new Array<number>(METEOR_STATS_LENGTH).fill(0);
  stats[0] = alignment.candidateWords.length;
  stats[1] = alignment.referenceWords.length;
  stats[2] = alignment.candidateFunctionWords;
  stats[3] = alignment.referenceFunctionWords;
  for (let module = 0; module < MODULE_COUNT; module++) {
    stats[4 + 4 * module] = alignment.candidateContentMatches[module]!;
    stats[5 + 4 * module] = alignment.referenceContentMatches[module]!;
    stats[6 + 4 * module] = alignment.candidateFunctionMatches[module]!;
    stats[7 + 4 * module] = alignment.referenceFunctionMatches[module]!;
  }
  stats[20] = alignment.chunks;
  stats[21] = alignment.candidateMatches;
  stats[22] = alignment.referenceMatches;
  return stats;
}

/** Meteor's `computeMetrics`: the score of a stats line, with NaN (empty candidate) reported as 0. */
export function meteorBreakdown(
  stats: MeteorStats,
  parameters: MeteorParameters = METEOR_ENGLISH_RANK_PARAMETERS,
): MeteorBreakdown {
  const { alpha, beta, gamma, delta, moduleWeights } = parameters;
  const testLength = stats[0]!;
  const referenceLength = stats[1]!;
  const testFunctionWords = stats[2]!;
  const referenceFunctionWords = stats[3]!;
  const testWeightedLength = delta * (testLength - testFunctionWords) + (1.0 - delta) * testFunctionWords;
  const referenceWeightedLength =
    delta * (referenceLength - referenceFunctionWords) + (1.0 - delta) * referenceFunctionWords;

  // Same summation order as Java: content over all modules, then function over all modules.
  let testWeightedMatches = 0;
  let referenceWeightedMatches = 0;
  let testTotalMatches = 0;
  let referenceTotalMatches = 0;
  for (let module = 0; module < MODULE_COUNT; module++) {
    testWeightedMatches += stats[4 + 4 * module]! * moduleWeights[module]! * delta;
    referenceWeightedMatches += stats[5 + 4 * module]! * moduleWeights[module]! * delta;
  }
  for (let module = 0; module < MODULE_COUNT; module++) {
    testWeightedMatches += stats[6 + 4 * module]! * moduleWeights[module]! * (1.0 - delta);
    referenceWeightedMatches += stats[7 + 4 * module]! * moduleWeights[module]! * (1.0 - delta);
    testTotalMatches += stats[4 + 4 * module]! + stats[6 + 4 * module]!;
    referenceTotalMatches += stats[5 + 4 * module]! + stats[7 + 4 * module]!;
  }
  const chunks = stats[20]!;
  const testWordMatches = stats[21]!;
  const referenceWordMatches = stats[22]!;

  const precision = testWeightedMatches / testWeightedLength;
  const recall = referenceWeightedMatches / referenceWeightedLength;
  const fMean = 1.0 / ((1.0 - alpha) / precision + alpha / recall);
  // Everything matched in one chunk means no fragmentation at all.
  const fragmentation =
    testTotalMatches === testLength && referenceTotalMatches === referenceLength && chunks === 1
      ? 0
      : chunks / ((testWordMatches + referenceWordMatches) / 2);
  const fragPenalty = gamma * fragmentation ** beta;
  const raw = fMean * (1.0 - fragPenalty);
  const score = Number.isNaN(raw) ? 0 : Math.max(raw, 0);
  return { precision, recall, fMean, fragPenalty, score };
}

/** The Meteor score of a stats line. */
export function meteorScoreFromStats(
  stats: MeteorStats,
  parameters: MeteorParameters = METEOR_ENGLISH_RANK_PARAMETERS,
): number {
  return meteorBreakdown(stats, parameters).score;
}

/** Field-wise sum of stats lines: the corpus statistics. */
export function sumMeteorStats(lines: readonly MeteorStats[]): number[] {
  const total = new Array<number>(METEOR_STATS_LENGTH).fill(0);
  for (const line of lines) for (let k = 0; k < METEOR_STATS_LENGTH; k++) total[k]! += line[k]!;
  return total;
}

/** Java's `Double.toString` for the values a stats line holds (so `8` prints as `8.0`, as Meteor prints it). */
export function javaDoubleToString(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? 'Infinity' : '-Infinity';
  if (value === 0) return Object.is(value, -0) ? '-0.0' : '0.0';
  const magnitude = Math.abs(value);
  if (magnitude >= 1e-3 && magnitude < 1e7) {
    const text = String(value);
    return text.includes('.') ? text : `${text}.0`;
  }
  // Scientific form: mantissa with at least one decimal, then E and the exponent.
  const [mantissa, exponent] = value.toExponential().split('e') as [string, string];
  const digits = mantissa.includes('.') ? mantissa : `${mantissa}.0`;
  return `${digits}E${Number(exponent)}`;
}

/** A stats line as the Meteor jar prints it: 23 numbers separated by single spaces. */
export function formatMeteorStats(stats: MeteorStats): string {
  return stats.map(javaDoubleToString).join(' ');
}

/** Parse a stats line printed by the Meteor jar (or by `formatMeteorStats`). */
export function parseMeteorStats(line: string): number[] {
  const fields = line.trim().split(/\s+/).filter((field) => field !== '');
  const values = fields.map(Number);
  if (values.length < METEOR_STATS_LENGTH || values.some((value) => !Number.isFinite(value))) {
    throw new MetricsInputError(
      `expected a Meteor statistics line of ${METEOR_STATS_LENGTH} numbers, found ${JSON.stringify(line.slice(0, 200))}`,
    );
  }
  return values.slice(0, METEOR_STATS_LENGTH);
}
