/**
 * The one-call captioning API: `loadCaptioner(ref)` sets a backend up when the program has none, loads a checkpoint
 * (a folder, an installed weights package, or a URL of a checkpoint archive checked by its sha256) and returns a
 * captioner for file paths, encoded image bytes and tensors. The `s2cpnet caption` command runs on it, so the
 * decode / resize / normalise / mask view / `captionBatchAsync` pipeline exists once.
 */
import { promises as fsp, existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError, ConfigError, InputError, S2CPNetError } from '@s2cpnet/core';
import { ensureBackend } from '@s2cpnet/core/backend';
import { downloadFile } from '@s2cpnet/encoder';
import {
  computeMaskView,
  decodeImageBuffer,
  decodeImageFile,
  describeFsError,
  normalizeForBackbone,
  resizeBilinear,
  createBuiltInSegmenter,
  FolderMaskProvider,
  MaskCache,
  DEFAULT_WORKING_SIZE,
  type MaskProvider,
  type MasksVersion,
  type RgbImage,
} from '@s2cpnet/data';
import { loadCheckpoint, type LoadedCheckpoint } from './checkpoint';
import { captionBatchAsync, type WordAttention } from './inference';

/**
 * The cache folder of captioning (computed masks, downloaded checkpoints): `S2CPNET_CACHE_DIR`, else
 * `$XDG_CACHE_HOME/s2cpnet`, else `~/.cache/s2cpnet` (`%LOCALAPPDATA%\s2cpnet\cache` on Windows). Never the working
 * folder, which may be read-only or shared.
 */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.S2CPNET_CACHE_DIR) return path.resolve(env.S2CPNET_CACHE_DIR);
  if (env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME)) return path.join(env.XDG_CACHE_HOME, 's2cpnet');
  if (process.platform === 'win32') return path.join(env.LOCALAPPDATA ?? path.join(os.homedir(), 'AppData', 'Local'), 's2cpnet', 'cache');
  return path.join(os.homedir(), '.cache', 's2cpnet');
}

/** Gives the mask view of a decoded image (any size: the captioner resizes it like the image). */
export type CaptionMaskSource = (image: RgbImage, file: string) => Promise<RgbImage>;

/** Mask views for captioning: `view(image, file)` gives the mask view of a decoded image file. */
export interface CaptionMasks {
  view: CaptionMaskSource;
  /** Where computed masks are cached (`<cache folder>/masks`), or null when they are not. */
  cacheDir: string | null;
  /** True for precomputed masks read from a folder (they exist only for files). */
  precomputed?: boolean;
  /** The same views without the file-keyed cache, for inputs that are not files (bytes, tensors). */
  compute?: CaptionMaskSource;
}

export interface OpenCaptionMasksOptions {
  /** Folder of precomputed masks named like the images; then nothing is computed or cached. */
  masksDir?: string;
  /** Cache folder (masks go to `<cacheDir>/masks`); default `defaultCacheDir()`; `false`: no cache. */
  cacheDir?: string | false;
  /** Working size masks are computed at: `prepare --size` of the training data (default 224, prepare's default). */
  maskSize?: number;
  cwd?: string;
  /** Where warnings go (one line each, no newline). */
  warn?: (line: string) => void;
  /** How to fix an unusable cache folder, appended to the warning. */
  cacheHint?: string;
  /**
   * Computes the masks instead of the built-in Felzenszwalb segmenter, e.g. a SAM-class model
   * (`@s2cpnet/runtime-onnx`'s `createSamMaskProvider`): use the provider the checkpoint's training data used.
   */
  provider?: MaskProvider;
  /**
   * Version of the built-in segmenter, the one the checkpoint's training data was prepared with
   * (`recordedMaskVersion`, from checkpoint.json's `$.masks.version`): v1 masks for a model trained on v1, v2 for v2.
   * Default v1. Ignored with `masksDir` or `provider`.
   */
  version?: MasksVersion;
}

