import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { ConfigError, InputError, ShapeError } from '@s2cpnet/core';
import { resizeBilinear, type LabelMap, type MaskProvider, type RgbImage } from '@s2cpnet/data';
import { loadOnnxRuntimeModule } from './ort-loader';

/**
 * The SAM adapter of spec section 3: a `MaskProvider` that runs a user-supplied Segment Anything encoder/decoder
 * ONNX pair (SAM ViT-B/L/H, MobileSAM, or any model with the same contract) in automatic mode, the way
 * segment-anything's `SamAutomaticMaskGenerator` does with one crop layer:
 *
 * 1. resize the image so its longest side is the encoder's input size S (1024 for SAM and MobileSAM), normalise
 *    with SAM's pixel mean and std and pad to S x S at the bottom and right (or hand the resized RGB to an encoder
 *    exported with its preprocessing inside); run the encoder once;
 * 2. prompt the decoder with a `pointsPerSide` x `pointsPerSide` grid of single positive points (plus the padding
 *    point (0, 0) with label -1 of the ONNX export), in batches when the decoder allows more than one prompt per run;
 * 3. keep a mask when its predicted IoU is above `predictedIouThreshold` and its stability score (computed on the
 *    logits at the image's size, with `stabilityScoreOffset`) is at least `stabilityScoreThreshold`; drop masks
 *    under `minMaskArea` pixels; remove duplicates with greedy box non-maximum suppression at `boxNmsThreshold`,
 *    preferring higher predicted IoU;
 * 4. paint the masks into a label map of the image's size, largest first so smaller targets stay on top; labels
 *    1..n in painting order, 0 where no mask covers.
 *
 * The decoder contract is the one of segment-anything's `scripts/export_onnx_model.py` (`SamOnnxModel`), also used
 * by samexporter and MobileSAM: inputs `image_embeddings` [1,256,64,64], `point_coords` [N,P,2] (in the resized
 * input frame), `point_labels` [N,P], `mask_input` [N,1,256,256], `has_mask_input` [N], `orig_im_size` [2]; outputs
 * `masks` [N,K,H,W] (logits at `orig_im_size`), `iou_predictions` [N,K] and `low_res_masks` [N,K,256,256]. Those
 * exports fix N to 1, so such a decoder runs one point per call whatever `pointsPerBatch` says.
 */

/** SAM's pixel mean, RGB in 0-255 units (`Sam.pixel_mean`). */
export const SAM_PIXEL_MEAN: readonly [number, number, number] = Object.freeze([123.675, 116.28, 103.53]) as readonly [number, number, number];
/** SAM's pixel standard deviation, RGB in 0-255 units (`Sam.pixel_std`). */
export const SAM_PIXEL_STD: readonly [number, number, number] = Object.freeze([58.395, 57.12, 57.375]) as readonly [number, number, number];

/** How the encoder's input is laid out. */
export type SamEncoderInputLayout =
  /** `[1,3,S,S]` float32: normalised with SAM's mean and std, padded to S x S (the plain `image_encoder` export). */
  | 'nchw'
  /**
   * `[H,W,3]` RGB in 0-255 (float32 or uint8), resized so the longest side is S; the model normalises and pads
   * (segment-anything's `ImageEncoderOnnxModel` and samexporter with `--use-preprocess`).
   */
  | 'hwc';

export interface SamMaskProviderOptions {
  /** Path of the image encoder `.onnx` (external weight files, as ViT-H exports have, must sit beside it). */
  encoder: string;
  /** Path of the prompt encoder + mask decoder `.onnx` (`scripts/export_onnx_model.py` of segment-anything). */
  decoder: string;
  /** Points per image side of the prompt grid (`points_per_side`). Default 16 (SAM uses 32; 16 is 4x cheaper on CPU). */
  pointsPerSide?: number;
  /**
   * Prompts per decoder run (`points_per_batch`), for decoders whose prompt dimension N is dynamic; a decoder with a
   * fixed N (the official export: N = 1) runs N prompts at a time. Does not change the result. Default 64.
   */
  pointsPerBatch?: number;
  /** Keep masks whose predicted IoU is above this (`pred_iou_thresh`). Default 0.88. */
  predictedIouThreshold?: number;
  /** Keep masks whose stability score is at least this (`stability_score_thresh`). Default 0.95. */
  stabilityScoreThreshold?: number;
  /** Logit offset of the stability score (`stability_score_offset`). Default 1. */
  stabilityScoreOffset?: number;
  /** Box IoU above which the mask with the lower predicted IoU is removed (`box_nms_thresh`). Default 0.7. */
  boxNmsThreshold?: number;
  /**
   * Masks with fewer pixels than this, at the size of the image given to `labelMap`, are dropped. Default 100, the
   * built-in Felzenszwalb segmenter's `minSize` (0.2% of a 224 x 224 working image).
   */
  minMaskArea?: number;
  /**
   * With a multimask decoder (K = 4 outputs per prompt: the single-mask token 0 and three multimask tokens), `all`
   * keeps each of the three multimask proposals as a candidate, as `SamAutomaticMaskGenerator` does
   * (`multimask_output=True`, then every proposal is filtered on its own); `best` keeps only the proposal with the
   * highest predicted IoU per point (fewer, coarser segments). Token 0 is never used in automatic mode. A decoder
   * exported with `--return-single-mask` (K = 1) has already chosen. Default `all`.
   */
  multimask?: 'all' | 'best';
  /** The encoder's input layout; `auto` reads it from the input's rank (4: `nchw`, 3: `hwc`). Default `auto`. */
  encoderInput?: 'auto' | SamEncoderInputLayout;
  /**
   * Side S of the square frame the encoder works in. Read from an `nchw` encoder's input shape when it is fixed;
   * needed for `hwc` encoders, whose input size is dynamic. Default 1024 (SAM, MobileSAM).
   */
  inputSize?: number;
  /**
   * Which decoder output the masks are read from. `low_res_masks` (the decoder's 256 x 256 logits over the padded
   * input frame, resized here to the image: immune to exports whose `masks` crop was frozen at the export's dummy
   * aspect ratio) or `masks` (logits at `orig_im_size`). `auto` takes `low_res_masks` when the decoder has it.
   */
  maskOutput?: 'auto' | 'low_res_masks' | 'masks';
  /** ONNX Runtime threads per operator, for both sessions. Default: ONNX Runtime's (the number of cores). */
  intraOpNumThreads?: number;
  /**
   * Loads onnxruntime-node. Default `() => import('onnxruntime-node')`; for tests, and for bundlers that need a
   * static import.
   */
  importRuntime?: () => Promise<unknown>;
}

