import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { S2CPNetError } from '@s2cpnet/core';
import { parsePixelCount, prepareDataset, type PrepareOptions, type PrepareProgress, type PreparedManifest } from '@s2cpnet/data';
import type { Command, CommandContext } from '../command';
import { ExitCode } from '../command';
import { SAM_FLAGS, samProviderFromFlags, type SamProvider } from './runtime-package';

const USAGE = `s2cpnet prepare --annotations FILE --images DIR --out DIR [options]

Reads a caption file, checks every image, computes the mask views, and writes the vocabulary, the noun classes and
labels, the masks and a manifest into --out. Safe to interrupt: running the same command again resumes.

Options:
  --annotations FILE      (required) caption file: Karpathy dataset.json (UCM, Sydney, RSICD), NWPU-Captions JSON or COCO captions
  --images DIR            folder the caption file's image names are relative to (required)
  --out DIR               output folder (required)
  --masks DIR             use precomputed mask images named like the images (default: compute them with the
                          built-in Felzenszwalb segmenter)
  --masks sam             compute them with a SAM-class model in automatic mode (a SAM or MobileSAM ONNX export;
                          recipe in @s2cpnet/runtime-onnx's SAM.md); needs @s2cpnet/runtime-onnx and onnxruntime-node
  --sam-encoder FILE      with --masks sam: the image encoder .onnx (required there)
  --sam-decoder FILE      with --masks sam: the prompt encoder + mask decoder .onnx (required there)
  --sam-points N          with --masks sam: points per side of the prompt grid (default 16)
  --masks-version v1|v2   built-in segmenter: v1 Felzenszwalb segments covering the image; v2 targets on a plain
                          background (shadow-robust Lab weights; large, border-crossing and ground segments are
                          background). Recorded in the manifest and checkpoints (default v1)
  --size N                working size (pixels, square) images are resized to for mask computation (default 224)
  --min-word-freq N       keep words seen at least N times in the train split (default 5)
  --min-noun-freq N       keep target nouns seen in at least N train captions (default 5)
  --noun-rules v1|v2      how caption nouns become target classes: v2 merges plurals into their singular and leaves
                          out layout words used as layout ("arranged in lines"); v1, the first release's, keeps
                          every noun as written (default v2)
  --max-caption-words N   captions longer than N words are truncated for training (default 25)
  --format F              auto (default), karpathy, nwpu or coco
  --default-split S       split for entries that have none (COCO files): train, val or test (default: none,
                          such an entry is an error)
  --on-error stop|skip    stop at the first bad image or entry (default), or skip it and list it in the manifest
  --concurrency N         images processed at once (default 2)
  --max-pixels N          refuse images larger than N pixels (width x height), from their header, before decoding;
                          N may end in M for megapixels (default 64M, or S2CPNET_MAX_IMAGE_PIXELS)
  --json                  print the manifest as JSON on stdout (default off: a summary)
  --help, -h              show this help
`;

/** The flags `s2cpnet prepare` accepts (its `--help` lists each one). */
export const PREPARE_OPTIONS = {
  annotations: { type: 'string' },
  images: { type: 'string' },
  out: { type: 'string' },
  masks: { type: 'string' },
  ...SAM_FLAGS,
  'masks-version': { type: 'string' },
  size: { type: 'string' },
  'min-word-freq': { type: 'string' },
  'min-noun-freq': { type: 'string' },
  'noun-rules': { type: 'string' },
  'max-caption-words': { type: 'string' },
  format: { type: 'string' },
  'default-split': { type: 'string' },
  'on-error': { type: 'string' },
  concurrency: { type: 'string' },
  'max-pixels': { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

class UsageError extends Error {}

function integerFlag(value: string | undefined, flag: string, minimum: number): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(parsed) || parsed < minimum) {
    throw new UsageError(`--${flag} expects an integer >= ${minimum}, found ${JSON.stringify(value)}`);
  }
  return parsed;
}

