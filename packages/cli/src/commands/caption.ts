import { parseArgs } from 'node:util';
import { promises as fsp, statSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, InputError, writeFileAtomic } from '@s2cpnet/core';
import {
  decodeImageFile,
  normalizeForBackbone,
  resizeBilinear,
  FolderMaskProvider,
  FelzenszwalbSegmenter,
  MaskCache,
  renderMaskView,
  type RgbImage,
} from '@s2cpnet/data';
import { captionBatch, loadCheckpoint, type CaptionResult, type LoadedCheckpoint } from '@s2cpnet/model';
import type { Command, CommandContext } from '../command';
import { ExitCode } from '../command';
import { initBackend } from '../backend';
import { ProgressBar } from '../progress';
import { numberFlag } from './train';

const IMAGE_EXTENSIONS = new Set(['.tif', '.tiff', '.jpg', '.jpeg', '.png']);

/** Expands files and folders (not recursive) into image files, sorted within each folder. */
export async function expandImageArguments(items: readonly string[], cwd: string): Promise<string[]> {
  const out: string[] = [];
  for (const item of items) {
    const full = path.resolve(cwd, item);
    let stat;
    try {
      stat = statSync(full);
    } catch {
      throw new InputError('no such file or folder', { file: full });
    }
    if (stat.isDirectory()) {
      const names = (await fsp.readdir(full)).filter((n) => IMAGE_EXTENSIONS.has(path.extname(n).toLowerCase())).sort();
      if (names.length === 0) throw new InputError('folder holds no .tif/.tiff/.jpg/.jpeg/.png images', { file: full });
      out.push(...names.map((n) => path.join(full, n)));
    } else out.push(full);
  }
  return out;
}

type MaskSourceLike = FolderMaskProvider | MaskCache | null;

async function maskViewFor(masks: MaskSourceLike, image: RgbImage, file: string): Promise<RgbImage> {
  if (masks instanceof FolderMaskProvider) return masks.readMaskView(file);
  if (masks instanceof MaskCache) return masks.get(image, file);
  throw new Error('no mask source');
}

/** Captions image files with a loaded checkpoint, in batches; results are in the order of `files`. */
export async function captionFiles(
  checkpoint: LoadedCheckpoint,
  files: readonly string[],
  options: { beamSize: number; maxLength: number; lengthPenalty?: number; batchSize: number; masks: MaskSourceLike; signal?: AbortSignal; onProgress?: (done: number, total: number) => void },
): Promise<CaptionResult[]> {
  const { model } = checkpoint;
  const size = model.inputSize;
  const norm = model.encoder.normalization === 'symmetric' ? 'mobilenet' : 'resnet';
  const results: CaptionResult[] = [];
  for (let from = 0; from < files.length; from += options.batchSize) {
    if (options.signal?.aborted) throw new InputError('captioning interrupted');
    const chunk = files.slice(from, from + options.batchSize);
    const pixels = new Float32Array(chunk.length * size * size * 3);
    const maskPixels = model.config.useMaskView ? new Float32Array(chunk.length * size * size * 3) : null;
    for (let i = 0; i < chunk.length; i++) {
      const image = await decodeImageFile(chunk[i]!);
      pixels.set(normalizeForBackbone(resizeBilinear(image, size, size), norm), i * size * size * 3);
      if (maskPixels) {
        const view = await maskViewFor(options.masks, image, chunk[i]!);
        maskPixels.set(normalizeForBackbone(resizeBilinear(view, size, size), norm), i * size * size * 3);
      }
    }
    const images = tf.tensor4d(pixels, [chunk.length, size, size, 3]);
    const masks = maskPixels ? tf.tensor4d(maskPixels, [chunk.length, size, size, 3]) : undefined;
    try {
      results.push(...captionBatch(model, { images, masks }, checkpoint.vocabulary, checkpoint.classNames, { beamSize: options.beamSize, maxLength: options.maxLength, lengthPenalty: options.lengthPenalty ?? 0 }));
    } finally {
      tf.dispose([images, ...(masks ? [masks] : [])]);
    }
    options.onProgress?.(Math.min(from + chunk.length, files.length), files.length);
  }
  return results;
}