/** The defaults of the settings that change masks (SAM's own, except `pointsPerSide` and `minMaskArea`). */
export const SAM_MASK_PROVIDER_DEFAULTS = Object.freeze({
  pointsPerSide: 16,
  pointsPerBatch: 64,
  predictedIouThreshold: 0.88,
  stabilityScoreThreshold: 0.95,
  stabilityScoreOffset: 1,
  boxNmsThreshold: 0.7,
  minMaskArea: 100,
  multimask: 'all' as 'all' | 'best',
  encoderInput: 'auto' as 'auto' | SamEncoderInputLayout,
  inputSize: 1024,
  maskOutput: 'auto' as 'auto' | 'low_res_masks' | 'masks',
});

/** What was read from the two model files. */
export interface SamModelInfo {
  encoderFile: string;
  decoderFile: string;
  /** sha256 (hex) of each `.onnx` file (external weight files are not included). */
  encoderSha256: string;
  decoderSha256: string;
  encoderInputName: string;
  encoderInputLayout: SamEncoderInputLayout;
  encoderInputType: 'float32' | 'uint8';
  encoderOutputName: string;
  /** Side S of the encoder's square input frame. */
  inputSize: number;
  /** Prompts the decoder takes per run: a fixed number, or `dynamic`. */
  decoderPromptBatch: number | 'dynamic';
  /** Masks per prompt (K), when the decoder's metadata fixes it. */
  masksPerPrompt: number | 'dynamic';
  maskOutput: 'low_res_masks' | 'masks';
}

/** One mask kept by the automatic generator. */
export interface SamMask {
  /** Bounding box `[x0, y0, x1, y1]` in image pixels, inclusive (the mask's first and last column and row). */
  box: [number, number, number, number];
  /** Pixels covered. */
  area: number;
  predictedIou: number;
  stabilityScore: number;
  /** The prompt point, in image pixels. */
  point: [number, number];
  /** 1 where the mask covers, 0 elsewhere, row-major over the box: `(x1 - x0 + 1) * (y1 - y0 + 1)` bytes. */
  mask: Uint8Array;
}

/**
 * The normalised prompt grid of `SamAutomaticMaskGenerator` (`build_point_grid`): `n * n` points `[x, y]` in
 * [0, 1], cell centres `(i + 0.5) / n`, row by row (x varies fastest).
 */
export function samPointGrid(pointsPerSide: number): Array<[number, number]> {
  if (!Number.isInteger(pointsPerSide) || pointsPerSide < 1) {
    throw new ConfigError('$.pointsPerSide', `must be an integer >= 1, found ${String(pointsPerSide)}`);
  }
  const n = pointsPerSide;
  const side = Array.from({ length: n }, (_, i) => (i + 0.5) / n);
  const grid: Array<[number, number]> = [];
  for (let row = 0; row < n; row++) for (let column = 0; column < n; column++) grid.push([side[column]!, side[row]!]);
  return grid;
}

/**
 * The resized size of `ResizeLongestSide.get_preprocess_shape`: the longest side becomes `inputSize`, the other is
 * scaled and rounded half up.
 */
export function samResizedSize(width: number, height: number, inputSize: number): { width: number; height: number } {
  const scale = inputSize / Math.max(width, height);
  return { width: Math.floor(width * scale + 0.5), height: Math.floor(height * scale + 0.5) };
}

// ---------------------------------------------------------------------------------------------------------------
// The slice of onnxruntime-node this file uses, typed structurally so the public types do not need the package.

type TensorData = Float32Array | Uint8Array | Int32Array | BigInt64Array;

interface OrtTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
}

interface OrtValueMetadata {
  readonly name: string;
  readonly isTensor: boolean;
  readonly type?: string;
  readonly shape?: readonly (number | string)[];
}

interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata?: readonly OrtValueMetadata[];
  readonly outputMetadata?: readonly OrtValueMetadata[];
  run(feeds: Record<string, OrtTensor>, fetches?: readonly string[]): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

interface OrtRuntime {
  Tensor: new (type: string, data: TensorData, dims: readonly number[]) => OrtTensor;
  InferenceSession: { create(path: string, options?: Record<string, unknown>): Promise<OrtSession> };
}

function loadRuntime(importer: () => Promise<unknown>): Promise<OrtRuntime> {
  return loadOnnxRuntimeModule<OrtRuntime>(importer, 'the SAM mask provider', '$.masks');
}

// ---------------------------------------------------------------------------------------------------------------
// Options

/** The settings in effect, defaults filled in (`inputSize` is undefined until the encoder is read). */
export interface SamMaskProviderSettings {
  pointsPerSide: number;
  pointsPerBatch: number;
  predictedIouThreshold: number;
  stabilityScoreThreshold: number;
  stabilityScoreOffset: number;
  boxNmsThreshold: number;
  minMaskArea: number;
  multimask: 'all' | 'best';
  encoderInput: 'auto' | SamEncoderInputLayout;
  inputSize: number | undefined;
  maskOutput: 'auto' | 'low_res_masks' | 'masks';
  intraOpNumThreads: number | undefined;
}