function choiceFlag<T extends string>(value: string | undefined, flag: string, choices: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(`--${flag} expects one of ${choices.join(', ')}, found ${JSON.stringify(value)}`);
  }
  return value as T;
}

/** Parses the command line into prepare options (paths resolved against `cwd`). */
export function parsePrepareArgs(
  argv: string[],
  cwd: string,
): { options: PrepareOptions; json: boolean; help: boolean; sam?: { masks?: string; 'sam-encoder'?: string; 'sam-decoder'?: string; 'sam-points'?: string } } {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: PREPARE_OPTIONS, allowPositionals: false, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const values = parsed.values;
  if (values.help) return { options: {} as PrepareOptions, json: false, help: true };
  const missing = (['annotations', 'images', 'out'] as const).filter((name) => !values[name]);
  if (missing.length > 0) throw new UsageError(`missing ${missing.map((name) => `--${name}`).join(', ')}`);
  const resolve = (value: string): string => path.resolve(cwd, value);
  const options: PrepareOptions = {
    annotations: resolve(values.annotations!),
    imagesDir: resolve(values.images!),
    outDir: resolve(values.out!),
    size: integerFlag(values.size, 'size', 16),
    minWordFreq: integerFlag(values['min-word-freq'], 'min-word-freq', 1),
    minNounFreq: integerFlag(values['min-noun-freq'], 'min-noun-freq', 1),
    nounRules: choiceFlag(values['noun-rules'], 'noun-rules', ['v1', 'v2'] as const),
    masksVersion: choiceFlag(values['masks-version'], 'masks-version', ['v1', 'v2'] as const),
    maxCaptionWords: integerFlag(values['max-caption-words'], 'max-caption-words', 1),
    concurrency: integerFlag(values.concurrency, 'concurrency', 1),
    format: choiceFlag(values.format, 'format', ['auto', 'karpathy', 'nwpu', 'coco'] as const),
    defaultSplit: choiceFlag(values['default-split'], 'default-split', ['train', 'val', 'test'] as const),
    onError: choiceFlag(values['on-error'], 'on-error', ['stop', 'skip'] as const),
  };
  if (values.masks && values.masks !== 'sam') options.masksDir = resolve(values.masks);
  if (values.masks && options.masksVersion === 'v2') throw new UsageError('--masks-version v2 is the built-in segmenter; it cannot be combined with --masks');
  if (values['max-pixels'] !== undefined) {
    try {
      options.maxImagePixels = parsePixelCount(values['max-pixels'], '--max-pixels');
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }
  const sam = { masks: values.masks, 'sam-encoder': values['sam-encoder'], 'sam-decoder': values['sam-decoder'], 'sam-points': values['sam-points'] };
  return { options, json: values.json ?? false, help: false, sam };
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * Turns progress reports into output: a bar redrawn in place on a terminal, plain lines (every 10% and at most
 * every 15 s otherwise) when stderr is a file or pipe.
 */
export function createProgressPrinter(context: Pick<CommandContext, 'stderr' | 'isTTY'>, now: () => number = Date.now) {
  let start = 0;
  let startDone = 0;
  let lastLine = 0;
  let lastPercentStep = -1;
  let barShown = false;
  let lastPhase = '';
  const endBar = (): void => {
    if (barShown) context.stderr('\n');
    barShown = false;
  };
  return (progress: PrepareProgress): void => {
    if (progress.message) {
      endBar();
      context.stderr(`prepare: ${progress.message}\n`);
    }
    if (progress.phase !== 'images') {
      // Other phases are short; their message (printed above) says what happens.
      if (progress.phase === 'done') endBar();
      lastPhase = progress.phase;
      return;
    }
    if (lastPhase !== 'images') {
      lastPhase = 'images';
      start = now();
      startDone = progress.done;
      const resumed = progress.resumed > 0 ? ` (${progress.resumed} already done by an earlier run)` : '';
      context.stderr(`prepare: images: ${progress.total} to check${resumed}\n`);
      return;
    }
    const { done, total, skipped } = progress;
    const elapsed = (now() - start) / 1000;
    const rate = elapsed > 0 ? (done - startDone) / elapsed : 0;
    const eta = rate > 0 ? (total - done) / rate : Number.NaN;
    const percent = total > 0 ? Math.floor((100 * done) / total) : 100;
    const stats = `${done}/${total} ${rate.toFixed(1)} img/s ETA ${formatDuration(eta)}${skipped > 0 ? ` skipped ${skipped}` : ''}`;
    if (context.isTTY) {
      const width = 30;
      const filled = total > 0 ? Math.round((width * done) / total) : width;
      context.stderr(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(percent).padStart(3)}% ${stats}\x1b[K`);
      barShown = true;
      if (done === total) endBar();
      return;
    }
    const step = Math.floor(percent / 10);
    if (step > lastPercentStep || now() - lastLine >= 15_000 || done === total) {
      lastPercentStep = step;
      lastLine = now();
      context.stderr(`prepare: images ${stats} (${percent}%)\n`);
    }
  };
}

function summary(manifest: PreparedManifest, outDir: string, processed: number, resumed: number): string {
  const c = manifest.counts;
  const lines = [
    `prepared ${outDir}`,
    `  images      train ${c.images.train}, val ${c.images.val}, test ${c.images.test} (${processed} processed now, ${resumed} from an earlier run)`,
    `  captions    train ${c.captions.train}, val ${c.captions.val}, test ${c.captions.test}; ${manifest.truncation.truncatedTrainCaptions} train captions longer than ${manifest.truncation.maxCaptionWords} words are truncated`,
    `  vocabulary  ${c.vocabulary} ids (words seen >= ${manifest.settings.minWordFreq} times in train, plus 4 special tokens)`,
    `  nouns       ${c.nounClasses} classes; ${c.imagesWithoutNouns} images have no target noun`,
    `  masks       ${manifest.settings.masks.precomputed ? `precomputed, ${manifest.source.masksDir}` : `${manifest.settings.masks.cacheKey} at ${manifest.settings.size}px, ${manifest.files.masks}`}`,
  ];
  if (c.skipped > 0) lines.push(`  skipped     ${c.skipped} items (listed in manifest.json)`);
  for (const warning of manifest.warnings) lines.push(`  warning     ${warning}`);
  return `${lines.join('\n')}\n`;
}

/** `s2cpnet prepare`: caption file + images -> vocabulary, noun labels, masks and manifest. */
export const prepareCommand: Command = {
  name: 'prepare',
  summary: 'Check a caption dataset and write its vocabulary, target nouns, masks and manifest',
  usage: USAGE,
  async run(argv, context) {
    let parsed;
    try {
      parsed = parsePrepareArgs(argv, context.cwd);
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      context.stderr(`s2cpnet prepare: ${error.message}\nRun 's2cpnet prepare --help' for the options.\n`);
      return ExitCode.usage;
    }
    if (parsed.help) {
      context.stdout(USAGE);
      return ExitCode.ok;
    }
    let sam: SamProvider | null = null;
    try {
      sam = await samProviderFromFlags(parsed.sam ?? {}, context.cwd, context.backend?.threads);
      const result = await prepareDataset({ ...parsed.options, ...(sam ? { maskProvider: sam } : {}), signal: context.signal }, createProgressPrinter(context));
      if (parsed.json) context.stdout(`${JSON.stringify(result.manifest, null, 2)}\n`);
      else context.stdout(summary(result.manifest, result.outDir, result.processed, result.resumed));
      return ExitCode.ok;
    } catch (error) {
      if (!S2CPNetError.isInstance(error)) throw error;
      context.stderr(`${context.isTTY ? '\n' : ''}s2cpnet prepare: error: ${error.message}\n`);
      if (error.code === 'INTERRUPTED') return ExitCode.interrupted;
      return error.code === 'CONFIG' ? ExitCode.usage : ExitCode.badInput;
    } finally {
      await sam?.dispose();
    }
  },
};
