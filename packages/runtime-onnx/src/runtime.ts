import { createHash } from 'node:crypto';
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import type * as Ort from 'onnxruntime-node';
import { CheckpointError, ConfigError } from '@s2cpnet/core';
import {
  beamSearchSteps,
  checkSearchOptions,
  greedySearch,
  runSearchAsync,
  type DecodedCaption,
  type StepAnswer,
  type StepRequest,
} from '@s2cpnet/caption-decoder/decoding';
import { predictCategories } from '@s2cpnet/category-decoder';
import { Vocabulary, type VocabularyJson } from '@s2cpnet/data';
import {
  captionerOverEngine,
  decodeSettings,
  maskProviderMismatch,
  openCaptionMasks,
  type CaptionEngine,
  type Captioner,
  type CaptionerResult,
  type CaptionOptions,
  type LoadCaptionerOptions,
} from '@s2cpnet/model';
import { loadOnnxRuntimeModule } from './ort-loader';
import { IO, ONNX_EXPORT_FORMAT, ONNX_EXPORT_VERSION, ONNX_FILES, type OnnxExportManifest } from './export/export';

/** ONNX Runtime execution providers the runtime can ask for. */
export const ORT_PROVIDERS = ['cpu', 'cuda', 'webgpu'] as const;
export type OrtProvider = (typeof ORT_PROVIDERS)[number];

type OrtModule = typeof Ort;
let ortModule: Promise<OrtModule> | null = null;

/** True when `onnxruntime-node` can be imported from here. */
export function haveOnnxRuntime(): boolean {
  try {
    createRequire(import.meta.url).resolve('onnxruntime-node');
    return true;
  } catch {
    return false;
  }
}

/**
 * Imports `onnxruntime-node` (an optional peer dependency) once; a missing install is a `ConfigError` that says
 * how to install it offline-safely.
 */
export async function importOnnxRuntime(): Promise<OrtModule> {
  ortModule ??= loadOnnxRuntimeModule<OrtModule>(() => import('onnxruntime-node'), 'the onnx runtime', 'runtime').catch((error: unknown) => {
    ortModule = null;
    throw error;
  });
  return ortModule;
}

export interface OnnxSessionOptions {
  /** Execution provider. Default 'cpu'. 'cuda' needs onnxruntime-node's CUDA libraries (installed without the skip setting) and a CUDA 12 GPU. */
  provider?: OrtProvider;
  /** Intra-op threads. Default: `S2CPNET_THREADS`, else ONNX Runtime's default (one per core). */
  threads?: number;
}

function sessionOptions(options: OnnxSessionOptions): Ort.InferenceSession.SessionOptions {
  const provider = options.provider ?? 'cpu';
  if (!(ORT_PROVIDERS as readonly string[]).includes(provider)) {
    throw new ConfigError('provider', `expected one of ${ORT_PROVIDERS.join(', ')}, found ${JSON.stringify(provider)}`);
  }
  const envThreads = Number(process.env.S2CPNET_THREADS);
  const threads = options.threads ?? (Number.isInteger(envThreads) && envThreads > 0 ? envThreads : undefined);
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) throw new ConfigError('threads', `expected a positive integer, found ${threads}`);
  return {
    executionProviders: provider === 'cpu' ? ['cpu'] : [provider, 'cpu'],
    graphOptimizationLevel: 'all',
    ...(threads ? { intraOpNumThreads: threads, interOpNumThreads: 1 } : {}),
  };
}

/**
 * Creates an ONNX Runtime session from a file or bytes with the runtime's provider and thread settings.
 */
export async function createOnnxSession(model: string | Uint8Array, options: OnnxSessionOptions = {}): Promise<Ort.InferenceSession> {
  const ort = await importOnnxRuntime();
  const settings = sessionOptions(options);
  return typeof model === 'string' ? ort.InferenceSession.create(model, settings) : ort.InferenceSession.create(model, settings);
}