function resolveSettings(options: SamMaskProviderOptions): SamMaskProviderSettings {
  if (!options || typeof options !== 'object') throw new ConfigError('$', 'SAM mask provider options must be an object');
  for (const key of ['encoder', 'decoder'] as const) {
    if (typeof options[key] !== 'string' || options[key].length === 0) {
      throw new ConfigError(`$.${key}`, `must be the path of the SAM ${key} .onnx file, found ${JSON.stringify(options[key])}`);
    }
  }
  const d = SAM_MASK_PROVIDER_DEFAULTS;
  const pick = <K extends keyof typeof d>(key: K): (typeof d)[K] => (options[key] ?? d[key]) as (typeof d)[K];
  const settings: SamMaskProviderSettings = {
    pointsPerSide: pick('pointsPerSide'),
    pointsPerBatch: pick('pointsPerBatch'),
    predictedIouThreshold: pick('predictedIouThreshold'),
    stabilityScoreThreshold: pick('stabilityScoreThreshold'),
    stabilityScoreOffset: pick('stabilityScoreOffset'),
    boxNmsThreshold: pick('boxNmsThreshold'),
    minMaskArea: pick('minMaskArea'),
    multimask: pick('multimask'),
    encoderInput: pick('encoderInput'),
    inputSize: options.inputSize,
    maskOutput: pick('maskOutput'),
    intraOpNumThreads: options.intraOpNumThreads,
  };
  const integer = (key: string, value: unknown, min: number) => {
    if (!Number.isInteger(value) || (value as number) < min) throw new ConfigError(`$.${key}`, `must be an integer >= ${min}, found ${String(value)}`);
  };
  const fraction = (key: string, value: unknown) => {
    if (typeof value !== 'number' || !(value >= 0 && value <= 1)) throw new ConfigError(`$.${key}`, `must be a number in [0, 1], found ${String(value)}`);
  };
  integer('pointsPerSide', settings.pointsPerSide, 1);
  integer('pointsPerBatch', settings.pointsPerBatch, 1);
  fraction('predictedIouThreshold', settings.predictedIouThreshold);
  fraction('stabilityScoreThreshold', settings.stabilityScoreThreshold);
  fraction('boxNmsThreshold', settings.boxNmsThreshold);
  if (typeof settings.stabilityScoreOffset !== 'number' || !(settings.stabilityScoreOffset > 0 && Number.isFinite(settings.stabilityScoreOffset))) {
    throw new ConfigError('$.stabilityScoreOffset', `must be a finite number > 0, found ${String(settings.stabilityScoreOffset)}`);
  }
  integer('minMaskArea', settings.minMaskArea, 0);
  if (settings.inputSize !== undefined) integer('inputSize', settings.inputSize, 1);
  if (settings.intraOpNumThreads !== undefined) integer('intraOpNumThreads', settings.intraOpNumThreads, 1);
  const oneOf = (key: string, value: unknown, valid: readonly string[]) => {
    if (!valid.includes(value as string)) {
      throw new ConfigError(`$.${key}`, `must be one of ${valid.map((v) => JSON.stringify(v)).join(', ')}, found ${JSON.stringify(value)}`);
    }
  };
  oneOf('multimask', settings.multimask, ['all', 'best']);
  oneOf('encoderInput', settings.encoderInput, ['auto', 'nchw', 'hwc']);
  oneOf('maskOutput', settings.maskOutput, ['auto', 'low_res_masks', 'masks']);
  return settings;
}

// ---------------------------------------------------------------------------------------------------------------
// Model signatures

function describeShape(shape: readonly (number | string)[] | undefined): string {
  return shape ? `[${shape.map((d) => (typeof d === 'number' && d >= 0 ? String(d) : String(d || '?'))).join(',')}]` : '[?]';
}

function fixedDim(dim: number | string | undefined): number | undefined {
  return typeof dim === 'number' && dim > 0 ? dim : undefined;
}

function metadataOf(list: readonly OrtValueMetadata[] | undefined, name: string): OrtValueMetadata | undefined {
  return list?.find((m) => m.name === name);
}

/** A shape of `[]` in ONNX Runtime's metadata means "not declared": ranks are only checked when one is declared. */
function declaredRank(meta: OrtValueMetadata | undefined): number | undefined {
  return meta?.shape && meta.shape.length > 0 ? meta.shape.length : undefined;
}

interface DecoderInputSpec {
  name: string;
  rank: number;
  types: readonly string[];
  expected: string;
}

const DECODER_INPUTS: readonly DecoderInputSpec[] = [
  { name: 'image_embeddings', rank: 4, types: ['float32'], expected: '[1,256,64,64] float32' },
  { name: 'point_coords', rank: 3, types: ['float32'], expected: '[N,P,2] float32' },
  { name: 'point_labels', rank: 2, types: ['float32', 'int64', 'int32'], expected: '[N,P] float32' },
  { name: 'mask_input', rank: 4, types: ['float32'], expected: '[N,1,256,256] float32' },
  { name: 'has_mask_input', rank: 1, types: ['float32', 'int64', 'int32'], expected: '[N] float32' },
  { name: 'orig_im_size', rank: 1, types: ['float32', 'int64', 'int32'], expected: '[2] float32' },
];

interface DecoderSignature {
  promptBatch: number | 'dynamic';
  maskInputBatch: number | 'dynamic';
  maskInputSize: [number, number] | undefined;
  pointLabelsType: string;
  hasMaskInputType: string;
  origImSizeType: string;
  masksPerPrompt: number | 'dynamic';
  maskOutput: 'low_res_masks' | 'masks';
}

