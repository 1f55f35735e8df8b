import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, writeDirAtomic } from '@s2cpnet/core';
import { recordedMaskSize, type LoadedCheckpoint, type S2CPNet } from '@s2cpnet/model';
import { OnnxGraph, type Value } from '../graph';
import { exporterFor, type CaptionDecoderExporter } from './registry';
import { registerBuiltinExporters } from './builtins';
import { checkQuantizeOptions, quantizeWeights, type QuantizeReport } from './quantize';

/** `manifest.json`'s format name and version of an export folder. */
export const ONNX_EXPORT_FORMAT = 's2cpnet-onnx';
export const ONNX_EXPORT_VERSION = 1;

/** The file names of an export folder. */
export const ONNX_FILES = {
  encoder: 'encoder.onnx',
  decoderStep: 'decoder-step.onnx',
  vocabulary: 'vocabulary.json',
  nouns: 'nouns.json',
  manifest: 'manifest.json',
} as const;

/** What `manifest.json` of an export folder holds. */
export interface OnnxExportManifest {
  format: typeof ONNX_EXPORT_FORMAT;
  version: number;
  created: string;
  /** The preset / config name of the model. */
  name: string;
  /** The model config, as in checkpoint.json. */
  config: unknown;
  inputSize: number;
  normalization: 'mobilenet' | 'resnet';
  useMaskView: boolean;
  /** The mask working size the checkpoint's training data used (null without the mask view). */
  maskSize: number | null;
  /** How the training masks were made (checkpoint.json's `$.masks`), when recorded. */
  masks: LoadedCheckpoint['masks'];
  gridSize: number;
  memoryTokens: number;
  numClasses: number;
  hasCategoryHead: boolean;
  decoder: { numLayers: number; numHeads: number; headDim: number; vocabSize: number; maxLength: number };
  /**
   * How the graphs store their large weights: 'float32', or 'uint8' (`exportOnnx`'s `quantize`) with the scheme in
   * `quantization`. Either way the files are plain ONNX and the runtime computes on float32 weights.
   */
  weights: 'float32' | 'uint8';
  /** With `weights: 'uint8'`: `value = min + q * step` per group of `groupSize` values (see `quantizeWeights`). */
  quantization?: {
    groupSize: number;
    /** Tensors with fewer values (and biases, norms, computed tables) stay float32. */
    minQuantizedSize: number;
    /** Weight tensors and values stored as uint8, over both graphs. */
    tensors: number;
    values: number;
  };
  /** Every other file of the folder with its size and sha256. */
  files: Record<string, { bytes: number; sha256: string }>;
  source: { checkpoint: string };
}

/** Options of `buildOnnxGraphs`: the weights' storage. */
export interface OnnxWeightOptions {
  /**
   * 'uint8': store every float32 weight of at least `minQuantizedSize` values as 8-bit integers with a float32 min
   * and step per group of `groupSize` values of one output channel, dequantised by a small constant subgraph that
   * ONNX Runtime folds at session creation (about 1.25 bytes per value instead of 4; inference speed unchanged).
   * Default: float32.
   */
  quantize?: 'uint8';
  /** Values per quantisation group (default 32). */
  groupSize?: number;
  /** Tensors with fewer values stay float32 (default 1024). */
  minQuantizedSize?: number;
}

export interface ExportOnnxOptions extends OnnxWeightOptions {
  /** Called after each graph is written, with a one-line message. */
  onProgress?: (message: string) => void;
}

export interface ExportOnnxResult {
  dir: string;
  manifest: OnnxExportManifest;
}

/** The two graphs of a model, in memory (what `exportOnnx` writes). */
export interface OnnxGraphs {
  encoder: OnnxGraph;
  decoderStep: OnnxGraph;
  memoryTokens: number;
  decoder: OnnxExportManifest['decoder'];
  /** With `quantize`: what was stored as uint8 in each graph. */
  quantization?: { encoder: QuantizeReport; decoderStep: QuantizeReport };
}

/** Graph input/output names shared by the exporter and the runtime. */
export const IO = {
  images: 'images',
  masks: 'masks',
  categoryLogits: 'category_logits',
  memoryKey: (l: number) => `memory_key_${l}`,
  memoryValue: (l: number) => `memory_value_${l}`,
  tokens: 'tokens',
  position: 'position',
  pastKey: (l: number) => `past_key_${l}`,
  pastValue: (l: number) => `past_value_${l}`,
  logProbs: 'log_probs',
  attention: 'attention',
  presentKey: (l: number) => `present_key_${l}`,
  presentValue: (l: number) => `present_value_${l}`,
} as const;

