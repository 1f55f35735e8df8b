/**
 * Caption a folder of images with a checkpoint, twice: through the library (`loadCheckpoint` + `captionBatch`) and
 * through the `s2cpnet caption` command. Give `--checkpoint @s2cpnet/weights-ucm-mobilenet` (the released UCM model)
 * or a folder of your own; without `--checkpoint` the example first trains a tiny S²CPNet on a synthetic aerial set
 * for about 45 seconds and saves it (so that it runs self-contained, on synthetic images that model knows).
 *
 *   npm start -- [--checkpoint DIR] [--images DIR] [--masks DIR] [--train-seconds 45] [--beam 3]
 *                [--out DIR] [--backend wasm|cpu|tensorflow]
 */
import { copyFileSync, mkdirSync, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, maskSizeFor, main as s2cpnet } from '@s2cpnet/cli';
import {
  FelzenszwalbSegmenter,
  FolderMaskProvider,
  MaskCache,
  decodeImageFile,
  imagesOfSplit,
  normalizeForBackbone,
  prepareDataset,
  resizeBilinear,
  writeSyntheticAerialSet,
  type RgbImage,
} from '@s2cpnet/data';
import { captionBatch, loadCheckpoint, presetConfig, train, type CaptionResult, type LoadedCheckpoint, type S2CPNetConfig } from '@s2cpnet/model';

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.tif', '.tiff']);

export interface CaptionImagesOptions {
  /** A checkpoint folder (or an installed weights package). Default: train a tiny one first. */
  checkpoint?: string;
  /** Folder of images to caption. Default: the held-out test images of the synthetic set. */
  images?: string;
  /** Folder of mask views named like the images (for models that read the mask view). Default: the synthetic
   *  set's masks when captioning its images, else masks computed with the Felzenszwalb segmenter (cached). */
  masks?: string;
  /** Output folder: synthetic set, prepared set, training run, captions. Default: a fixed folder in the temp dir. */
  out?: string;
  /** Training time budget in seconds when no checkpoint is given (training stops after the epoch that passes it). */
  trainSeconds?: number;
  /** Synthetic images to generate for training (80% train, 10% val, 10% test). Default 400. */
  syntheticImages?: number;
  /** Beam width. Default 3. */
  beamSize?: number;
  /** Images per forward pass. Default 8. */
  batchSize?: number;
  backend?: string;
  seed?: number;
  log?: (line: string) => void;
}

export interface CaptionedImage {
  file: string;
  caption: string;
  categories: string[];
}

export interface CaptionImagesResult {
  backend: string;
  checkpoint: string;
  /** Whether this run trained the checkpoint. */
  trained: boolean;
  imagesDir: string;
  masksDir: string | null;
  /** Captions from `loadCheckpoint` + `captionBatch`. */
  library: CaptionedImage[];
  /** Captions from `s2cpnet caption ... --out captions-cli.json`. */
  cli: CaptionedImage[];
  /** The equivalent command line. */
  command: string;
}

/** S²CPNet with every part switched on, shrunk to train from scratch on 64 px scenes in under a minute. */
export function tinyConfig(seed: number): S2CPNetConfig {
  const d = 64;
  return {
    ...presetConfig('s2cpnet'),
    name: 'caption-images-tiny',
    encoder: { type: 'resnet50', inputSize: 64, grid: 'native', blocksPerStage: [1, 1, 1, 1], baseWidth: 8, freeze: 'none' },
    spatialEnhancer: { outputChannels: d, variant: 'paper' },
    fusion: { type: 'cvff', dim: d, heads: 4, units: 1, ffnMultiplier: 2, dropout: 0.1 },
    categoryHead: { type: 'multi-label', dim: d, numHeads: 4, dropout: 0.1 },
    captionDecoder: { type: 'gated', dim: d, numLayers: 1, numHeads: 4, dropout: 0.1, maxLength: 32 },
    seed,
  };
}

/** Image files of a folder (not recursive), sorted by name, like `s2cpnet caption` lists them. */
export async function listImages(dir: string): Promise<string[]> {
  const names = (await fsp.readdir(dir)).filter((n) => IMAGE_EXTENSIONS.has(path.extname(n).toLowerCase())).sort();
  if (names.length === 0) throw new Error(`${dir}: no .png/.jpg/.jpeg/.tif/.tiff images`);
  return names.map((n) => path.join(dir, n));
}

/**
 * The library way: read each image, resize it to the model's input, normalise it the way the backbone expects,
 * do the same for its mask view, and caption a batch at a time.
 */
