/**
 * Score captions with `@s2cpnet/metrics` alone: no TensorFlow.js installed or imported. Reads a COCO results file
 * (`[{image_id, caption}]`) and references (COCO caption annotations, or a Karpathy dataset.json with `--split`),
 * and prints BLEU-1..4, METEOR, ROUGE_L, CIDEr-D and Sm = mean(BLEU-4, METEOR, ROUGE_L, CIDEr).
 *
 *   npm start -- [--predictions data/predictions.json] [--references data/references.json] [--split test]
 *                [--per-image] [--json]
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SCORE_KEYS, loadCaptionFiles, scoreCaptions, type CaptionScores, type ImageScores } from '@s2cpnet/metrics';

const exampleDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The small files shipped with the example. */
export const DEFAULT_PREDICTIONS = path.join(exampleDir, 'data', 'predictions.json');
export const DEFAULT_REFERENCES = path.join(exampleDir, 'data', 'references.json');

export interface MetricsOnlyOptions {
  /** COCO results file. Default: the example's data/predictions.json. */
  predictions?: string;
  /** COCO caption annotations or a Karpathy dataset.json. Default: the example's data/references.json. */
  references?: string;
  /** Split of a Karpathy dataset.json to score against. */
  split?: string;
  /** Also print a table row per image. */
  perImage?: boolean;
  /** Print JSON instead of tables. */
  json?: boolean;
  log?: (line: string) => void;
}

export interface MetricsOnlyResult {
  images: number;
  corpus: CaptionScores;
  perImage: ImageScores[];
  /** The printed output. */
  output: string;
}

/** Text columns (the first, and `textColumns`) are left-aligned, numbers right-aligned. */
function table(header: string[], rows: string[][], textColumns: readonly number[] = []): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const left = new Set([0, ...textColumns]);
  const line = (cells: string[]) => cells.map((c, i) => (left.has(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const score = (value: number | undefined) => (value === undefined ? '' : value.toFixed(4));

export async function run(options: MetricsOnlyOptions = {}): Promise<MetricsOnlyResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const predictions = path.resolve(options.predictions ?? DEFAULT_PREDICTIONS);
  const references = path.resolve(options.references ?? DEFAULT_REFERENCES);
  // Checks both files (ids on either side, duplicates, empty references) and pairs each caption with its references.
  const items = loadCaptionFiles(predictions, references, options.split ? { split: options.split } : {});
  // PTB-tokenizes as the COCO caption toolkit does, then every metric; Sm is included when all four ran.
  const report = await scoreCaptions(items);

  let output: string;
  if (options.json) {
    output = JSON.stringify({ images: items.length, corpus: report.corpus, perImage: options.perImage ? report.perImage : undefined }, null, 2);
  } else {
    const parts = [
      `${items.length} images: ${path.relative(process.cwd(), predictions) || predictions} against ${path.relative(process.cwd(), references) || references}`,
      '',
      table(['metric', 'score'], SCORE_KEYS.map((key) => [key, score(report.corpus[key])])),
      '',
      `Sm = mean(Bleu_4, METEOR, ROUGE_L, CIDEr) = ${score(report.corpus.Sm)}`,
    ];
    if (options.perImage) {
      const captionOf = new Map(items.map((item) => [String(item.imageId), item.candidate]));
      parts.push(
        '',
        table(
          ['image', ...SCORE_KEYS, 'caption'],
          report.perImage.map((row) => [String(row.imageId), ...SCORE_KEYS.map((key) => score(row[key])), captionOf.get(String(row.imageId))!]),
          [SCORE_KEYS.length + 1],
        ),
      );
    }
    output = parts.join('\n');
  }
  log(output);
  return { images: items.length, corpus: report.corpus, perImage: report.perImage, output };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      predictions: { type: 'string' },
      references: { type: 'string' },
      split: { type: 'string' },
      'per-image': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  run({ predictions: values.predictions, references: values.references, split: values.split, perImage: values['per-image'], json: values.json }).catch(
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      process.exitCode = 1;
    },
  );
}