/** Number of memory tokens M the model's decoder reads (measured with one zero input). */
function memoryTokensOf(model: S2CPNet): number {
  return tf.tidy(() => {
    const g = model.gridSize;
    const features = tf.zeros([1, g, g, model.encoder.outputChannels]) as tf.Tensor4D;
    return model.memoryFromFeatures(features, model.config.useMaskView ? features : null, { training: false }).shape[1];
  });
}

/**
 * Builds the two ONNX graphs of a model (inference mode):
 * - `encoder`: `images` (and `masks`) [batch,S,S,3] normalised -> `category_logits` [batch,K] (with a category head)
 *   and, per decoder layer l, `memory_key_l` / `memory_value_l` [batch,H,M,headDim];
 * - `decoderStep`: `tokens` [rows] int64, `position` [1] int64, `memory_key_l` / `memory_value_l` [rows,H,M,hd],
 *   `past_key_l` / `past_value_l` [rows,H,P,hd] -> `log_probs` [rows,V], `attention` [rows,M],
 *   `present_key_l` / `present_value_l` [rows,H,P+1,hd].
 * Each component is exported by its registered exporter or its own `exportOnnx` hook (`NoOnnxExportError` otherwise).
 */
export function buildOnnxGraphs(model: S2CPNet, options: OnnxWeightOptions = {}): OnnxGraphs {
  const quantize = checkWeightOptions(options);
  registerBuiltinExporters();
  const size = model.inputSize;
  const memoryTokens = memoryTokensOf(model);
  const decoderExporter = exporterFor('captionDecoder', model.captionDecoder) as CaptionDecoderExporter;
  const described = decoderExporter.describe(model.captionDecoder);
  const { numLayers, numHeads, headDim, vocabSize } = described;

  // Graph (a): both views through the shared backbone (one pass over the views stacked on the batch axis), the
  // enhancers, the fusion, the category head and the decoder's memory keys/values.
  const encoder = new OnnxGraph('s2cpnet-encoder');
  const images = encoder.input(IO.images, 'float32', ['batch', size, size, 3]);
  const masks = model.config.useMaskView ? encoder.input(IO.masks, 'float32', ['batch', size, size, 3]) : null;
  const backbone = exporterFor('encoder', model.encoder);
  let imageFeatures: Value;
  let maskFeatures: Value | null = null;
  if (masks) {
    const both = encoder.scope('encoder', () => backbone(encoder, model.encoder, encoder.concat([images, masks], 0)));
    // split the stacked views back: the first half of the batch is the images
    const half = encoder.op('Div', [encoder.op('Gather', [encoder.op('Shape', [images]), encoder.int64(0)], { axis: 0 }), encoder.int64(1)]);
    const halfVec = encoder.unsqueeze(half, [0]);
    [imageFeatures, maskFeatures] = encoder.opN('Split', [both, encoder.concat([halfVec, halfVec], 0)], 2, { axis: 0 });
  } else {
    imageFeatures = encoder.scope('encoder', () => backbone(encoder, model.encoder, images));
  }
  const enhancedImage = model.semanticEnhancer
    ? encoder.scope('semanticEnhancer', () => exporterFor('semanticEnhancer', model.semanticEnhancer)(encoder, model.semanticEnhancer, imageFeatures))
    : imageFeatures;
  const imageChannels = model.semanticEnhancer ? model.semanticEnhancer.outputChannels : model.encoder.outputChannels;
  const imageTokens = encoder.reshape(enhancedImage, [0, -1, imageChannels]);
  let maskTokens: Value | null = null;
  if (maskFeatures) {
    const enhancedMask = model.spatialEnhancer
      ? encoder.scope('spatialEnhancer', () => exporterFor('spatialEnhancer', model.spatialEnhancer)(encoder, model.spatialEnhancer, maskFeatures!))
      : maskFeatures;
    const maskChannels = model.spatialEnhancer ? model.spatialEnhancer.outputChannels : model.encoder.outputChannels;
    maskTokens = encoder.reshape(enhancedMask, [0, -1, maskChannels]);
  }
  const memory = encoder.scope('fusion', () => exporterFor('fusion', model.fusion)(encoder, model.fusion, imageTokens, maskTokens));
  if (model.categoryHead) {
    const logits = encoder.scope('categoryHead', () => exporterFor('categoryHead', model.categoryHead)(encoder, model.categoryHead, memory));
    encoder.output(logits, IO.categoryLogits, 'float32', ['batch', model.numClasses]);
  }
  const kv = encoder.scope('captionDecoder', () => decoderExporter.memoryKeyValues(encoder, model.captionDecoder, memory));
  for (let l = 0; l < numLayers; l++) {
    encoder.output(kv.keys[l]!, IO.memoryKey(l), 'float32', ['batch', numHeads, memoryTokens, headDim]);
    encoder.output(kv.values[l]!, IO.memoryValue(l), 'float32', ['batch', numHeads, memoryTokens, headDim]);
  }

  // Graph (b): one decoding step over the key/value cache.
  const step = new OnnxGraph('s2cpnet-decoder-step');
  const tokens = step.input(IO.tokens, 'int64', ['rows']);
  const position = step.input(IO.position, 'int64', [1]);
  const memoryKeys: Value[] = [];
  const memoryValues: Value[] = [];
  const pastKeys: Value[] = [];
  const pastValues: Value[] = [];
  for (let l = 0; l < numLayers; l++) {
    memoryKeys.push(step.input(IO.memoryKey(l), 'float32', ['rows', numHeads, memoryTokens, headDim]));
    memoryValues.push(step.input(IO.memoryValue(l), 'float32', ['rows', numHeads, memoryTokens, headDim]));
    pastKeys.push(step.input(IO.pastKey(l), 'float32', ['rows', numHeads, 'past', headDim]));
    pastValues.push(step.input(IO.pastValue(l), 'float32', ['rows', numHeads, 'past', headDim]));
  }
  const out = step.scope('captionDecoder', () =>
    decoderExporter.step(step, model.captionDecoder, { tokens, position, memoryKeys, memoryValues, pastKeys, pastValues }),
  );
  step.output(step.op('LogSoftmax', [out.logits], { axis: -1 }), IO.logProbs, 'float32', ['rows', vocabSize]);
  step.output(out.attention, IO.attention, 'float32', ['rows', memoryTokens]);
  for (let l = 0; l < numLayers; l++) {
    step.output(out.presentKeys[l]!, IO.presentKey(l), 'float32', ['rows', numHeads, 'present', headDim]);
    step.output(out.presentValues[l]!, IO.presentValue(l), 'float32', ['rows', numHeads, 'present', headDim]);
  }
  const decoder = { numLayers, numHeads, headDim, vocabSize, maxLength: described.maxLength };
  if (!quantize) return { encoder, decoderStep: step, memoryTokens, decoder };
  const quantization = { encoder: quantizeWeights(encoder, quantize), decoderStep: quantizeWeights(step, quantize) };
  return { encoder, decoderStep: step, memoryTokens, decoder, quantization };
}