export async function captionFolder(
  checkpoint: LoadedCheckpoint,
  files: readonly string[],
  options: { masks: FolderMaskProvider | MaskCache | null; beamSize: number; batchSize: number },
): Promise<CaptionResult[]> {
  const { model } = checkpoint;
  const size = model.inputSize;
  const normalization = model.encoder.normalization === 'symmetric' ? 'mobilenet' : 'resnet';
  const maskView = async (image: RgbImage, file: string): Promise<RgbImage> => {
    if (options.masks instanceof FolderMaskProvider) return options.masks.readMaskView(file);
    if (options.masks instanceof MaskCache) return options.masks.get(image, file);
    throw new Error(`the model reads the mask view: give a masks folder`);
  };
  const results: CaptionResult[] = [];
  for (let from = 0; from < files.length; from += options.batchSize) {
    const chunk = files.slice(from, from + options.batchSize);
    const pixels = new Float32Array(chunk.length * size * size * 3);
    const maskPixels = model.config.useMaskView ? new Float32Array(chunk.length * size * size * 3) : null;
    for (let i = 0; i < chunk.length; i++) {
      const image = await decodeImageFile(chunk[i]!);
      normalizeForBackbone(resizeBilinear(image, size, size), normalization, pixels, i * size * size * 3);
      if (maskPixels) normalizeForBackbone(resizeBilinear(await maskView(image, chunk[i]!), size, size), normalization, maskPixels, i * size * size * 3);
    }
    const images = tf.tensor4d(pixels, [chunk.length, size, size, 3]);
    const masks = maskPixels ? tf.tensor4d(maskPixels, [chunk.length, size, size, 3]) : undefined;
    try {
      results.push(...captionBatch(model, { images, masks }, checkpoint.vocabulary, checkpoint.classNames, { beamSize: options.beamSize, maxLength: 25 }));
    } finally {
      tf.dispose([images, ...(masks ? [masks] : [])]);
    }
  }
  return results;
}

/** Trains the tiny model on a synthetic set; returns its best checkpoint and the test images with their masks. */
async function trainTinyCheckpoint(out: string, options: { seed: number; images: number; seconds: number; log: (line: string) => void }) {
  const set = await writeSyntheticAerialSet(path.join(out, 'synthetic'), { seed: options.seed, count: options.images, size: 64 });
  const preparedDir = path.join(out, 'prepared');
  await prepareDataset({ annotations: set.datasetFile, imagesDir: set.imagesDir, masksDir: set.masksDir, outDir: preparedDir, size: 64 });
  options.log(`training a tiny S²CPNet on ${set.splitSizes.train} synthetic scenes for about ${options.seconds} s`);
  const runDir = path.join(out, 'run');
  await fsp.rm(runDir, { recursive: true, force: true });
  const result = await train({
    data: preparedDir,
    runDir,
    config: tinyConfig(options.seed),
    batchSize: 16,
    learningRate: 2e-3,
    maxEpochs: 1000,
    timeBudgetMinutes: options.seconds / 60,
    schedule: { factor: 0.2, patience: 1000, stopPatience: 1000 },
    validation: { beamSize: 1, maxImages: 16 },
    log: (line) => options.log(`  ${line}`),
  });
  result.model.dispose();
  // "your own images": the held-out test scenes, copied into a plain folder
  const imagesDir = path.join(out, 'my-images');
  await fsp.rm(imagesDir, { recursive: true, force: true });
  mkdirSync(imagesDir, { recursive: true });
  for (const image of imagesOfSplit(result.prepared.dataset, 'test')) copyFileSync(image.file, path.join(imagesDir, path.basename(image.file)));
  return { checkpoint: result.bestDir, imagesDir, masksDir: set.masksDir };
}

function rowsOf(files: readonly string[], results: readonly CaptionResult[]): CaptionedImage[] {
  return files.map((file, i) => ({ file: path.basename(file), caption: results[i]!.caption, categories: results[i]!.categories.map((c) => c.name) }));
}

