import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { S2CPNetError } from '@s2cpnet/core';
import {
  ALL_METRICS,
  DEFAULT_MAX_CAPTION_FILE_BYTES,
  DEFAULT_MAX_CAPTION_WORDS,
  formatMeteorStats,
  loadCaptionFiles,
  MetricsInputError,
  pairCaptions,
  parseCocoResults,
  parseReferences,
  readJsonFile,
  SCORE_KEYS,
  scoreCaptions,
  type CaptionItem,
  type CaptionScores,
  type MetricName,
  type ScoreReport,
} from '@s2cpnet/metrics';
import type { Command, CommandContext } from '../command';
import { ExitCode } from '../command';

const USAGE = `s2cpnet score --results FILE --annotations FILE [options]

Scores captions with the COCO caption toolkit's metrics: BLEU-1..4, METEOR 1.5, ROUGE_L, CIDEr-D and
Sm = mean(Bleu_4, METEOR, ROUGE_L, CIDEr). Captions are PTB-tokenized first, as the toolkit does.

Options:
  --results FILE          (required) model captions, COCO results format: [{"image_id": ..., "caption": "..."}]
  --annotations FILE      (required) references: COCO caption annotations {"annotations": [{"image_id", "caption"}]}
                          or a Karpathy dataset.json (needs --split)
  --split NAME            for a Karpathy dataset.json: the split to score (test, val, train, ...) (required there)
  --allow-missing         score only the referenced images that have a caption in --results, as pycocoevalcap
                          does, and say how many were left out (default off: a referenced image without a
                          caption is an error, exit 3). A caption without references is an error either way.
  --pretokenized          captions are already tokenized: skip the PTB tokenizer (Karpathy: use "tokens")
                          (default off)
  --metrics LIST          comma-separated subset of bleu, meteor, rouge, cider (default: all)
  --meteor-jar FILE       run this meteor-1.5.jar through Java for METEOR (paper-grade, with its paraphrases)
                          (default: none, METEOR in TypeScript)
  --java FILE             the java executable for --meteor-jar (default: java)
  --paraphrase-table FILE a Meteor paraphrase table (paraphrase-en.gz format) for the TypeScript METEOR
                          (default: none, exact, stem and synonym matches only)
  --meteor-stats          add each image's 23 Meteor statistics ("meteor_stats") to the --json output (default off)
  --json                  print {"corpus": {...}, "per_image": [{"image_id", ...}]} on stdout (default off: a table)
  --max-bytes SIZE        refuse a results or annotations file larger than this (default ${DEFAULT_MAX_CAPTION_FILE_BYTES / 2 ** 20}M); bytes, or with
                          a K, M or G suffix (KiB, MiB, GiB); files are read whole into memory
  --max-caption-words N   refuse a caption with more words than this, counted before and after tokenization
                          (default ${DEFAULT_MAX_CAPTION_WORDS}): real captions have tens of words, and METEOR's work grows with
                          the candidate's length times each reference's
  --help, -h              show this help

Exit codes: 0 scored, 2 bad command line, 3 bad input (a file, an id, a caption; the message names it).
`;

/** The flags `s2cpnet score` accepts (its `--help` lists each one). */
export const SCORE_OPTIONS = {
  results: { type: 'string' },
  annotations: { type: 'string' },
  split: { type: 'string' },
  'allow-missing': { type: 'boolean', default: false },
  pretokenized: { type: 'boolean', default: false },
  metrics: { type: 'string', multiple: true },
  'meteor-jar': { type: 'string' },
  java: { type: 'string' },
  'paraphrase-table': { type: 'string' },
  'meteor-stats': { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  'max-bytes': { type: 'string' },
  'max-caption-words': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

class UsageError extends Error {}

/** Metric spellings accepted by --metrics, case-insensitively. */
const METRIC_ALIASES: ReadonlyMap<string, MetricName> = new Map([
  ['bleu', 'Bleu'],
  ['bleu_1', 'Bleu'],
  ['bleu_2', 'Bleu'],
  ['bleu_3', 'Bleu'],
  ['bleu_4', 'Bleu'],
  ['meteor', 'METEOR'],
  ['rouge', 'ROUGE_L'],
  ['rouge_l', 'ROUGE_L'],
  ['rouge-l', 'ROUGE_L'],
  ['cider', 'CIDEr'],
  ['cider-d', 'CIDEr'],
  ['cider_d', 'CIDEr'],
]);

function parseMetrics(values: readonly string[] | undefined): MetricName[] {
  if (values === undefined) return [...ALL_METRICS];
  const chosen = new Set<MetricName>();
  for (const name of values.flatMap((value) => value.split(/[,\s]+/)).filter(Boolean)) {
    const metric = METRIC_ALIASES.get(name.toLowerCase());
    if (metric === undefined) {
      throw new UsageError(`--metrics: unknown metric ${JSON.stringify(name)}; expected bleu, meteor, rouge or cider`);
    }
    chosen.add(metric);
  }
  if (chosen.size === 0) throw new UsageError('--metrics needs at least one metric');
  // Keep the toolkit's order whatever order the flag gave.
  return ALL_METRICS.filter((metric) => chosen.has(metric));
}

/** `--max-bytes`: a whole number of bytes, or with a K/M/G suffix (binary units, an optional `i`/`iB`/`B`). */
function parseByteSize(text: string): number {
  const match = /^(\d+)\s*(?:([kmg])(?:i?b)?|b)?$/i.exec(text.trim());
  const value = match === null ? NaN : Number(match[1]) * 2 ** (10 * (['', 'k', 'm', 'g'].indexOf((match[2] ?? '').toLowerCase())));
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new UsageError(`--max-bytes: expected a positive size such as 67108864, 64M or 1G, found ${JSON.stringify(text)}`);
  }
  return value;
}

function parsePositiveInteger(flag: string, text: string): number {
  const value = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value <= 0) throw new UsageError(`${flag}: expected a positive whole number, found ${JSON.stringify(text)}`);
  return value;
}