/**
 * Finds the ONNX export of `ref`: an export folder (with an `s2cpnet-onnx` manifest.json), a checkpoint or
 * weights package folder with one in `onnx/`, or the name of an installed weights package. Null when there is none.
 */
export function findOnnxExport(ref: string, cwd = process.cwd()): string | null {
  const candidates: string[] = [];
  const local = path.resolve(cwd, ref);
  if (existsSync(local)) candidates.push(local, path.join(local, 'onnx'), path.join(local, 'checkpoint', 'onnx'));
  else {
    try {
      const pkg = path.dirname(createRequire(path.join(cwd, 'noop.js')).resolve(`${ref}/package.json`));
      candidates.push(path.join(pkg, 'onnx'), path.join(pkg, 'checkpoint', 'onnx'));
    } catch {
      // not an installed package
    }
  }
  for (const dir of candidates) {
    const manifest = path.join(dir, ONNX_FILES.manifest);
    if (!existsSync(manifest)) continue;
    try {
      const json = JSON.parse(readFileSync(manifest, 'utf8')) as { format?: unknown };
      if (json.format === ONNX_EXPORT_FORMAT) return dir;
    } catch {
      // not ours
    }
  }
  return null;
}

/** Encoder outputs of a batch of images. */
export interface EncodedBatch {
  count: number;
  /** [count, K] category logits, or null without a category head. */
  categoryLogits: Float32Array | null;
  /** Per decoder layer, [count, H, M, headDim]. */
  memoryKeys: Float32Array[];
  memoryValues: Float32Array[];
}

/** Copies rows of a [rows, ...] array: row i of the result is row `index[i]` of `source`. */
function gatherRows(source: Float32Array, rowSize: number, index: ArrayLike<number>): Float32Array {
  const out = new Float32Array(index.length * rowSize);
  for (let i = 0; i < index.length; i++) out.set(source.subarray(index[i]! * rowSize, (index[i]! + 1) * rowSize), i * rowSize);
  return out;
}

/**
 * An S²CPNet export loaded into ONNX Runtime: the encoder graph and the decoder-step graph, the vocabulary and the
 * noun classes. `captionBatch` decodes with the same greedy / beam search code as the tfjs runtime
 * (`@s2cpnet/caption-decoder/decoding`), driven over the step graph with a key/value cache.
 */
export class OnnxCaptionModel {
  private constructor(
    readonly dir: string,
    readonly manifest: OnnxExportManifest,
    readonly vocabulary: Vocabulary,
    readonly classNames: string[],
    private readonly ort: OrtModule,
    private readonly encoder: Ort.InferenceSession,
    private readonly step: Ort.InferenceSession,
    readonly provider: OrtProvider,
  ) {}