function checkDecoder(session: OrtSession, file: string, settings: SamMaskProviderSettings): DecoderSignature {
  const found = session.inputNames.join(', ') || 'none';
  const expectedNames = DECODER_INPUTS.map((s) => s.name).join(', ');
  for (const spec of DECODER_INPUTS) {
    if (!session.inputNames.includes(spec.name)) {
      throw new InputError(
        `not a SAM decoder of the segment-anything ONNX export: input '${spec.name}' ${spec.expected} is missing ` +
          `(expected inputs ${expectedNames}; found ${found})`,
        { file },
      );
    }
    const meta = metadataOf(session.inputMetadata, spec.name);
    const rank = declaredRank(meta);
    if (rank !== undefined && rank !== spec.rank) {
      throw new InputError(`SAM decoder input '${spec.name}': expected rank ${spec.rank} ${spec.expected}, found rank ${rank} ${describeShape(meta?.shape)}`, { file });
    }
    if (meta?.type && !spec.types.includes(meta.type)) {
      throw new InputError(`SAM decoder input '${spec.name}': expected ${spec.types.join(' or ')}, found ${meta.type} ${describeShape(meta.shape)}`, { file });
    }
  }
  const extra = session.inputNames.filter((name) => !DECODER_INPUTS.some((s) => s.name === name));
  if (extra.length > 0) {
    throw new InputError(`SAM decoder has inputs this adapter cannot feed: ${extra.join(', ')} (expected exactly ${expectedNames})`, { file });
  }
  const coords = metadataOf(session.inputMetadata, 'point_coords');
  if (coords?.shape && coords.shape.length === 3 && fixedDim(coords.shape[2]) !== undefined && coords.shape[2] !== 2) {
    throw new InputError(`SAM decoder input 'point_coords': expected [N,P,2], found ${describeShape(coords.shape)}`, { file });
  }
  const outputs = session.outputNames;
  const outputRank = (name: string) => declaredRank(metadataOf(session.outputMetadata, name));
  if (!outputs.includes('iou_predictions')) {
    throw new InputError(`SAM decoder output 'iou_predictions' [N,K] is missing (found outputs ${outputs.join(', ') || 'none'})`, { file });
  }
  const iouRank = outputRank('iou_predictions');
  if (iouRank !== undefined && iouRank !== 2) {
    throw new InputError(`SAM decoder output 'iou_predictions': expected rank 2 [N,K], found rank ${iouRank}`, { file });
  }
  const usable = (name: 'low_res_masks' | 'masks') => outputs.includes(name) && (outputRank(name) ?? 4) === 4;
  let maskOutput: 'low_res_masks' | 'masks';
  if (settings.maskOutput === 'auto') {
    if (usable('low_res_masks')) maskOutput = 'low_res_masks';
    else if (usable('masks')) maskOutput = 'masks';
    else {
      throw new InputError(
        `SAM decoder has no mask output of rank 4: expected 'low_res_masks' [N,K,256,256] or 'masks' [N,K,H,W] ` +
          `(found ${outputs.map((n) => `${n} rank ${outputRank(n) ?? '?'}`).join(', ')})`,
        { file },
      );
    }
  } else {
    maskOutput = settings.maskOutput;
    if (!outputs.includes(maskOutput)) {
      throw new InputError(`SAM decoder output '${maskOutput}' (maskOutput option) is missing (found outputs ${outputs.join(', ')})`, { file });
    }
    const rank = outputRank(maskOutput);
    if (rank !== undefined && rank !== 4) throw new InputError(`SAM decoder output '${maskOutput}': expected rank 4 [N,K,H,W], found rank ${rank}`, { file });
  }
  const maskInput = metadataOf(session.inputMetadata, 'mask_input');
  const maskH = fixedDim(maskInput?.shape?.[2]);
  const maskW = fixedDim(maskInput?.shape?.[3]);
  const iouShape = metadataOf(session.outputMetadata, 'iou_predictions')?.shape;
  const typeOf = (name: string) => metadataOf(session.inputMetadata, name)?.type ?? 'float32';
  return {
    promptBatch: fixedDim(coords?.shape?.[0]) ?? 'dynamic',
    maskInputBatch: fixedDim(maskInput?.shape?.[0]) ?? 'dynamic',
    maskInputSize: maskH && maskW ? [maskH, maskW] : undefined,
    pointLabelsType: typeOf('point_labels'),
    hasMaskInputType: typeOf('has_mask_input'),
    origImSizeType: typeOf('orig_im_size'),
    masksPerPrompt: fixedDim(iouShape?.[1]) ?? 'dynamic',
    maskOutput,
  };
}

interface EncoderSignature {
  inputName: string;
  layout: SamEncoderInputLayout;
  inputType: 'float32' | 'uint8';
  outputName: string;
  inputSize: number;
}

function checkEncoder(session: OrtSession, file: string, settings: SamMaskProviderSettings): EncoderSignature {
  if (session.inputNames.length !== 1) {
    throw new InputError(
      `a SAM image encoder takes one input (the image, e.g. 'input_image' or 'images'); found ${session.inputNames.length}: ${session.inputNames.join(', ') || 'none'}`,
      { file },
    );
  }
  const inputName = session.inputNames[0]!;
  const meta = metadataOf(session.inputMetadata, inputName);
  const rank = declaredRank(meta);
  const shape = describeShape(meta?.shape);
  const expected = "rank 4 [1,3,S,S] float32 (normalised, padded; encoderInput 'nchw') or rank 3 [H,W,3] float32/uint8 (RGB 0-255, the model normalises and pads; encoderInput 'hwc')";
  let layout: SamEncoderInputLayout;
  if (settings.encoderInput === 'auto') {
    if (rank === 4) layout = 'nchw';
    else if (rank === 3) layout = 'hwc';
    else if (rank === undefined) throw new InputError(`SAM encoder input '${inputName}' declares no shape; set the encoderInput option ('nchw' or 'hwc')`, { file });
    else throw new InputError(`SAM encoder input '${inputName}': expected ${expected}, found rank ${rank} ${shape}`, { file });
  } else {
    layout = settings.encoderInput;
    const want = layout === 'nchw' ? 4 : 3;
    if (rank !== undefined && rank !== want) {
      throw new InputError(`SAM encoder input '${inputName}': encoderInput '${layout}' expects rank ${want}, found rank ${rank} ${shape}`, { file });
    }
  }
  const type = meta?.type ?? 'float32';
  const types = layout === 'nchw' ? ['float32'] : ['float32', 'uint8'];
  if (!types.includes(type)) {
    throw new InputError(`SAM encoder input '${inputName}': expected ${types.join(' or ')} for layout '${layout}', found ${type} ${shape}`, { file });
  }
  const dims = meta?.shape ?? [];
  const channelDim = layout === 'nchw' ? dims[1] : dims[2];
  if (fixedDim(channelDim) !== undefined && channelDim !== 3) {
    throw new InputError(`SAM encoder input '${inputName}': expected 3 colour channels (${expected}), found ${shape}`, { file });
  }
  let inputSize = settings.inputSize ?? SAM_MASK_PROVIDER_DEFAULTS.inputSize;
  if (layout === 'nchw') {
    const h = fixedDim(dims[2]);
    const w = fixedDim(dims[3]);
    if (h !== undefined && w !== undefined) {
      if (h !== w) throw new InputError(`SAM encoder input '${inputName}': expected a square [1,3,S,S] frame, found ${shape}`, { file });
      if (settings.inputSize !== undefined && settings.inputSize !== h) {
        throw new ConfigError('$.inputSize', `is ${settings.inputSize}, but the encoder ${file} takes ${shape} (S = ${h})`);
      }
      inputSize = h;
    }
  }
  const outputName = ['image_embeddings', 'embeddings'].find((n) => session.outputNames.includes(n)) ?? session.outputNames[0];
  if (!outputName) throw new InputError('SAM encoder has no outputs', { file });
  const outMeta = metadataOf(session.outputMetadata, outputName);
  const outRank = declaredRank(outMeta);
  if (outRank !== undefined && outRank !== 4) {
    throw new InputError(`SAM encoder output '${outputName}': expected rank 4 [1,256,64,64] image embeddings, found rank ${outRank} ${describeShape(outMeta?.shape)}`, { file });
  }
  return { inputName, layout, inputType: type as 'float32' | 'uint8', outputName, inputSize };
}