/** The checked quantisation settings of `options`, or null for float32 weights. */
function checkWeightOptions(options: OnnxWeightOptions): { groupSize: number; minQuantizedSize: number } | null {
  if (options.quantize === undefined) return null;
  if (options.quantize !== 'uint8') throw new ConfigError('quantize', `expected 'uint8' or no value, found ${JSON.stringify(options.quantize)}`);
  return checkQuantizeOptions(options);
}

function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Exports a loaded checkpoint to an ONNX folder (written whole or not at all): `encoder.onnx`,
 * `decoder-step.onnx`, the checkpoint's `vocabulary.json` and `nouns.json`, and `manifest.json` with the model's
 * settings and every file's sha256. No Python: the graphs are written from TypeScript.
 *
 * @example
 * ```ts
 * const checkpoint = await loadCheckpoint('@s2cpnet/weights-ucm-mobilenet');
 * await exportOnnx(checkpoint, 'ucm-onnx');
 * // 8-bit weights: about a third of the size, the same captions for this checkpoint
 * await exportOnnx(checkpoint, 'ucm-onnx-8bit', { quantize: 'uint8' });
 * ```
 */
export async function exportOnnx(checkpoint: LoadedCheckpoint, outDir: string, options: ExportOnnxOptions = {}): Promise<ExportOnnxResult> {
  const { model } = checkpoint;
  return writeOnnxExport(
    model,
    {
      vocabulary: checkpoint.vocabulary,
      classNames: checkpoint.classNames,
      masks: checkpoint.masks,
      maskSize: model.config.useMaskView ? await recordedMaskSize(checkpoint) : null,
      source: path.basename(checkpoint.dir),
    },
    outDir,
    options,
  );
}