  /** Loads an export folder (see `findOnnxExport` for what `ref` may be); checks the manifest and every file's sha256. */
  static async load(ref: string, options: OnnxSessionOptions & { cwd?: string } = {}): Promise<OnnxCaptionModel> {
    const dir = findOnnxExport(ref, options.cwd) ?? path.resolve(options.cwd ?? process.cwd(), ref);
    const manifestFile = path.join(dir, ONNX_FILES.manifest);
    let manifest: OnnxExportManifest;
    try {
      manifest = JSON.parse(await fsp.readFile(manifestFile, 'utf8')) as OnnxExportManifest;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new CheckpointError(
        code === 'ENOENT'
          ? `${ref}: no ONNX export found (looked for ${manifestFile}); make one with: s2cpnet export --checkpoint ${ref} --format onnx --out DIR`
          : `${manifestFile}: not readable JSON (${(error as Error).message})`,
      );
    }
    if (manifest.format !== ONNX_EXPORT_FORMAT) throw new CheckpointError(`${manifestFile}: $.format: expected "${ONNX_EXPORT_FORMAT}", found ${JSON.stringify(manifest.format)}`);
    if (manifest.version !== ONNX_EXPORT_VERSION) throw new CheckpointError(`${manifestFile}: $.version: expected ${ONNX_EXPORT_VERSION}, found ${JSON.stringify(manifest.version)} (export it again with this version)`);
    const bytes: Record<string, Buffer> = {};
    for (const name of [ONNX_FILES.encoder, ONNX_FILES.decoderStep, ONNX_FILES.vocabulary, ONNX_FILES.nouns]) {
      const expected = manifest.files?.[name];
      if (!expected) throw new CheckpointError(`${manifestFile}: $.files["${name}"]: missing`);
      const file = path.join(dir, name);
      const data = await fsp.readFile(file).catch((error: NodeJS.ErrnoException) => {
        throw new CheckpointError(`${file}: cannot read (${error.code ?? error.message})`);
      });
      const found = createHash('sha256').update(data).digest('hex');
      if (found !== expected.sha256) throw new CheckpointError(`${file}: sha256 ${found} does not match the manifest's ${expected.sha256}: the file is damaged or was changed`);
      bytes[name] = data;
    }
    const vocabulary = Vocabulary.fromJSON(JSON.parse(bytes[ONNX_FILES.vocabulary]!.toString('utf8')) as VocabularyJson, path.join(dir, ONNX_FILES.vocabulary));
    const classNames = (JSON.parse(bytes[ONNX_FILES.nouns]!.toString('utf8')) as { classes: string[] }).classes;
    const ort = await importOnnxRuntime();
    const encoder = await createOnnxSession(bytes[ONNX_FILES.encoder]!, options);
    const step = await createOnnxSession(bytes[ONNX_FILES.decoderStep]!, options);
    return new OnnxCaptionModel(dir, manifest, vocabulary, classNames, ort, encoder, step, options.provider ?? 'cpu');
  }

  /** Runs the encoder graph on `count` normalised images (and mask views) [count, S, S, 3]. */
  async encode(pixels: Float32Array, maskPixels: Float32Array | null, count: number): Promise<EncodedBatch> {
    const s = this.manifest.inputSize;
    const feeds: Record<string, Ort.Tensor> = { [IO.images]: new this.ort.Tensor('float32', pixels, [count, s, s, 3]) };
    if (this.manifest.useMaskView) {
      if (!maskPixels) throw new ConfigError('masks', 'this model reads the mask view, but no mask pixels were given');
      feeds[IO.masks] = new this.ort.Tensor('float32', maskPixels, [count, s, s, 3]);
    }
    const out = await this.encoder.run(feeds);
    const layers = this.manifest.decoder.numLayers;
    return {
      count,
      categoryLogits: this.manifest.hasCategoryHead ? (out[IO.categoryLogits]!.data as Float32Array) : null,
      memoryKeys: Array.from({ length: layers }, (_, l) => out[IO.memoryKey(l)]!.data as Float32Array),
      memoryValues: Array.from({ length: layers }, (_, l) => out[IO.memoryValue(l)]!.data as Float32Array),
    };
  }