function checkPair(encoder: OrtSession, encoderFile: string, encoderOutput: string, decoder: OrtSession, decoderFile: string): void {
  const produced = metadataOf(encoder.outputMetadata, encoderOutput)?.shape;
  const consumed = metadataOf(decoder.inputMetadata, 'image_embeddings')?.shape;
  if (!produced || !consumed || produced.length !== 4 || consumed.length !== 4) return;
  for (let axis = 1; axis < 4; axis++) {
    const a = fixedDim(produced[axis]);
    const b = fixedDim(consumed[axis]);
    if (a !== undefined && b !== undefined && a !== b) {
      throw new InputError(
        `the encoder and decoder do not belong together: ${encoderFile} output '${encoderOutput}' is ${describeShape(produced)}, ` +
          `but ${decoderFile} input 'image_embeddings' expects ${describeShape(consumed)}`,
        { file: decoderFile },
      );
    }
  }
}

async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve());
  });
  return hash.digest('hex');
}

async function openSession(runtime: OrtRuntime, file: string, role: string, settings: SamMaskProviderSettings): Promise<OrtSession> {
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new Error('not a file');
  } catch (error) {
    throw new InputError(`the SAM ${role} model file does not exist or is not a file`, { file, cause: error });
  }
  try {
    return await runtime.InferenceSession.create(file, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      interOpNumThreads: 1,
      // Errors only: exports of SAM trigger harmless shape-merge and initializer warnings on every load.
      logSeverityLevel: 3,
      ...(settings.intraOpNumThreads !== undefined ? { intraOpNumThreads: settings.intraOpNumThreads } : {}),
    });
  } catch (error) {
    throw new InputError(`ONNX Runtime could not load the SAM ${role}: ${String((error as Error).message ?? error).split('\n')[0]}`, { file, cause: error });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Mask post-processing

/** Bilinear taps (half-pixel centres, clamped, as `F.interpolate(..., align_corners=False)`) from `size` samples to `out`. */
interface Taps {
  i0: Int32Array;
  i1: Int32Array;
  weight: Float32Array;
}

function bilinearTaps(out: number, size: number, scale: number): Taps {
  const i0 = new Int32Array(out);
  const i1 = new Int32Array(out);
  const weight = new Float32Array(out);
  for (let i = 0; i < out; i++) {
    const s = Math.min(Math.max((i + 0.5) * scale - 0.5, 0), size - 1);
    const lo = Math.floor(s);
    i0[i] = lo;
    i1[i] = Math.min(lo + 1, size - 1);
    weight[i] = s - lo;
  }
  return { i0, i1, weight };
}

interface Candidate extends SamMask {
  order: number;
}

/**
 * Resamples one mask's logits to the image, computes its stability score (`calculate_stability_score`: pixels above
 * +offset over pixels above -offset, threshold 0), area and box, and returns the candidate or `undefined` when it is
 * unstable or too small.
 */
function evaluateMask(
  logits: Float32Array,
  offset: number,
  sourceWidth: number,
  xTaps: Taps,
  yTaps: Taps,
  width: number,
  height: number,
  scratch: Float32Array,
  settings: SamMaskProviderSettings,
): Omit<Candidate, 'predictedIou' | 'point' | 'order'> | undefined {
  const stabilityOffset = settings.stabilityScoreOffset;
  let above = 0;
  let aboveLow = 0;
  let area = 0;
  let x0 = width;
  let y0 = height;
  let x1 = -1;
  let y1 = -1;
  const { i0: xi0, i1: xi1, weight: wx } = xTaps;
  for (let y = 0; y < height; y++) {
    const row0 = offset + yTaps.i0[y]! * sourceWidth;
    const row1 = offset + yTaps.i1[y]! * sourceWidth;
    const wy = yTaps.weight[y]!;
    const out = y * width;
    let rowHit = false;
    for (let x = 0; x < width; x++) {
      const a = xi0[x]!;
      const b = xi1[x]!;
      const t = wx[x]!;
      const top = logits[row0 + a]! + (logits[row0 + b]! - logits[row0 + a]!) * t;
      const bottom = logits[row1 + a]! + (logits[row1 + b]! - logits[row1 + a]!) * t;
      const value = top + (bottom - top) * wy;
      scratch[out + x] = value;
      if (value > -stabilityOffset) {
        aboveLow++;
        if (value > stabilityOffset) above++;
        if (value > 0) {
          area++;
          rowHit = true;
          if (x < x0) x0 = x;
          if (x > x1) x1 = x;
        }
      }
    }
    if (rowHit) {
      if (y < y0) y0 = y;
      y1 = y;
    }
  }
  const stabilityScore = aboveLow > 0 ? above / aboveLow : 0;
  if (!(stabilityScore >= settings.stabilityScoreThreshold)) return undefined;
  if (area === 0 || area < settings.minMaskArea) return undefined;
  const boxWidth = x1 - x0 + 1;
  const mask = new Uint8Array(boxWidth * (y1 - y0 + 1));
  for (let y = y0; y <= y1; y++) {
    const from = y * width;
    const to = (y - y0) * boxWidth - x0;
    for (let x = x0; x <= x1; x++) if (scratch[from + x]! > 0) mask[to + x] = 1;
  }
  return { box: [x0, y0, x1, y1], area, stabilityScore, mask };
}

/** Box IoU as torchvision's `box_iou` on `batched_mask_to_box` boxes (inclusive corners, area = dx * dy). */
function boxIou(a: readonly number[], b: readonly number[]): number {
  const areaA = (a[2]! - a[0]!) * (a[3]! - a[1]!);
  const areaB = (b[2]! - b[0]!) * (b[3]! - b[1]!);
  const w = Math.max(0, Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!));
  const h = Math.max(0, Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!));
  const intersection = w * h;
  const union = areaA + areaB - intersection;
  return union > 0 ? intersection / union : 0;
}