export interface ScoreArguments {
  results: string;
  annotations: string;
  split: string | undefined;
  /** Score only the referenced images that have a caption (pycocoevalcap's behaviour). */
  allowMissing: boolean;
  pretokenized: boolean;
  metrics: MetricName[];
  meteorJar: string | undefined;
  java: string | undefined;
  paraphraseTable: string | undefined;
  meteorStats: boolean;
  json: boolean;
  help: boolean;
  /** Largest results or annotations file read, in bytes. */
  maxBytes: number;
  /** Most words in a caption. */
  maxCaptionWords: number;
}

function parseFlags(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: SCORE_OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Parse and check the command line; relative paths are resolved against `cwd`. */
export function parseScoreArgs(argv: string[], cwd: string): ScoreArguments {
  const values = parseFlags(argv);
  const resolveFile = (file: string | undefined): string | undefined =>
    file === undefined ? undefined : path.resolve(cwd, file);
  const parsed: ScoreArguments = {
    results: resolveFile(values.results) ?? '',
    annotations: resolveFile(values.annotations) ?? '',
    split: values.split,
    allowMissing: values['allow-missing'] ?? false,
    pretokenized: values.pretokenized ?? false,
    metrics: [],
    meteorJar: resolveFile(values['meteor-jar']),
    java: values.java,
    paraphraseTable: resolveFile(values['paraphrase-table']),
    meteorStats: values['meteor-stats'] ?? false,
    json: values.json ?? false,
    help: values.help ?? false,
    maxBytes: DEFAULT_MAX_CAPTION_FILE_BYTES,
    maxCaptionWords: DEFAULT_MAX_CAPTION_WORDS,
  };
  if (parsed.help) return parsed;
  if (values.results === undefined) throw new UsageError('--results FILE is required');
  if (values.annotations === undefined) throw new UsageError('--annotations FILE is required');
  parsed.metrics = parseMetrics(values.metrics);
  if (values['max-bytes'] !== undefined) parsed.maxBytes = parseByteSize(values['max-bytes']);
  if (values['max-caption-words'] !== undefined) {
    parsed.maxCaptionWords = parsePositiveInteger('--max-caption-words', values['max-caption-words']);
  }
  if (parsed.meteorJar !== undefined && parsed.paraphraseTable !== undefined) {
    throw new UsageError('--meteor-jar and --paraphrase-table exclude each other (the jar reads its own table)');
  }
  if (parsed.java !== undefined && parsed.meteorJar === undefined) throw new UsageError('--java only applies with --meteor-jar');
  if (parsed.java !== undefined && parsed.java.includes(path.sep)) parsed.java = path.resolve(cwd, parsed.java);
  return parsed;
}

/** The --json document: toolkit key names, `image_id` per image. */
export function scoreReportJson(report: ScoreReport, withMeteorStats: boolean): unknown {
  const pickScores = (scores: CaptionScores): Record<string, number> => {
    const picked: Record<string, number> = {};
    for (const key of SCORE_KEYS) if (scores[key] !== undefined) picked[key] = scores[key];
    return picked;
  };
  return {
    corpus: pickScores(report.corpus),
    per_image: report.perImage.map((image, index) => {
      const entry: Record<string, unknown> = { image_id: image.imageId, ...pickScores(image) };
      if (withMeteorStats && report.meteor) entry.meteor_stats = formatMeteorStats(report.meteor.perImage[index]!.stats);
      return entry;
    }),
  };
}

function scoreTable(report: ScoreReport, args: ScoreArguments): string {
  const rows = SCORE_KEYS.filter((key) => report.corpus[key] !== undefined).map(
    (key) => `  ${key.padEnd(8)}  ${report.corpus[key]!.toFixed(6)}`,
  );
  const meteorSource =
    args.meteorJar !== undefined
      ? `METEOR from ${args.meteorJar}`
      : `METEOR in TypeScript, ${args.paraphraseTable !== undefined ? 'with the given paraphrase table' : 'no paraphrase table'}`;
  const notes = [args.pretokenized ? 'pre-tokenized captions' : 'PTB-tokenized'];
  if (args.metrics.includes('METEOR')) notes.push(meteorSource);
  return [
    `Scored ${report.perImage.length} images (${notes.join('; ')})`,
    '',
    '  metric    corpus',
    ...rows,
    '',
  ].join('\n');
}

function timingLine(report: ScoreReport, seconds: number): string {
  const parts = Object.entries(report.timingsMs).map(([stage, ms]) => `${stage} ${Math.round(ms)} ms`);
  return `s2cpnet score: ${report.perImage.length} images in ${seconds.toFixed(1)} s (${parts.join(', ')})\n`;
}

/**
 * `--allow-missing`: the references of the images that have a caption, as pycocoevalcap scores the ids of its
 * results; a caption whose image has no references is still an error. Says on stderr how many were left out.
 */
function loadCaptionedOnly(args: ScoreArguments, context: CommandContext): CaptionItem[] {
  const limit = { maxBytes: args.maxBytes };
  const results = parseCocoResults(readJsonFile(args.results, limit), args.results);
  const references = parseReferences(readJsonFile(args.annotations, limit), args.annotations, {
    ...(args.split !== undefined ? { split: args.split } : {}),
    pretokenized: args.pretokenized,
    resultImageIds: results.map((result) => result.imageId),
  });
  const captioned = new Set(results.map((result) => String(result.imageId)));
  const kept = new Map([...references].filter(([id]) => captioned.has(id)));
  const leftOut = references.size - kept.size;
  if (leftOut > 0) {
    context.stderr(
      `s2cpnet score: --allow-missing: left out ${leftOut} of the ${references.size} referenced images (no caption in ${args.results}); scoring ${kept.size}\n`,
    );
  }
  return pairCaptions(results, kept, { results: args.results, references: args.annotations });
}

/** `s2cpnet score`: the COCO caption metrics for a results file against references. */
export const scoreCommand: Command = {
  name: 'score',
  summary: 'score captions with BLEU-1..4, METEOR, ROUGE_L, CIDEr-D and Sm (COCO caption toolkit numbers)',
  usage: USAGE,
  async run(argv: string[], context: CommandContext): Promise<number> {
    let args: ScoreArguments;
    try {
      args = parseScoreArgs(argv, context.cwd);
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      context.stderr(`s2cpnet score: ${error.message}\nRun 's2cpnet score --help' for the options.\n`);
      return ExitCode.usage;
    }
    if (args.help) {
      context.stdout(USAGE);
      return ExitCode.ok;
    }

    const started = Date.now();
    try {
      const items = args.allowMissing
        ? loadCaptionedOnly(args, context)
        : loadCaptionFiles(args.results, args.annotations, {
            ...(args.split !== undefined ? { split: args.split } : {}),
            pretokenized: args.pretokenized,
            maxBytes: args.maxBytes,
          });
      const report = await scoreCaptions(items, {
        maxCaptionWords: args.maxCaptionWords,
        tokenize: !args.pretokenized,
        metrics: args.metrics,
        signal: context.signal,
        meteor: {
          ...(args.meteorJar !== undefined ? { jarPath: args.meteorJar } : {}),
          ...(args.java !== undefined ? { javaPath: args.java } : {}),
          ...(args.paraphraseTable !== undefined ? { paraphraseTableFile: args.paraphraseTable } : {}),
        },
      });
      // Everything is computed before anything is printed, so a failure never leaves partial output.
      const output = args.json
        ? `${JSON.stringify(scoreReportJson(report, args.meteorStats), null, 2)}\n`
        : scoreTable(report, args);
      context.stderr(timingLine(report, (Date.now() - started) / 1000));
      context.stdout(output);
      return ExitCode.ok;
    } catch (error) {
      if (context.signal.aborted) {
        context.stderr('s2cpnet score: interrupted\n');
        return ExitCode.interrupted;
      }
      if (MetricsInputError.isInstance(error) || (S2CPNetError.isInstance(error) && error.code === 'INPUT')) {
        context.stderr(`s2cpnet score: error: ${(error as Error).message}\n`);
        return ExitCode.badInput;
      }
      context.stderr(`s2cpnet score: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      return ExitCode.failure;
    }
  },
};