/**
 * Opens the mask source of captioning. With `masksDir`, the precomputed masks. Otherwise masks are computed exactly
 * as `prepare` computes them for training (`computeMaskView` with the Felzenszwalb segmenter at `maskSize`), cached
 * by the sha256 of each image file's bytes and the mask settings, so files that share a base name never share a
 * mask. When the cache folder cannot be created or written, a warning says where and why and masks are computed
 * without a cache.
 */
export async function openCaptionMasks(options: OpenCaptionMasksOptions): Promise<CaptionMasks> {
  const cwd = options.cwd ?? process.cwd();
  if (options.masksDir) {
    const folder = new FolderMaskProvider({ dir: path.resolve(cwd, options.masksDir) });
    return { view: (_image, file) => folder.readMaskView(file), cacheDir: null, precomputed: true };
  }
  const provider = options.provider ?? createBuiltInSegmenter(options.version ?? 'v1');
  const size = options.maskSize ?? DEFAULT_WORKING_SIZE;
  const compute: CaptionMaskSource = (image, file) => computeMaskView(image, file, provider, { size });
  if (options.cacheDir === false) return { view: compute, cacheDir: null, compute };
  const warn = options.warn ?? (() => undefined);
  const dir = path.join(path.resolve(cwd, options.cacheDir ?? defaultCacheDir()), 'masks');
  const hint = options.cacheHint ?? 'set the cacheDir option or S2CPNET_CACHE_DIR to a writable folder, or pass cacheDir: false';
  try {
    await fsp.mkdir(dir, { recursive: true });
    // mkdir succeeds on an existing read-only folder: a small write says whether the cache is usable.
    const probe = path.join(dir, `.write-test-${process.pid}`);
    await fsp.writeFile(probe, '');
    await fsp.rm(probe, { force: true });
  } catch (error) {
    const reason = describeFsError((error as NodeJS.ErrnoException).code, 'mask cache folder', 'create');
    warn(`cannot create the mask cache folder ${dir} (${reason}); computing masks without a cache this run (${hint})`);
    return { view: compute, cacheDir: null, compute };
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
  return { view, cacheDir: dir, compute };
}

/**
 * A warning when captioning would compute masks with another provider than the one the checkpoint's training
 * masks came from (e.g. trained on `prepare --masks sam`, captioned without a SAM model), else null.
 */
export function maskProviderMismatch(recorded: { provider: string; precomputed: boolean } | null | undefined, options: { masksDir?: string; provider?: MaskProvider }): string | null {
  if (!recorded || recorded.precomputed || options.masksDir) return null;
  const using = options.provider?.name ?? 'felzenszwalb';
  if (recorded.provider === using) return null;
  return `the checkpoint's training masks came from "${recorded.provider}" but captioning computes them with "${using}": captions may suffer (for sam, give --masks sam --sam-encoder F --sam-decoder F)`;
}

/**
 * The version of the built-in segmenter the checkpoint's training masks were made with (`$.masks.version` of
 * checkpoint.json); v1 when absent (checkpoints written before masks were versioned were all trained on v1).
 */
export function recordedMaskVersion(checkpoint: { masks?: LoadedCheckpoint['masks'] }): MasksVersion {
  return checkpoint.masks?.version ?? 'v1';
}

/**
 * The working size masks are computed at: the one the checkpoint records for its training data
 * (`$.masks.workingSize` of checkpoint.json), else (older checkpoints) the `prepare --size` in the manifest of the
 * training data when that folder is still there, else 224 (prepare's default).
 */
export async function recordedMaskSize(checkpoint: Pick<LoadedCheckpoint, 'training'> & { masks?: LoadedCheckpoint['masks'] }): Promise<number> {
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

/**
 * What `caption` accepts: an image file path, the bytes of an encoded image (PNG/JPEG/TIFF), an `[H, W, 3]` tensor of
 * 0..255 values, or a decoded `RgbImage` (`{ width, height, data }`, 8-bit RGB, row-major; a tile of a scene).
 */
export type CaptionerInput = string | Uint8Array | tf.Tensor3D | RgbImage;

/** One captioned image. */
export interface CaptionerResult {
  /** The input file (absolute path), for file inputs. */
  file?: string;
  caption: string;
  /** Predicted noun classes with probability >= 0.5, most probable first (empty without a category head). */
  categories: { name: string; probability: number }[];
  /** Attention of each word over the `grid` x `grid` feature grid, when asked for (`attention: true`). */
  attention?: WordAttention[];
  grid: number;
}

/** A file `captionFiles` could not caption (with `onError: 'skip'`). */
export interface CaptionerFailure {
  file: string;
  error: string;
}

/** Per image, for callers that show or stream results (the CLI's JSONL and HTML report). */
export interface CaptionedItem {
  index: number;
  result: CaptionerResult;
  /** The decoded image, as read. */
  image: RgbImage;
  /** The mask view the model read (at the mask working size), or null for a single-view model. */
  maskView: RgbImage | null;
}

/** Loading progress: one event per stage, and download byte counts. */
export interface CaptionerLoadProgress {
  stage: 'backend' | 'download' | 'checkpoint' | 'ready';
  message: string;
  receivedBytes?: number;
  totalBytes?: number;
}

export interface LoadCaptionerOptions {
  /** 'tfjs' (the default); for 'onnx' use `@s2cpnet/runtime-onnx`'s `loadOnnxCaptioner`, which takes the same options. */
  runtime?: 'tfjs' | 'onnx';
  /** tfjs backend to use (`tensorflow`, `wasm`, `cpu`); default: the program's, else the fastest available. */
  backend?: string;
  /** wasm threads (see `initBackend`). */
  threads?: number;
  /** Beam width (1: greedy). Default 3. */
  beam?: number;
  /** Most words per caption. Default 25. */
  maxLength?: number;
  /** GNMT length-penalty exponent. Default 0. */
  lengthPenalty?: number;
  /** Images per forward pass. Default 8. */
  batchSize?: number;
  /** Include per-word attention in results. Default false. */
  attention?: boolean;
  /** Folder of precomputed masks named like the image files (for checkpoints trained on such masks). */
  masksDir?: string;
  /** Computes masks instead of the built-in segmenter (see `OpenCaptionMasksOptions.provider`). */
  maskProvider?: MaskProvider;
  /** Mask working size; default the one the checkpoint records (see `recordedMaskSize`). */
  maskSize?: number;
  /** Cache folder for computed masks and downloaded checkpoints; default `defaultCacheDir()`; false: no mask cache. */
  cacheDir?: string | false;
  /** How to fix an unusable cache folder (the CLI names its flags). */
  cacheHint?: string;
  /** Largest image accepted, in pixels (default `S2CPNET_MAX_IMAGE_PIXELS` or 64 megapixels). */
  maxPixels?: number;
  /** SHA-256 of the archive when `ref` is a URL (or give it in the URL as `#sha256=HEX`). */
  sha256?: string;
  /** Relative paths are resolved against this. Default `process.cwd()`. */
  cwd?: string;
  onProgress?: (progress: CaptionerLoadProgress) => void;
  /** Warnings (an oversized input, an unusable cache), one line each. Default: none. */
  warn?: (line: string) => void;
  signal?: AbortSignal;
}

export interface CaptionFilesOptions {
  /** 'stop' (default): the first failure is thrown, naming the file. 'skip': failures are returned and captioning goes on. */
  onError?: 'stop' | 'skip';
  /** Called as each image is captioned (in input order), before the next batch starts. */
  onItem?: (item: CaptionedItem) => void | Promise<void>;
  /** Called after each failed file with `onError: 'skip'`. */
  onFailure?: (failure: CaptionerFailure, index: number) => void | Promise<void>;
  /** Images done (captioned or failed) of the total, after each batch. */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface Captioner {
  readonly checkpoint: LoadedCheckpoint;
  /** The tfjs backend in use. */
  readonly backend: string;
  /** The side the model reads images at. */
  readonly inputSize: number;
  /** The mask working size, or null for a model without the mask view. */
  readonly maskSize: number | null;
  /** Captions one input or several; one result per input, in order. */
  caption(input: CaptionerInput | readonly CaptionerInput[], options?: { signal?: AbortSignal }): Promise<CaptionerResult[]>;
  /** Captions image files in batches, yielding to the event loop between batches. */
  captionFiles(paths: readonly string[], options?: CaptionFilesOptions): Promise<(CaptionerResult | CaptionerFailure)[]>;
  /** Frees the model's weights. */
  dispose(): void;
}

/** Larger inputs than this many times the model's input side get a warning: they are shrunk and captioned as one scene. */
export const OVERSIZE_FACTOR = 4;

/** True for a `captionFiles` entry that failed. */
export function isCaptionFailure(entry: CaptionerResult | CaptionerFailure): entry is CaptionerFailure {
  return typeof (entry as CaptionerFailure).error === 'string';
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Loads a captioner. `ref` is a checkpoint folder, a weights package folder, the name of an installed weights package
 * (`@s2cpnet/weights-ucm-mobilenet`), or the http(s) URL of a checkpoint archive (a `.tgz`/`.tar` such as
 * `npm pack` makes of a weights package) with its sha256 (`options.sha256` or `#sha256=HEX`), downloaded once
 * into the cache folder and checked. A backend is set up when the program has none.
 *
 * @example
 * ```ts
 * import { loadCaptioner } from '@s2cpnet/model';
 * const captioner = await loadCaptioner('@s2cpnet/weights-ucm-mobilenet');
 * console.log(await captioner.caption('scene.tif'));
 * ```
 */
export async function loadCaptioner(ref: string, options: LoadCaptionerOptions = {}): Promise<Captioner> {
  const runtime = options.runtime ?? 'tfjs';
  if (runtime === 'onnx') throw new ConfigError('runtime', "the 'onnx' runtime is @s2cpnet/runtime-onnx's loadOnnxCaptioner (same options); loadCaptioner runs tfjs");
  if (runtime !== 'tfjs') throw new ConfigError('runtime', `expected 'tfjs', found ${JSON.stringify(runtime)}`);
  // Checked before anything is loaded.
  positiveInteger(options.beam, 'beam', 3);
  positiveInteger(options.maxLength, 'maxLength', 25);
  positiveInteger(options.batchSize, 'batchSize', 8);
  const cwd = options.cwd ?? process.cwd();
  const report = options.onProgress ?? (() => undefined);
  const warn = options.warn ?? (() => undefined);

  report({ stage: 'backend', message: 'setting up the TensorFlow.js backend' });
  const { backend } = await ensureBackend({ backend: options.backend, threads: options.threads });
  const reference = /^https?:\/\//i.test(ref) ? await fetchCheckpointArchive(ref, options, report) : ref;
  report({ stage: 'checkpoint', message: `loading checkpoint ${ref}` });
  const checkpoint = await loadCheckpoint(reference, { cwd });
  let masks: CaptionMasks | null = null;
  let maskSize: number | null = null;
  try {
    if (checkpoint.model.config.useMaskView) {
      maskSize = options.maskSize ?? (await recordedMaskSize(checkpoint));
      masks = await openCaptionMasks({ masksDir: options.masksDir, cacheDir: options.cacheDir, maskSize, cwd, warn, cacheHint: options.cacheHint, provider: options.maskProvider, version: recordedMaskVersion(checkpoint) });
      const mismatch = maskProviderMismatch(checkpoint.masks, { masksDir: options.masksDir, provider: options.maskProvider });
      if (mismatch) warn(mismatch);
    }
  } catch (error) {
    checkpoint.model.dispose();
    throw error;
  }
  report({ stage: 'ready', message: `checkpoint loaded on the ${backend} backend` });
  return createCaptioner(checkpoint, { ...options, backend, masks, maskSize });
}

export interface CreateCaptionerOptions extends Omit<LoadCaptionerOptions, 'runtime' | 'threads' | 'sha256' | 'onProgress' | 'masksDir' | 'maskProvider' | 'cacheDir' | 'cacheHint' | 'maskSize'> {
  /** Mask views, required when the model reads them (see `openCaptionMasks`); a function is called with each decoded image and its name. */
  masks?: CaptionMasks | CaptionMaskSource | null;
  /** The mask working size, for information (`Captioner.maskSize`). */
  maskSize?: number | null;
}

/**
 * A captioner over a checkpoint already loaded (on the current backend); `loadCaptioner` is the usual way in.
 * `dispose()` frees the checkpoint's model.
 *
 * @example
 * ```ts
 * const checkpoint = await loadCheckpoint('runs/s2cpnet/best');
 * const masks = await openCaptionMasks({ maskSize: await recordedMaskSize(checkpoint) });
 * const captioner = createCaptioner(checkpoint, { masks, beam: 3 });
 * ```
 */
export function createCaptioner(checkpoint: LoadedCheckpoint, options: CreateCaptionerOptions = {}): Captioner {
  const beam = positiveInteger(options.beam, 'beam', 3);
  const maxLength = positiveInteger(options.maxLength, 'maxLength', 25);
  const backend = options.backend ?? tf.getBackend();
  const { model } = checkpoint;
  const decodeOptions = { beamSize: beam, maxLength, lengthPenalty: options.lengthPenalty ?? 0, returnAttention: options.attention ?? false };
  const engine: CaptionEngine = {
    inputSize: model.inputSize,
    normalization: model.encoder.normalization === 'symmetric' ? 'mobilenet' : 'resnet',
    usesMaskView: model.config.useMaskView,
    async run(pixels, maskPixels, count) {
      const size = model.inputSize;
      const images = tf.tensor4d(pixels, [count, size, size, 3]);
      const maskTensor = maskPixels ? tf.tensor4d(maskPixels, [count, size, size, 3]) : undefined;
      try {
        return (await captionBatchAsync(model, { images, masks: maskTensor }, checkpoint.vocabulary, checkpoint.classNames, decodeOptions)).map((r) => ({
          caption: r.caption,
          categories: r.categories.map((c) => ({ name: c.name, probability: c.probability })),
          ...(decodeOptions.returnAttention ? { attention: r.attention } : {}),
          grid: r.grid,
        }));
      } finally {
        tf.dispose([images, ...(maskTensor ? [maskTensor] : [])]);
      }
    },
    dispose: () => model.dispose(),
  };
  return { checkpoint, backend, ...captionerOverEngine(engine, options) };
}

/**
 * The forward pass of a captioner: normalised pixels in, captions out. The tfjs captioner's engine runs the
 * checkpoint's model; `@s2cpnet/runtime-onnx` gives one that runs an ONNX export, so decoding, resizing,
 * normalisation, mask views, batching and error handling exist once (`captionerOverEngine`).
 */
export interface CaptionEngine {
  /** The side the model reads images at. */
  readonly inputSize: number;
  /** Pixel normalisation of the backbone (`normalizeForBackbone`). */
  readonly normalization: 'mobilenet' | 'resnet';
  /** True when the model reads the mask view. */
  readonly usesMaskView: boolean;
  /** Captions `count` images: `pixels` (and `maskPixels`) [count, S, S, 3], normalised. One result per image, without `file`. */
  run(pixels: Float32Array, maskPixels: Float32Array | null, count: number): CaptionerResult[] | Promise<CaptionerResult[]>;
  dispose(): void;
}

/** The runtime-independent part of a captioner over a `CaptionEngine`: inputs, mask views, batches, failures. */
export function captionerOverEngine(
  engine: CaptionEngine,
  options: Pick<CreateCaptionerOptions, 'batchSize' | 'cwd' | 'warn' | 'masks' | 'maskSize' | 'maxPixels' | 'signal'> = {},
): Omit<Captioner, 'checkpoint' | 'backend'> {
  const batchSize = positiveInteger(options.batchSize, 'batchSize', 8);
  const cwd = options.cwd ?? process.cwd();
  const warn = options.warn ?? (() => undefined);
  const masks: CaptionMasks | null =
    !engine.usesMaskView || !options.masks ? null : typeof options.masks === 'function' ? { view: options.masks, cacheDir: null } : options.masks;
  if (engine.usesMaskView && !masks) throw new ConfigError('masks', 'this checkpoint reads the mask view, but no mask source was given (see openCaptionMasks)');
  const maskSize = masks ? (options.maskSize ?? null) : null;

  const size = engine.inputSize;
  const norm = engine.normalization;
  let disposed = false;

  const checkSize = (image: RgbImage, name: string) => {
    if (Math.max(image.width, image.height) > OVERSIZE_FACTOR * size) {
      warn(
        `${name} is ${image.width}x${image.height} px, more than ${OVERSIZE_FACTOR}x the model's ${size} px input: it is shrunk to ${size}x${size} ` +
          'and captioned as one scene (cut it into tiles to caption its parts)',
      );
    }
  };

  /** Decodes one input and makes its mask view. */
  const prepare = async (input: CaptionerInput, index: number): Promise<{ file?: string; image: RgbImage; maskView: RgbImage | null }> => {
    let file: string | undefined;
    let image: RgbImage;
    let name: string;
    if (typeof input === 'string') {
      file = path.resolve(cwd, input);
      name = file;
      image = await decodeImageFile(file, { maxPixels: options.maxPixels });
    } else if (input instanceof Uint8Array) {
      name = `<image bytes #${index}>`;
      image = await decodeImageBuffer(input, name, { maxPixels: options.maxPixels });
    } else if (input instanceof tf.Tensor) {
      name = `<tensor #${index}>`;
      image = await tensorToImage(input, name);
    } else if (isRgbImage(input)) {
      name = `<image #${index}>`;
      if (input.data.length !== input.width * input.height * 3) {
        throw new InputError(`expected ${input.width}x${input.height}x3 = ${input.width * input.height * 3} bytes of RGB data, found ${input.data.length}`, { file: name });
      }
      image = input;
    } else {
      throw new InputError(`caption: input ${index}: expected a file path, a Uint8Array/Buffer of an encoded image, an [H, W, 3] tensor or an RgbImage, found ${typeof input}`);
    }
    checkSize(image, name);
    let maskView: RgbImage | null = null;
    if (masks) {
      if (file) maskView = await masks.view(image, file);
      else if (masks.precomputed) throw new InputError('precomputed masks (masksDir) exist only for image files; give a file path', { file: name });
      else maskView = await (masks.compute ?? masks.view)(image, name);
    }
    return { file, image, maskView };
  };

  /** The forward pass of one batch of prepared inputs. */
  const run = async (batch: readonly { file?: string; image: RgbImage; maskView: RgbImage | null }[]): Promise<CaptionerResult[]> => {
    if (disposed) throw new ConfigError('captioner', 'this captioner was disposed');
    const pixels = new Float32Array(batch.length * size * size * 3);
    const maskPixels = masks ? new Float32Array(batch.length * size * size * 3) : null;
    batch.forEach((item, i) => {
      pixels.set(normalizeForBackbone(resizeBilinear(item.image, size, size), norm), i * size * size * 3);
      if (maskPixels) maskPixels.set(normalizeForBackbone(resizeBilinear(item.maskView!, size, size), norm), i * size * size * 3);
    });
    const results = await engine.run(pixels, maskPixels, batch.length);
    return results.map((r, i) => (batch[i]!.file ? { file: batch[i]!.file, ...r } : r));
  };

  const interrupted = (signal?: AbortSignal) => {
    if (signal?.aborted) throw new InputError('captioning interrupted');
  };

  return {
    inputSize: size,
    maskSize,
    async caption(input, callOptions = {}) {
      const inputs: readonly CaptionerInput[] = Array.isArray(input) ? (input as readonly CaptionerInput[]) : [input as CaptionerInput];
      const results: CaptionerResult[] = [];
      for (let from = 0; from < inputs.length; from += batchSize) {
        interrupted(callOptions.signal ?? options.signal);
        const chunk = inputs.slice(from, from + batchSize);
        const prepared = [];
        for (let i = 0; i < chunk.length; i++) prepared.push(await prepare(chunk[i]!, from + i));
        results.push(...(await run(prepared)));
        await yieldToEventLoop();
      }
      return results;
    },
    async captionFiles(paths, fileOptions = {}) {
      const onError = fileOptions.onError ?? 'stop';
      if (onError !== 'stop' && onError !== 'skip') throw new ConfigError('onError', `expected 'stop' or 'skip', found ${JSON.stringify(onError)}`);
      const out: (CaptionerResult | CaptionerFailure)[] = [];
      for (let from = 0; from < paths.length; from += batchSize) {
        interrupted(fileOptions.signal ?? options.signal);
        const chunk = paths.slice(from, from + batchSize);
        const prepared: { index: number; file: string; image: RgbImage; maskView: RgbImage | null }[] = [];
        const failed = new Map<number, CaptionerFailure>();
        for (let i = 0; i < chunk.length; i++) {
          const file = path.resolve(cwd, chunk[i]!);
          try {
            prepared.push({ index: from + i, ...(await prepare(file, from + i)), file });
          } catch (error) {
            if (onError === 'stop' || !S2CPNetError.isInstance(error)) throw error;
            failed.set(from + i, { file, error: error.message });
          }
        }
        const results = prepared.length > 0 ? await run(prepared) : [];
        const byIndex = new Map(prepared.map((p, i) => [p.index, { ...p, result: results[i]! }]));
        for (let index = from; index < from + chunk.length; index++) {
          const done = byIndex.get(index);
          if (done) {
            out.push(done.result);
            await fileOptions.onItem?.({ index, result: done.result, image: done.image, maskView: done.maskView });
          } else {
            const failure = failed.get(index)!;
            out.push(failure);
            await fileOptions.onFailure?.(failure, index);
          }
        }
        fileOptions.onProgress?.(Math.min(from + chunk.length, paths.length), paths.length);
        await yieldToEventLoop();
      }
      return out;
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      engine.dispose();
    },
  };
}

function isRgbImage(value: unknown): value is RgbImage {
  const v = value as Partial<RgbImage> | null;
  return typeof v === 'object' && v !== null && Number.isInteger(v.width) && Number.isInteger(v.height) && (v.width as number) > 0 && (v.height as number) > 0 && v.data instanceof Uint8Array;
}

function positiveInteger(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw new ConfigError(name, `expected a positive integer, found ${JSON.stringify(value)}`);
  return value;
}

/** An `[H, W, 3]` tensor of 0..255 values (int32 or float32) as an RGB image. */
async function tensorToImage(tensor: tf.Tensor, name: string): Promise<RgbImage> {
  if (tensor.rank !== 3 || tensor.shape[2] !== 3) {
    throw new InputError(`expected an [height, width, 3] tensor of 0..255 values, found shape [${tensor.shape.join(', ')}]`, { file: name });
  }
  const values = await tensor.data();
  const data = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = Math.max(0, Math.min(255, Math.round(Number(values[i]))));
  return { width: tensor.shape[1]!, height: tensor.shape[0]!, data };
}

/** Largest checkpoint archive unpacked, and largest single file in it. */
const MAX_ARCHIVE_BYTES = 2 * 2 ** 30;

/**
 * Downloads a checkpoint archive (checked by sha256, cached by `downloadFile`) and unpacks it once into
 * `<cache>/checkpoints/<sha256>/`; returns that folder (a weights package or a checkpoint folder, possibly under
 * `package/` as `npm pack` writes it).
 */
async function fetchCheckpointArchive(url: string, options: LoadCaptionerOptions, report: (p: CaptionerLoadProgress) => void): Promise<string> {
  const hashInUrl = /#sha256=([0-9a-fA-F]{64})$/.exec(url);
  const sha256 = options.sha256 ?? hashInUrl?.[1];
  if (!sha256) throw new ConfigError('sha256', `a checkpoint URL needs its sha256 (the sha256 option or ${url}#sha256=HEX), so that what is loaded is what you meant`);
  const bare = url.replace(/#.*$/, '');
  const cacheRoot = path.join(options.cacheDir === false || options.cacheDir === undefined ? defaultCacheDir() : path.resolve(options.cwd ?? process.cwd(), options.cacheDir), 'checkpoints');
  const unpacked = path.join(cacheRoot, sha256.toLowerCase());
  if (!existsSync(path.join(unpacked, '.complete'))) {
    report({ stage: 'download', message: `downloading ${bare}` });
    const { path: archive } = await downloadFile({
      url: bare,
      sha256,
      cacheDir: path.join(cacheRoot, 'archives'),
      fileName: `${sha256.toLowerCase()}${/\.tar$/i.test(new URL(bare).pathname) ? '.tar' : '.tgz'}`,
      signal: options.signal,
      onProgress: (p) => report({ stage: 'download', message: `downloading ${bare}`, receivedBytes: p.receivedBytes, totalBytes: p.totalBytes }),
    });
    await fsp.rm(unpacked, { recursive: true, force: true });
    await unpackTar(await fsp.readFile(archive), unpacked, bare);
    await fsp.writeFile(path.join(unpacked, '.complete'), '');
  }
  return existsSync(path.join(unpacked, 'package')) && !existsSync(path.join(unpacked, 'checkpoint.json')) && !existsSync(path.join(unpacked, 'package.json'))
    ? path.join(unpacked, 'package')
    : unpacked;
}

/** Unpacks the regular files and folders of a (gzipped) tar archive; anything else, and any path leading out, is refused. */
async function unpackTar(bytes: Buffer, dest: string, source: string): Promise<void> {
  const tar = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes, { maxOutputLength: MAX_ARCHIVE_BYTES }) : bytes;
  const fail = (why: string) => new CheckpointError(`${source}: not a usable checkpoint archive: ${why}`);
  await fsp.mkdir(dest, { recursive: true });
  let offset = 0;
  let longName: string | null = null;
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const field = (from: number, length: number) => header.subarray(from, from + length).toString('utf8').replace(/\0[\s\S]*$/, '');
    const size = parseInt(field(124, 12).trim() || '0', 8);
    if (!Number.isSafeInteger(size) || size < 0 || offset + 512 + size > tar.length) throw fail(`entry at byte ${offset} runs past the end`);
    const type = field(156, 1) || '0';
    const prefix = field(345, 155);
    let name = longName ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
    longName = null;
    const body = tar.subarray(offset + 512, offset + 512 + size);
    offset += 512 + Math.ceil(size / 512) * 512;
    if (type === 'L') {
      longName = body.toString('utf8').replace(/\0[\s\S]*$/, '');
      continue;
    }
    if (type === 'x' || type === 'g') continue; // pax headers: metadata only
    name = name.replace(/^\.\//, '');
    const target = path.resolve(dest, name);
    if (name === '' || path.isAbsolute(name) || (target !== dest && !target.startsWith(dest + path.sep))) throw fail(`entry ${JSON.stringify(name)} leads out of the folder`);
    if (type === '5') await fsp.mkdir(target, { recursive: true });
    else if (type === '0' || type === '7') {
      await fsp.mkdir(path.dirname(target), { recursive: true });
      await fsp.writeFile(target, body);
    } else throw fail(`entry ${JSON.stringify(name)} is not a regular file or folder (type ${JSON.stringify(type)})`);
  }
}