/** Greedy NMS by predicted IoU (ties: candidate order, so results do not depend on batching). */
function nonMaximumSuppression(candidates: Candidate[], threshold: number): Candidate[] {
  const sorted = [...candidates].sort((p, q) => q.predictedIou - p.predictedIou || p.order - q.order);
  const kept: Candidate[] = [];
  for (const candidate of sorted) {
    if (kept.every((k) => boxIou(k.box, candidate.box) <= threshold)) kept.push(candidate);
  }
  return kept;
}

/**
 * Paints masks (already sorted largest first) into a label map; labels follow painting order, and a mask that
 * smaller ones hide completely gets no label, so labels are 1..n without gaps.
 */
function paintLabelMap(masks: readonly SamMask[], width: number, height: number): LabelMap {
  const labels = new Int32Array(width * height);
  masks.forEach((m, index) => {
    const [x0, y0, x1, y1] = m.box;
    const boxWidth = x1 - x0 + 1;
    for (let y = y0; y <= y1; y++) {
      const from = (y - y0) * boxWidth;
      const to = y * width;
      for (let x = x0; x <= x1; x++) if (m.mask[from + x - x0]) labels[to + x] = index + 1;
    }
  });
  const visible = new Int32Array(masks.length + 1);
  for (let p = 0; p < labels.length; p++) visible[labels[p]!] = 1;
  const remap = new Int32Array(masks.length + 1);
  let next = 0;
  for (let label = 1; label <= masks.length; label++) if (visible[label]) remap[label] = ++next;
  for (let p = 0; p < labels.length; p++) labels[p] = remap[labels[p]!]!;
  return { width, height, labels };
}

// ---------------------------------------------------------------------------------------------------------------

function tensorOf(runtime: OrtRuntime, type: string, values: ArrayLike<number>, dims: number[]): OrtTensor {
  switch (type) {
    case 'int64':
      return new runtime.Tensor('int64', BigInt64Array.from(Array.from(values, (v) => BigInt(Math.round(v)))), dims);
    case 'int32':
      return new runtime.Tensor('int32', Int32Array.from(values, (v) => Math.round(v)), dims);
    default:
      return new runtime.Tensor('float32', values instanceof Float32Array ? values : Float32Array.from(values), dims);
  }
}

function floatData(tensor: OrtTensor, what: string): Float32Array {
  if (!(tensor.data instanceof Float32Array)) throw new ShapeError('SamMaskProvider', what, `must be float32, found ${tensor.type}`);
  return tensor.data;
}

/**
 * A `MaskProvider` backed by a SAM-class encoder/decoder ONNX pair in automatic mode (see the file comment for the
 * steps and the decoder contract). Create it with `createSamMaskProvider`; call `dispose()` when done.
 *
 * @example
 * ```ts
 * const sam = await createSamMaskProvider({ encoder: 'mobile_sam.encoder.onnx', decoder: 'mobile_sam.decoder.onnx' });
 * const labels = await sam.labelMap(image, 'images/1.tif');
 * const maskView = renderMaskView(image, labels);
 * await sam.dispose();
 * ```
 */
export class SamMaskProvider implements MaskProvider {
  readonly name = 'sam';
  readonly cacheKey: string;
  /** What was read from the model files. */
  readonly models: Readonly<SamModelInfo>;
  /** The settings in effect (defaults filled in). */
  readonly settings: Readonly<Omit<SamMaskProviderSettings, 'inputSize'> & { inputSize: number }>;

  private readonly runtime: OrtRuntime;
  private readonly encoder: OrtSession;
  private readonly decoder: OrtSession;
  private readonly decoderSignature: DecoderSignature;
  private readonly encoderSignature: EncoderSignature;
  private disposed = false;

  private constructor(parts: {
    runtime: OrtRuntime;
    encoder: OrtSession;
    decoder: OrtSession;
    encoderSignature: EncoderSignature;
    decoderSignature: DecoderSignature;
    settings: SamMaskProviderSettings;
    models: SamModelInfo;
  }) {
    this.runtime = parts.runtime;
    this.encoder = parts.encoder;
    this.decoder = parts.decoder;
    this.encoderSignature = parts.encoderSignature;
    this.decoderSignature = parts.decoderSignature;
    this.settings = Object.freeze({ ...parts.settings, inputSize: parts.encoderSignature.inputSize });
    this.models = Object.freeze(parts.models);
    const s = this.settings;
    const number = (value: number) => String(value).replace(/[^0-9.e-]/g, '');
    this.cacheKey = [
      'sam',
      `enc${parts.models.encoderSha256.slice(0, 12)}`,
      `dec${parts.models.decoderSha256.slice(0, 12)}`,
      `in${s.inputSize}`,
      `p${s.pointsPerSide}`,
      `iou${number(s.predictedIouThreshold)}`,
      `stab${number(s.stabilityScoreThreshold)}`,
      `off${number(s.stabilityScoreOffset)}`,
      `nms${number(s.boxNmsThreshold)}`,
      `min${s.minMaskArea}`,
      s.multimask,
      parts.decoderSignature.maskOutput === 'low_res_masks' ? 'lowres' : 'full',
    ].join('-');
  }