/** The decoding flags `caption` and `evaluate` share, for `parseArgs`. */
export const DECODING_FLAGS = {
  beam: { type: 'string' },
  'length-penalty': { type: 'string' },
  'max-length': { type: 'string' },
  'batch-size': { type: 'string' },
} as const;

/** Reads the `DECODING_FLAGS` values, with their defaults (beam 3, no length penalty, 25 words, 8 images per batch). */
export function decodingFlags(values: { beam?: string; 'length-penalty'?: string; 'max-length'?: string; 'batch-size'?: string }) {
  return {
    beamSize: numberFlag(values.beam, '--beam', { integer: true, min: 1 }) ?? 3,
    maxLength: numberFlag(values['max-length'], '--max-length', { integer: true, min: 1 }) ?? 25,
    lengthPenalty: numberFlag(values['length-penalty'], '--length-penalty') ?? 0,
    batchSize: numberFlag(values['batch-size'], '--batch-size', { integer: true, min: 1 }) ?? 8,
  };
}

function csvField(value: string): string {
  return /[",\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export const captionCommand: Command = {
  name: 'caption',
  summary: 'Caption your own images (TIFF/JPEG/PNG files or folders) with a checkpoint',
  usage: 's2cpnet caption --checkpoint DIR|PACKAGE FILES_OR_FOLDERS... [--masks DIR] [--beam K] [--length-penalty A] [--max-length N] [--out captions.json|captions.csv]',
  async run(argv: string[], context: CommandContext) {
    const { values, positionals } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        checkpoint: { type: 'string' },
        masks: { type: 'string' },
        ...DECODING_FLAGS,
        out: { type: 'string' },
      },
    });
    if (!values.checkpoint) throw new ConfigError('--checkpoint', 'required: a checkpoint folder or an installed weights package');
    if (positionals.length === 0) throw new ConfigError('FILES_OR_FOLDERS', 'give at least one image file or folder');
    if (values.out && !/\.(json|csv)$/i.test(values.out)) throw new ConfigError('--out', `expected a .json or .csv file name, found ${JSON.stringify(values.out)}`);
    const files = await expandImageArguments(positionals, context.cwd);
    const decoding = decodingFlags(values);
    await initBackend({ ...context.backend });
    const checkpoint = await loadCheckpoint(values.checkpoint, { cwd: context.cwd });
    const masks = checkpoint.model.config.useMaskView
      ? values.masks
        ? new FolderMaskProvider({ dir: path.resolve(context.cwd, values.masks) })
        : new MaskCache({ dir: path.join(context.cwd, '.s2cpnet-cache', 'masks'), provider: new FelzenszwalbSegmenter() })
      : null;
    const bar = new ProgressBar(context, 'caption');
    const results = await captionFiles(checkpoint, files, { ...decoding, masks, signal: context.signal, onProgress: (d, t) => bar.update(d, t, '') });
    bar.end();
    const rows = files.map((file, i) => ({
      file: path.relative(context.cwd, file) || file,
      caption: results[i]!.caption,
      categories: results[i]!.categories.map((c) => ({ name: c.name, probability: Math.round(c.probability * 1000) / 1000 })),
    }));
    if (values.out) {
      const out = path.resolve(context.cwd, values.out);
      const text = out.toLowerCase().endsWith('.csv')
        ? `file,caption,categories\n${rows.map((r) => [r.file, r.caption, r.categories.map((c) => c.name).join(' ')].map(csvField).join(',')).join('\n')}\n`
        : `${JSON.stringify(rows, null, 2)}\n`;
      await writeFileAtomic(out, text);
      context.stderr(`caption: wrote ${rows.length} captions to ${out}\n`);
    } else {
      for (const r of rows) context.stdout(`${r.file}\t${r.caption}\t[${r.categories.map((c) => c.name).join(', ')}]\n`);
    }
    checkpoint.model.dispose();
    return ExitCode.ok;
  },
};

export { renderMaskView };
