import { parseArgs } from 'node:util';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, InputError, S2CPNetError, writeFileAtomic } from '@s2cpnet/core';
import {
  computeMaskView,
  decodeImageFile,
  describeFsError,
  normalizeForBackbone,
  parsePixelCount,
  probeImageFile,
  realImagePath,
  resizeBilinear,
  FolderMaskProvider,
  FelzenszwalbSegmenter,
  MaskCache,
  DEFAULT_WORKING_SIZE,
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

/**
 * Expands files and folders (not recursive) into image files, sorted within each folder. A file in a folder that
 * is a symbolic link leading out of that folder is refused (a file named on the command line is taken as given).
 */
export async function expandImageArguments(items: readonly string[], cwd: string): Promise<string[]> {
  const out: string[] = [];
  for (const item of items) {
    const full = path.resolve(cwd, item);
    let stat;
    try {
      stat = await fsp.stat(full);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new InputError(code === 'ENOENT' ? 'no such file or folder' : describeFsError(code, 'file or folder'), { file: full, cause: error });
    }
    if (stat.isDirectory()) {
      let listed: string[];
      try {
        listed = await fsp.readdir(full);
      } catch (error) {
        throw new InputError(describeFsError((error as NodeJS.ErrnoException).code, 'folder'), { file: full, cause: error });
      }
      const names = listed.filter((n) => IMAGE_EXTENSIONS.has(path.extname(n).toLowerCase())).sort();
      if (names.length === 0) throw new InputError('folder holds no .tif/.tiff/.jpg/.jpeg/.png images', { file: full });
      for (const name of names) {
        await realImagePath(full, path.join(full, name));
        out.push(path.join(full, name));
      }
    } else out.push(full);
  }
  return out;
}

/**
 * Checks every image before any model is loaded: readable, a decodable header, and at most `maxPixels` pixels
 * (default `S2CPNET_MAX_IMAGE_PIXELS` or 64 megapixels). The first bad file is an `InputError` naming it.
 */
export async function checkImageFiles(files: readonly string[], options: { maxPixels?: number } = {}): Promise<void> {
  for (const file of files) await probeImageFile(file, options);
}

/** Gives the mask view of a decoded image file (any size: `captionFiles` resizes it like the image). */
export type CaptionMaskSource = (image: RgbImage, file: string) => Promise<RgbImage>;

/** Captions image files with a loaded checkpoint, in batches; results are in the order of `files`. */
export async function captionFiles(
  checkpoint: LoadedCheckpoint,
  files: readonly string[],
  options: {
    beamSize: number;
    maxLength: number;
    lengthPenalty?: number;
    batchSize: number;
    masks: CaptionMaskSource | CaptionMasks | null;
    /** Largest image accepted, in pixels (default `S2CPNET_MAX_IMAGE_PIXELS` or 64 megapixels). */
    maxPixels?: number;
    signal?: AbortSignal;
    onProgress?: (done: number, total: number) => void;
  },
): Promise<CaptionResult[]> {
  const { model } = checkpoint;
  const size = model.inputSize;
  const norm = model.encoder.normalization === 'symmetric' ? 'mobilenet' : 'resnet';
  const maskView: CaptionMaskSource | null =
    options.masks === null ? null : typeof options.masks === 'function' ? options.masks : options.masks.view;
  const results: CaptionResult[] = [];
  for (let from = 0; from < files.length; from += options.batchSize) {
    if (options.signal?.aborted) throw new InputError('captioning interrupted');
    const chunk = files.slice(from, from + options.batchSize);
    const pixels = new Float32Array(chunk.length * size * size * 3);
    const maskPixels = model.config.useMaskView ? new Float32Array(chunk.length * size * size * 3) : null;
    for (let i = 0; i < chunk.length; i++) {
      const image = await decodeImageFile(chunk[i]!, { maxPixels: options.maxPixels });
      pixels.set(normalizeForBackbone(resizeBilinear(image, size, size), norm), i * size * size * 3);
      if (maskPixels) {
        if (!maskView) throw new Error('captionFiles: this checkpoint reads the mask view, but no mask source was given');
        const view = await maskView(image, chunk[i]!);
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

/**
 * One CSV cell. A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return would run as a formula in
 * a spreadsheet (CSV injection): it gets a leading `'`, as OWASP advises. Cells holding a quote, comma, line break
 * or such a prefix are quoted, with quotes doubled (RFC 4180).
 */
export function csvField(value: string): string {
  const formula = /^[=+\-@\t\r]/.test(value);
  const text = formula ? `'${value}` : value;
  return formula || /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** One output row of `caption`. */
export interface CaptionRow {
  file: string;
  caption: string;
  categories: { name: string; probability: number }[];
}

/** The `--out x.csv` text: a header line and one line per row, every cell through `csvField`. */
export function formatCaptionsCsv(rows: readonly CaptionRow[]): string {
  return `file,caption,categories\n${rows.map((r) => [r.file, r.caption, r.categories.map((c) => c.name).join(' ')].map(csvField).join(',')).join('\n')}\n`;
}

/**
 * The cache folder of `caption` and `evaluate`: `S2CPNET_CACHE_DIR`, else `$XDG_CACHE_HOME/s2cpnet`, else
 * `~/.cache/s2cpnet` (`%LOCALAPPDATA%\s2cpnet\cache` on Windows). Never the working folder, which may be
 * read-only or shared.
 */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.S2CPNET_CACHE_DIR) return path.resolve(env.S2CPNET_CACHE_DIR);
  if (env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME)) return path.join(env.XDG_CACHE_HOME, 's2cpnet');
  if (process.platform === 'win32') return path.join(env.LOCALAPPDATA ?? path.join(os.homedir(), 'AppData', 'Local'), 's2cpnet', 'cache');
  return path.join(os.homedir(), '.cache', 's2cpnet');
}

/** Mask views for captioning: `view(image, file)` gives the mask view of a decoded image file. */
export interface CaptionMasks {
  view: CaptionMaskSource;
  /** Where computed masks are cached (`<cache folder>/masks`), or null when they are not. */
  cacheDir: string | null;
}

export interface OpenCaptionMasksOptions {
  /** Folder of precomputed masks named like the images (`--masks`); then nothing is computed or cached. */
  masksDir?: string;
  /** Cache folder (masks go to `<cacheDir>/masks`); default `defaultCacheDir()`; `false`: no cache. */
  cacheDir?: string | false;
  /** Working size masks are computed at: `prepare --size` of the training data (default 224, prepare's default). */
  maskSize?: number;
  cwd: string;
  /** Where warnings go (one line each, no newline). */
  warn?: (line: string) => void;
}

/**
 * Opens the mask source of `caption`/`evaluate`. With `masksDir`, the precomputed masks. Otherwise masks are
 * computed exactly as `prepare` computes them for training (`computeMaskView` with the Felzenszwalb segmenter at
 * `maskSize`), cached by the sha256 of each image file's bytes and the mask settings, so files that share a base
 * name never share a mask. When the cache folder cannot be created or written, a warning says where and why and
 * masks are computed without a cache.
 */
export async function openCaptionMasks(options: OpenCaptionMasksOptions): Promise<CaptionMasks> {
  if (options.masksDir) {
    const folder = new FolderMaskProvider({ dir: path.resolve(options.cwd, options.masksDir) });
    return { view: (_image, file) => folder.readMaskView(file), cacheDir: null };
  }
  const provider = new FelzenszwalbSegmenter();
  const size = options.maskSize ?? DEFAULT_WORKING_SIZE;
  const compute: CaptionMaskSource = (image, file) => computeMaskView(image, file, provider, { size });
  if (options.cacheDir === false) return { view: compute, cacheDir: null };
  const warn = options.warn ?? (() => undefined);
  const dir = path.join(path.resolve(options.cwd, options.cacheDir ?? defaultCacheDir()), 'masks');
  const hint = 'set --cache-dir DIR or S2CPNET_CACHE_DIR to a writable folder, or pass --no-cache';
  try {
    await fsp.mkdir(dir, { recursive: true });
    // mkdir succeeds on an existing read-only folder: a small write says whether the cache is usable.
    const probe = path.join(dir, `.write-test-${process.pid}`);
    await fsp.writeFile(probe, '');
    await fsp.rm(probe, { force: true });
  } catch (error) {
    const reason = describeFsError((error as NodeJS.ErrnoException).code, 'mask cache folder', 'create');
    warn(`cannot create the mask cache folder ${dir} (${reason}); computing masks without a cache this run (${hint})`);
    return { view: compute, cacheDir: null };
  }
  let cache: MaskCache | null = new MaskCache({ dir, provider, size, keyBy: 'content' });
  const view: CaptionMaskSource = async (image, file) => {
    if (!cache) return compute(image, file);
    try {
      return await cache.get(image, file);
    } catch (error) {
      // Bad input (an unreadable image) is the caller's to report; a cache that stops taking writes is not fatal.
      if (S2CPNetError.isInstance(error)) throw error;
      const reason = describeFsError((error as NodeJS.ErrnoException).code, 'mask cache folder', 'write to');
      warn(`cannot write to the mask cache folder ${dir} (${reason}); computing masks without a cache from here on (${hint})`);
      cache = null;
      return compute(image, file);
    }
  };
  return { view, cacheDir: dir };
}

/** The flags `caption` and `evaluate` share for masks, caches and image limits. */
export const MASK_FLAGS = {
  masks: { type: 'string' },
  'mask-size': { type: 'string' },
  'cache-dir': { type: 'string' },
  'no-cache': { type: 'boolean', default: false },
  'max-pixels': { type: 'string' },
} as const;

/**
 * The working size masks are computed at: `--mask-size`, else the one the checkpoint records for its training data
 * (`$.masks.workingSize` of checkpoint.json), else (older checkpoints) the `prepare --size` in the manifest of the
 * training data when that folder is still there, else 224 (prepare's default).
 */
export async function maskSizeFor(checkpoint: Pick<LoadedCheckpoint, 'training'> & { masks?: LoadedCheckpoint['masks'] }, flag?: string): Promise<number> {
  const explicit = numberFlag(flag, '--mask-size', { integer: true, min: 16 });
  if (explicit !== undefined) return explicit;
  const recorded = checkpoint.masks?.workingSize;
  if (typeof recorded === 'number' && recorded >= 16) return recorded;
  const data = checkpoint.training?.run?.data;
  if (typeof data === 'string') {
    try {
      const manifest = JSON.parse(await fsp.readFile(path.join(data, 'manifest.json'), 'utf8')) as { settings?: { masks?: { workingSize?: unknown } } };
      const size = manifest.settings?.masks?.workingSize;
      if (Number.isInteger(size) && (size as number) >= 16) return size as number;
    } catch {
      // The training data may be gone or elsewhere: fall back to prepare's default.
    }
  }
  return DEFAULT_WORKING_SIZE;
}

/** Reads the `MASK_FLAGS` values into the options of `openCaptionMasks` (less `maskSize` and `cwd`) and `maxPixels`. */
export function maskFlags(values: { masks?: string; 'cache-dir'?: string; 'no-cache'?: boolean; 'max-pixels'?: string }) {
  return {
    masksDir: values.masks,
    cacheDir: values['no-cache'] ? (false as const) : values['cache-dir'],
    maxPixels: values['max-pixels'] === undefined ? undefined : parsePixelCount(values['max-pixels'], '--max-pixels'),
  };
}

export const captionCommand: Command = {
  name: 'caption',
  summary: 'Caption your own images (TIFF/JPEG/PNG files or folders) with a checkpoint',
  usage:
    's2cpnet caption --checkpoint DIR|PACKAGE FILES_OR_FOLDERS... [--masks DIR] [--beam K] [--length-penalty A] [--max-length N]\n' +
    '                [--out captions.json|captions.csv] [--mask-size N] [--cache-dir DIR | --no-cache] [--max-pixels N]',
  async run(argv: string[], context: CommandContext) {
    const { values, positionals } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        checkpoint: { type: 'string' },
        ...MASK_FLAGS,
        ...DECODING_FLAGS,
        out: { type: 'string' },
      },
    });
    if (!values.checkpoint) throw new ConfigError('--checkpoint', 'required: a checkpoint folder or an installed weights package');
    if (positionals.length === 0) throw new ConfigError('FILES_OR_FOLDERS', 'give at least one image file or folder');
    if (values.out && !/\.(json|csv)$/i.test(values.out)) throw new ConfigError('--out', `expected a .json or .csv file name, found ${JSON.stringify(values.out)}`);
    const decoding = decodingFlags(values);
    const flags = maskFlags(values);
    const files = await expandImageArguments(positionals, context.cwd);
    // Every image is checked (readable, within the pixel cap) before the model is loaded.
    await checkImageFiles(files, { maxPixels: flags.maxPixels });
    await initBackend({ ...context.backend });
    const checkpoint = await loadCheckpoint(values.checkpoint, { cwd: context.cwd });
    const masks = checkpoint.model.config.useMaskView
      ? await openCaptionMasks({ ...flags, maskSize: await maskSizeFor(checkpoint, values['mask-size']), cwd: context.cwd, warn: (line) => context.stderr(`caption: warning: ${line}\n`) })
      : null;
    const bar = new ProgressBar(context, 'caption');
    const results = await captionFiles(checkpoint, files, { ...decoding, masks, maxPixels: flags.maxPixels, signal: context.signal, onProgress: (d, t) => bar.update(d, t, '') });
    bar.end();
    const rows: CaptionRow[] = files.map((file, i) => ({
      file: path.relative(context.cwd, file) || file,
      caption: results[i]!.caption,
      categories: results[i]!.categories.map((c) => ({ name: c.name, probability: Math.round(c.probability * 1000) / 1000 })),
    }));
    if (values.out) {
      const out = path.resolve(context.cwd, values.out);
      const text = out.toLowerCase().endsWith('.csv') ? formatCaptionsCsv(rows) : `${JSON.stringify(rows, null, 2)}\n`;
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