/** What an export folder holds besides the graphs (`exportOnnx` takes it from the checkpoint). */
export interface OnnxExportInfo {
  vocabulary: { toJSON(): unknown };
  classNames: readonly string[];
  /** How the training masks were made (checkpoint.json's `$.masks`), when known. */
  masks?: LoadedCheckpoint['masks'];
  /** The mask working size captioning computes masks at (null without the mask view). */
  maskSize: number | null;
  /** Where the weights came from (a folder's base name, never a path of this machine). */
  source: string;
}

/**
 * Exports an in-memory model (e.g. one being trained, or a benchmark's) to an ONNX folder, like `exportOnnx` does
 * for a loaded checkpoint.
 */
export async function writeOnnxExport(model: S2CPNet, info: OnnxExportInfo, outDir: string, options: ExportOnnxOptions = {}): Promise<ExportOnnxResult> {
  const progress = options.onProgress ?? (() => undefined);
  const graphs = buildOnnxGraphs(model, { quantize: options.quantize, groupSize: options.groupSize, minQuantizedSize: options.minQuantizedSize });
  const quantization = graphs.quantization;
  if (quantization) {
    const { encoder, decoderStep } = quantization;
    const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
    progress(
      `8-bit weights (groups of ${encoder.groupSize}): ${encoder.tensors.length + decoderStep.tensors.length} tensors, ` +
        `${mib(encoder.bytesBefore + decoderStep.bytesBefore)} -> ${mib(encoder.bytesAfter + decoderStep.bytesAfter)} MiB of initializers`,
    );
  }
  const producerVersion = '0.1.0';
  const encoderBytes = graphs.encoder.serialize({ producerVersion, docString: `S²CPNet encoder of ${model.config.name}` });
  progress(`encoder graph: ${graphs.encoder.nodeCount} nodes, ${(encoderBytes.byteLength / 2 ** 20).toFixed(1)} MiB`);
  const stepBytes = graphs.decoderStep.serialize({ producerVersion, docString: `S²CPNet decoder step of ${model.config.name}` });
  progress(`decoder step graph: ${graphs.decoderStep.nodeCount} nodes, ${(stepBytes.byteLength / 2 ** 20).toFixed(1)} MiB`);
  const vocabulary = `${JSON.stringify(info.vocabulary.toJSON())}\n`;
  const nouns = `${JSON.stringify({ classes: info.classNames }, null, 1)}\n`;
  const contents: Record<string, Uint8Array | string> = {
    [ONNX_FILES.encoder]: encoderBytes,
    [ONNX_FILES.decoderStep]: stepBytes,
    [ONNX_FILES.vocabulary]: vocabulary,
    [ONNX_FILES.nouns]: nouns,
  };
  const files: OnnxExportManifest['files'] = {};
  for (const [name, data] of Object.entries(contents)) files[name] = { bytes: typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength, sha256: sha256(data) };
  const manifest: OnnxExportManifest = {
    format: ONNX_EXPORT_FORMAT,
    version: ONNX_EXPORT_VERSION,
    created: new Date().toISOString(),
    name: model.config.name,
    config: model.config,
    inputSize: model.inputSize,
    normalization: model.encoder.normalization === 'symmetric' ? 'mobilenet' : 'resnet',
    useMaskView: model.config.useMaskView,
    maskSize: model.config.useMaskView ? info.maskSize : null,
    masks: info.masks ?? null,
    gridSize: model.gridSize,
    memoryTokens: graphs.memoryTokens,
    numClasses: model.numClasses,
    hasCategoryHead: model.categoryHead !== null,
    decoder: graphs.decoder,
    weights: quantization ? 'uint8' : 'float32',
    ...(quantization
      ? {
          quantization: {
            groupSize: quantization.encoder.groupSize,
            minQuantizedSize: quantization.encoder.minQuantizedSize,
            tensors: quantization.encoder.tensors.length + quantization.decoderStep.tensors.length,
            values: quantization.encoder.values + quantization.decoderStep.values,
          },
        }
      : {}),
    files,
    source: { checkpoint: info.source },
  };
  const dir = path.resolve(outDir);
  await writeDirAtomic(dir, async (tmp) => {
    for (const [name, data] of Object.entries(contents)) await fsp.writeFile(path.join(tmp, name), data);
    await fsp.writeFile(path.join(tmp, ONNX_FILES.manifest), `${JSON.stringify(manifest, null, 1)}\n`);
  });
  progress(`wrote ${dir}`);
  return { dir, manifest };
}