export async function run(options: CaptionImagesOptions = {}): Promise<CaptionImagesResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const seed = options.seed ?? 1;
  const beamSize = options.beamSize ?? 3;
  const batchSize = options.batchSize ?? 8;
  const out = path.resolve(options.out ?? path.join(os.tmpdir(), 's2cpnet-caption-images'));
  mkdirSync(out, { recursive: true });
  const info = await initBackend({ backend: options.backend });
  log(`backend: ${info.backend}; output in ${out}`);

  let checkpointDir = options.checkpoint;
  let imagesDir = options.images ? path.resolve(options.images) : undefined;
  let masksDir = options.masks ? path.resolve(options.masks) : undefined;
  const trained = !checkpointDir;
  if (!checkpointDir) {
    const tiny = await trainTinyCheckpoint(out, { seed, images: options.syntheticImages ?? 400, seconds: options.trainSeconds ?? 45, log });
    checkpointDir = tiny.checkpoint;
    if (!imagesDir) {
      imagesDir = tiny.imagesDir;
      masksDir ??= tiny.masksDir;
    }
    log(`saved the checkpoint in ${checkpointDir}`);
  }
  if (!imagesDir) throw new Error('--images: give the folder of images to caption (required with --checkpoint)');

  // 1. the library
  const checkpoint = await loadCheckpoint(checkpointDir);
  const files = await listImages(imagesDir);
  // Masks computed here must be the ones training saw: the working size of the training data's `prepare` (as the
  // CLI picks it), cached by the content of each image file. Library and CLI share the cache folder below.
  const cacheDir = path.join(out, '.s2cpnet-cache');
  const maskSize = await maskSizeFor(checkpoint);
  const masks = !checkpoint.model.config.useMaskView
    ? null
    : masksDir
      ? new FolderMaskProvider({ dir: masksDir })
      : new MaskCache({ dir: path.join(cacheDir, 'masks'), provider: new FelzenszwalbSegmenter(), size: maskSize });
  let library: CaptionedImage[];
  try {
    library = rowsOf(files, await captionFolder(checkpoint, files, { masks, beamSize, batchSize }));
  } finally {
    checkpoint.model.dispose();
  }
  await fsp.writeFile(path.join(out, 'captions.json'), `${JSON.stringify(library, null, 2)}\n`);

  // 2. the same through the command line (run in-process here; from a shell it is the `command` printed below)
  const cliOut = path.join(out, 'captions-cli.json');
  const argv = ['caption', '--checkpoint', checkpointDir, imagesDir, ...(masksDir ? ['--masks', masksDir] : ['--cache-dir', cacheDir, '--mask-size', String(maskSize)]), '--beam', String(beamSize), '--batch-size', String(batchSize), '--out', cliOut];
  const stderr: string[] = [];
  const code = await s2cpnet(['--backend', info.backend, ...argv], { cwd: out, stdout: (t) => log(t.trimEnd()), stderr: (t) => stderr.push(t), isTTY: false });
  if (code !== 0) throw new Error(`s2cpnet caption exited with ${code}: ${stderr.join('')}`);
  const cli = (JSON.parse(await fsp.readFile(cliOut, 'utf8')) as { file: string; caption: string; categories: { name: string }[] }[]).map((r) => ({
    file: path.basename(r.file),
    caption: r.caption,
    categories: r.categories.map((c) => c.name),
  }));

  const width = Math.max(...library.map((r) => r.file.length));
  log(`\n${library.length} images, beam ${beamSize}:`);
  for (const row of library) log(`  ${row.file.padEnd(width)}  ${row.caption}${row.categories.length ? `  [${row.categories.join(', ')}]` : ''}`);
  const same = library.every((row, i) => row.caption === cli[i]?.caption);
  log(`\nlibrary captions written to ${path.join(out, 'captions.json')}`);
  log(`s2cpnet caption wrote ${cliOut}: ${same ? 'the same captions' : 'DIFFERENT captions'}`);
  const command = `s2cpnet ${argv.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`;
  log(`equivalent command line:\n  ${command}`);
  if (trained) log(`caption more images with this checkpoint:\n  npm start -- --checkpoint ${checkpointDir} --images <folder>`);
  return { backend: info.backend, checkpoint: checkpointDir, trained, imagesDir, masksDir: masksDir ?? null, library, cli, command };
}

function numberFlag(value: string | undefined, flag: string, integer: boolean): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) throw new Error(`${flag}: expected a ${integer ? 'whole ' : ''}number >= 0, found ${JSON.stringify(value)}`);
  return n;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      checkpoint: { type: 'string' },
      images: { type: 'string' },
      masks: { type: 'string' },
      out: { type: 'string' },
      'train-seconds': { type: 'string' },
      'synthetic-images': { type: 'string' },
      beam: { type: 'string' },
      backend: { type: 'string' },
    },
  });
  run({
    checkpoint: values.checkpoint,
    images: values.images,
    masks: values.masks,
    out: values.out,
    trainSeconds: numberFlag(values['train-seconds'], '--train-seconds', false),
    syntheticImages: numberFlag(values['synthetic-images'], '--synthetic-images', true),
    beamSize: numberFlag(values.beam, '--beam', true),
    backend: values.backend,
  }).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