  /** The asynchronous step function of a search over `encoded` (see `runSearchAsync`). */
  stepper(encoded: EncodedBatch): (request: StepRequest) => Promise<StepAnswer> {
    const { numLayers, numHeads, headDim } = this.manifest.decoder;
    const m = this.manifest.memoryTokens;
    const memoryRow = numHeads * m * headDim;
    let rows = encoded.count;
    let items = Int32Array.from({ length: rows }, (_, i) => i); // image of each row
    let memoryKeys: Float32Array[] = encoded.memoryKeys;
    let memoryValues: Float32Array[] = encoded.memoryValues;
    let past = 0;
    let pastKeys: Float32Array[] = Array.from({ length: numLayers }, () => new Float32Array(0));
    let pastValues: Float32Array[] = Array.from({ length: numLayers }, () => new Float32Array(0));
    const Tensor = this.ort.Tensor;
    return async (request) => {
      if (request.reorder) {
        const index = request.reorder;
        const newItems = Int32Array.from(index, (r) => items[r]!);
        const same = newItems.length === items.length && newItems.every((v, i) => v === items[i]);
        if (!same) {
          memoryKeys = encoded.memoryKeys.map((k) => gatherRows(k, memoryRow, newItems));
          memoryValues = encoded.memoryValues.map((v) => gatherRows(v, memoryRow, newItems));
        }
        const pastRow = numHeads * past * headDim;
        pastKeys = pastKeys.map((k) => gatherRows(k, pastRow, index));
        pastValues = pastValues.map((v) => gatherRows(v, pastRow, index));
        items = newItems;
        rows = index.length;
      }
      if (request.tokens.length !== rows) throw new ConfigError('tokens', `expected ${rows} tokens (one per row), found ${request.tokens.length}`);
      const feeds: Record<string, Ort.Tensor> = {
        [IO.tokens]: new Tensor('int64', BigInt64Array.from(request.tokens, (t) => BigInt(t)), [rows]),
        [IO.position]: new Tensor('int64', BigInt64Array.of(BigInt(past)), [1]),
      };
      for (let l = 0; l < numLayers; l++) {
        feeds[IO.memoryKey(l)] = new Tensor('float32', memoryKeys[l]!, [rows, numHeads, m, headDim]);
        feeds[IO.memoryValue(l)] = new Tensor('float32', memoryValues[l]!, [rows, numHeads, m, headDim]);
        feeds[IO.pastKey(l)] = new Tensor('float32', pastKeys[l]!, [rows, numHeads, past, headDim]);
        feeds[IO.pastValue(l)] = new Tensor('float32', pastValues[l]!, [rows, numHeads, past, headDim]);
      }
      const out = await this.step.run(feeds);
      pastKeys = Array.from({ length: numLayers }, (_, l) => out[IO.presentKey(l)]!.data as Float32Array);
      pastValues = Array.from({ length: numLayers }, (_, l) => out[IO.presentValue(l)]!.data as Float32Array);
      past += 1;
      // a copy: the search overwrites suppressed entries
      return { logProbs: Float32Array.from(out[IO.logProbs]!.data as Float32Array), attention: out[IO.attention]!.data as Float32Array, memoryTokens: m };
    };
  }

  /** Decodes `encoded` with greedy (beam 1) or beam search, exactly as the tfjs `captionBatch` does. */
  async decode(encoded: EncodedBatch, options: CaptionOptions = {}): Promise<DecodedCaption[]> {
    const { beamSize, search: base } = decodeSettings(this.vocabulary, options);
    const checked = checkSearchOptions(beamSize <= 1 ? 'greedyDecode' : 'beamSearch', { vocabSize: this.manifest.decoder.vocabSize, positions: this.manifest.decoder.maxLength }, base);
    const settings = { ...base, ...checked };
    const search =
      beamSize <= 1
        ? greedySearch(encoded.count, this.manifest.decoder.vocabSize, settings)
        : beamSearchSteps(encoded.count, this.manifest.decoder.vocabSize, settings);
    return runSearchAsync(search, this.stepper(encoded));
  }

  /** Captions `count` normalised images: captions, categories and (optionally) attention, like the tfjs `captionBatch`. */
  async captionBatch(pixels: Float32Array, maskPixels: Float32Array | null, count: number, options: CaptionOptions = {}): Promise<CaptionerResult[]> {
    const encoded = await this.encode(pixels, maskPixels, count);
    const decoded = await this.decode(encoded, options);
    const k = this.classNames.length;
    const categories = encoded.categoryLogits
      ? predictCategories(Array.from({ length: count }, (_, b) => Array.from(encoded.categoryLogits!.subarray(b * k, (b + 1) * k))), this.classNames, options.categoryThreshold ?? 0.5)
      : decoded.map(() => []);
    return decoded.map((d, i) => {
      const tokenWords = d.tokens.map((id) => this.vocabulary.wordOf(id));
      return {
        caption: tokenWords.join(' '),
        categories: categories[i]!.map((c) => ({ name: c.name, probability: c.probability })),
        ...(options.returnAttention ? { attention: d.attention.map((weights, w) => ({ word: tokenWords[w]!, weights })) } : {}),
        grid: this.manifest.gridSize,
      };
    });
  }