  /** Loads and checks both models; see `createSamMaskProvider`. */
  static async create(options: SamMaskProviderOptions): Promise<SamMaskProvider> {
    const settings = resolveSettings(options);
    const runtime = await loadRuntime(options.importRuntime ?? (() => import('onnxruntime-node')));
    const encoder = await openSession(runtime, options.encoder, 'encoder', settings);
    let decoder: OrtSession | undefined;
    try {
      decoder = await openSession(runtime, options.decoder, 'decoder', settings);
      // The cache key follows the files' content, so replacing a model at the same path invalidates cached masks.
      const [encoderSha256, decoderSha256] = await Promise.all([sha256OfFile(options.encoder), sha256OfFile(options.decoder)]);
      const encoderSignature = checkEncoder(encoder, options.encoder, settings);
      const decoderSignature = checkDecoder(decoder, options.decoder, settings);
      checkPair(encoder, options.encoder, encoderSignature.outputName, decoder, options.decoder);
      return new SamMaskProvider({
        runtime,
        encoder,
        decoder,
        encoderSignature,
        decoderSignature,
        settings,
        models: {
          encoderFile: options.encoder,
          decoderFile: options.decoder,
          encoderSha256,
          decoderSha256,
          encoderInputName: encoderSignature.inputName,
          encoderInputLayout: encoderSignature.layout,
          encoderInputType: encoderSignature.inputType,
          encoderOutputName: encoderSignature.outputName,
          inputSize: encoderSignature.inputSize,
          decoderPromptBatch: decoderSignature.promptBatch,
          masksPerPrompt: decoderSignature.masksPerPrompt,
          maskOutput: decoderSignature.maskOutput,
        },
      });
    } catch (error) {
      await encoder.release().catch(() => undefined);
      await decoder?.release().catch(() => undefined);
      throw error;
    }
  }

  /** Segments `image` into a label map of its size: SAM's automatic masks, largest painted first; 0 = background. */
  async labelMap(image: RgbImage, _imageFile?: string): Promise<LabelMap> {
    const masks = await this.generateMasks(image);
    return paintLabelMap(masks, image.width, image.height);
  }

  /** The masks automatic mode keeps for `image`, largest first (the order `labelMap` paints them in). */
  async generateMasks(image: RgbImage): Promise<SamMask[]> {
    if (this.disposed) throw new ConfigError('$.masks', 'this SamMaskProvider was disposed');
    checkImage(image);
    const { width, height } = image;
    if (width === 0 || height === 0) return [];
    const settings = this.settings;
    const inputSize = this.encoderSignature.inputSize;
    const resized = samResizedSize(width, height, inputSize);
    const embeddings = await this.encode(image, resized);

    const grid = samPointGrid(settings.pointsPerSide);
    // Points in image pixels, and in the resized input frame as `ResizeLongestSide.apply_coords` maps them.
    const points = grid.map(([gx, gy]) => [gx * width, gy * height] as [number, number]);
    const scaleX = resized.width / width;
    const scaleY = resized.height / height;

    const signature = this.decoderSignature;
    const batch = signature.promptBatch === 'dynamic' ? Math.min(settings.pointsPerBatch, points.length) : signature.promptBatch;
    const embeddingDims = embeddings.dims;
    const maskInputSize = signature.maskInputSize ?? [4 * (embeddingDims[2] ?? 64), 4 * (embeddingDims[3] ?? 64)];
    const maskInputCount = signature.maskInputBatch === 'dynamic' ? batch : signature.maskInputBatch;
    const maskInput = new this.runtime.Tensor('float32', new Float32Array(maskInputCount * maskInputSize[0] * maskInputSize[1]), [maskInputCount, 1, ...maskInputSize]);
    const hasMaskInput = tensorOf(this.runtime, signature.hasMaskInputType, new Float32Array(maskInputCount), [maskInputCount]);
    const origImSize = tensorOf(this.runtime, signature.origImSizeType, [height, width], [2]);
    const scratch = new Float32Array(width * height);
    let tapCache: { key: string; x: Taps; y: Taps } | undefined;

    const candidates: Candidate[] = [];
    for (let start = 0; start < points.length; start += batch) {
      const count = Math.min(batch, points.length - start);
      // A fixed-size batch is filled up by repeating the last point; the repeats' results are ignored.
      const coords = new Float32Array(batch * 4);
      const labels = new Float32Array(batch * 2);
      for (let i = 0; i < batch; i++) {
        const [px, py] = points[start + Math.min(i, count - 1)]!;
        coords[4 * i] = px * scaleX;
        coords[4 * i + 1] = py * scaleY;
        labels[2 * i] = 1;
        labels[2 * i + 1] = -1;
      }
      const outputs = await this.decoder.run(
        {
          image_embeddings: embeddings,
          point_coords: new this.runtime.Tensor('float32', coords, [batch, 2, 2]),
          point_labels: tensorOf(this.runtime, signature.pointLabelsType, labels, [batch, 2]),
          mask_input: maskInput,
          has_mask_input: hasMaskInput,
          orig_im_size: origImSize,
        },
        ['iou_predictions', signature.maskOutput],
      );
      const iouTensor = outputs.iou_predictions!;
      const maskTensor = outputs[signature.maskOutput]!;
      const iou = floatData(iouTensor, 'iou_predictions');
      const logits = floatData(maskTensor, signature.maskOutput);
      const [n, k, sourceHeight, sourceWidth] = maskTensor.dims as [number, number, number, number];
      if (maskTensor.dims.length !== 4 || n < count || iouTensor.dims[0] !== n || iouTensor.dims[1] !== k) {
        throw new ShapeError(
          'SamMaskProvider',
          signature.maskOutput,
          `must be [N,K,H,W] with iou_predictions [N,K] for ${batch} prompts; found ${describeShape(maskTensor.dims)} and iou_predictions ${describeShape(iouTensor.dims)} (decoder ${this.models.decoderFile})`,
        );
      }
      const key = `${sourceWidth}x${sourceHeight}`;
      if (!tapCache || tapCache.key !== key) {
        // low_res_masks cover the padded S x S input frame; masks cover the image (resampled if their size differs).
        const lowRes = signature.maskOutput === 'low_res_masks';
        const xScale = lowRes ? (resized.width / width) * (sourceWidth / inputSize) : sourceWidth / width;
        const yScale = lowRes ? (resized.height / height) * (sourceHeight / inputSize) : sourceHeight / height;
        tapCache = { key, x: bilinearTaps(width, sourceWidth, xScale), y: bilinearTaps(height, sourceHeight, yScale) };
      }
      // Multimask decoders (K = 4) put the single-mask token first; automatic mode uses tokens 1..3.
      const firstToken = k === 4 ? 1 : 0;
      for (let i = 0; i < count; i++) {
        let tokens: number[] = [];
        for (let t = firstToken; t < k; t++) tokens.push(t);
        if (settings.multimask === 'best' && tokens.length > 1) {
          tokens = [tokens.reduce((best, t) => (iou[i * k + t]! > iou[i * k + best]! ? t : best), tokens[0]!)];
        }
        for (const t of tokens) {
          const predictedIou = iou[i * k + t]!;
          if (!(predictedIou > settings.predictedIouThreshold)) continue;
          const offset = (i * k + t) * sourceWidth * sourceHeight;
          const evaluated = evaluateMask(logits, offset, sourceWidth, tapCache.x, tapCache.y, width, height, scratch, settings);
          if (evaluated) candidates.push({ ...evaluated, predictedIou, point: points[start + i]!, order: candidates.length });
        }
      }
    }
    const kept = nonMaximumSuppression(candidates, settings.boxNmsThreshold);
    kept.sort((p, q) => q.area - p.area || p.order - q.order);
    return kept.map(({ order: _order, ...mask }) => mask);
  }

  /** Releases both ONNX Runtime sessions. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.all([this.encoder.release(), this.decoder.release()]);
  }

  private async encode(image: RgbImage, resized: { width: number; height: number }): Promise<OrtTensor> {
    const { inputName, layout, inputType, outputName, inputSize } = this.encoderSignature;
    const scaled = resizeBilinear(image, resized.width, resized.height);
    const pixels = resized.width * resized.height;
    let input: OrtTensor;
    if (layout === 'nchw') {
      // Normalised planes, zero padding at the bottom and right (SAM pads after normalising).
      const data = new Float32Array(3 * inputSize * inputSize);
      const plane = inputSize * inputSize;
      const src = scaled.data;
      for (let y = 0; y < resized.height; y++) {
        for (let x = 0; x < resized.width; x++) {
          const p = 3 * (y * resized.width + x);
          const q = y * inputSize + x;
          for (let c = 0; c < 3; c++) data[c * plane + q] = (src[p + c]! - SAM_PIXEL_MEAN[c]) / SAM_PIXEL_STD[c];
        }
      }
      input = new this.runtime.Tensor('float32', data, [1, 3, inputSize, inputSize]);
    } else if (inputType === 'uint8') {
      input = new this.runtime.Tensor('uint8', Uint8Array.from(scaled.data.subarray(0, 3 * pixels)), [resized.height, resized.width, 3]);
    } else {
      input = new this.runtime.Tensor('float32', Float32Array.from(scaled.data.subarray(0, 3 * pixels)), [resized.height, resized.width, 3]);
    }
    const outputs = await this.encoder.run({ [inputName]: input }, [outputName]);
    const embeddings = outputs[outputName]!;
    if (embeddings.dims.length !== 4 || embeddings.type !== 'float32') {
      throw new ShapeError('SamMaskProvider', outputName, `must be float32 [1,C,h,w] image embeddings, found ${embeddings.type} ${describeShape(embeddings.dims)} (encoder ${this.models.encoderFile})`);
    }
    return embeddings;
  }
}

function checkImage(image: RgbImage): void {
  const { width, height, data } = image ?? ({} as RgbImage);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0 || !(data instanceof Uint8Array)) {
    throw new ShapeError('SamMaskProvider', 'image', `must be an RgbImage with integer width and height >= 0, found ${String(width)} x ${String(height)}`);
  }
  if (data.length !== width * height * 3) {
    throw new ShapeError('SamMaskProvider', 'image', `must hold ${width * height * 3} bytes (${width}x${height} RGB), found ${data.length}`);
  }
}

/**
 * Loads a SAM-class encoder/decoder ONNX pair with onnxruntime-node (an optional peer dependency, imported on first
 * use) and returns the automatic-mode `MaskProvider`. Checks both models' inputs and outputs against the SAM ONNX
 * contract and throws an `InputError` naming the file, the input, what was expected and what was found.
 *
 * @example
 * ```ts
 * const provider = await createSamMaskProvider({
 *   encoder: 'models/mobile_sam.encoder.onnx',
 *   decoder: 'models/mobile_sam.decoder.onnx',
 *   pointsPerSide: 16,
 *   intraOpNumThreads: 4,
 * });
 * const view = await computeMaskView(image, 'images/1.tif', provider, { size: 224 });
 * await provider.dispose();
 * ```
 */
export function createSamMaskProvider(options: SamMaskProviderOptions): Promise<SamMaskProvider> {
  return SamMaskProvider.create(options);
}