  async dispose(): Promise<void> {
    await Promise.all([this.encoder.release(), this.step.release()]);
  }
}

/** Options of `loadOnnxCaptioner`: those of `loadCaptioner` (backend and threads mean ONNX Runtime's here) plus the provider. */
export interface LoadOnnxCaptionerOptions extends Omit<LoadCaptionerOptions, 'runtime' | 'backend' | 'sha256'>, OnnxSessionOptions {}

/** A captioner running an ONNX export; `model` is the loaded export. */
export interface OnnxCaptioner extends Omit<Captioner, 'checkpoint'> {
  readonly model: OnnxCaptionModel;
  readonly runtime: 'onnx';
}

/**
 * Loads a captioner over an ONNX export (`ref`: an export folder, a checkpoint or weights package folder with an
 * `onnx/` export, or an installed weights package's name). Inputs, mask views, batching and failures work exactly
 * as in `loadCaptioner` (the same code, `captionerOverEngine`); only the forward pass runs in ONNX Runtime.
 *
 * @example
 * ```ts
 * import { loadOnnxCaptioner } from '@s2cpnet/runtime-onnx';
 * const captioner = await loadOnnxCaptioner('@s2cpnet/weights-ucm-mobilenet', { threads: 1 });
 * console.log(await captioner.caption('scene.tif'));
 * ```
 */
export async function loadOnnxCaptioner(ref: string, options: LoadOnnxCaptionerOptions = {}): Promise<OnnxCaptioner> {
  const report = options.onProgress ?? (() => undefined);
  report({ stage: 'checkpoint', message: `loading the ONNX export of ${ref}` });
  const model = await OnnxCaptionModel.load(ref, { provider: options.provider, threads: options.threads, cwd: options.cwd });
  try {
    const manifest = model.manifest;
    const maskSize = manifest.useMaskView ? (options.maskSize ?? manifest.maskSize ?? 224) : null;
    const masks = maskSize
      ? await openCaptionMasks({
          masksDir: options.masksDir,
          cacheDir: options.cacheDir,
          maskSize,
          cwd: options.cwd,
          warn: options.warn,
          cacheHint: options.cacheHint,
          provider: options.maskProvider,
          // The built-in segmenter's version the training masks were made with (absent: v1).
          version: manifest.masks?.version,
        })
      : null;
    if (masks) {
      const mismatch = maskProviderMismatch(manifest.masks, { masksDir: options.masksDir, provider: options.maskProvider });
      if (mismatch) options.warn?.(mismatch);
    }
    const decode: CaptionOptions = {
      beamSize: options.beam ?? 3,
      maxLength: options.maxLength ?? 25,
      lengthPenalty: options.lengthPenalty ?? 0,
      returnAttention: options.attention ?? false,
    };
    const engine: CaptionEngine = {
      inputSize: manifest.inputSize,
      normalization: manifest.normalization,
      usesMaskView: manifest.useMaskView,
      run: (pixels, maskPixels, count) => model.captionBatch(pixels, maskPixels, count, decode),
      dispose: () => void model.dispose(),
    };
    const captioner = captionerOverEngine(engine, { ...options, masks, maskSize });
    report({ stage: 'ready', message: `ONNX export loaded (${model.provider})` });
    return { ...captioner, model, runtime: 'onnx', backend: `onnxruntime-${model.provider}` };
  } catch (error) {
    await model.dispose();
    throw error;
  }
}
