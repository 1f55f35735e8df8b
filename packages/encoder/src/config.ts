import { ConfigError } from '@s2cpnet/core';

/**
 * Output grid policy. `'native'` keeps the backbone's stride-32 grid (7x7 at 224, 14x14 at 448). A number G asks for
 * a G x G grid: when G is a multiple of the native side the grid is upsampled by nearest-neighbour replication, when
 * the native side is a multiple of G it is average-pooled; other values are rejected.
 */
export type GridPolicy = 'native' | number;

/**
 * Which parts of the backbone are frozen: their weights are not trainable and their batch norms always run in
 * inference mode (moving statistics), even in a training call.
 * - `none`: everything trains;
 * - `stem-stage1`: the stem and the first stage (everything at output stride <= 4) are frozen, the rest trains
 *   (the spec's default for fine-tuning);
 * - `all`: the whole backbone is frozen (features can then be cached).
 */
export type FreezePolicy = 'none' | 'stem-stage1' | 'all';

/**
 * How raw pixels (0..255, RGB) are normalised before `encode`, matching the convention of the pretrained weights:
 * - `imagenet-mean-std`: RGB / 255, minus ImageNet mean, divided by std (torchvision; the spec's ResNet default);
 * - `caffe-bgr-mean`: RGB -> BGR, minus the ImageNet BGR mean, no scaling (Keras' ResNet50 weights);
 * - `symmetric`: x / 127.5 - 1 (Keras/TF MobileNet weights).
 */
export type PixelNormalization = 'imagenet-mean-std' | 'caffe-bgr-mean' | 'symmetric';

/** Fields shared by every encoder config. */
export interface EncoderConfigBase {
  /** Side of the square input image. Multiple of 32. Default 224. */
  inputSize?: number;
  /** Output grid policy. Default 14 (the paper's grid). */
  grid?: GridPolicy;
  /** Default `none`. */
  freeze?: FreezePolicy;
  /**
   * Partial fine-tuning: the first backbone block that trains, counted from 1 over the blocks in order (MobileNetV1:
   * its 13 depthwise-separable blocks; ResNet50: its bottlenecks, stage by stage, 16 in all). The stem and every
   * earlier block are frozen (not trainable, batch norm in inference mode); this block and the later ones train.
   * E.g. 12 trains MobileNetV1's last two blocks. Needs `freeze` `none` (the default). Default: unset (`freeze` decides).
   */
  trainableFrom?: number;
  /** Seed of the (random) initial weights. Default 0. */
  seed?: number;
  /**
   * Keep an ImageNet-style classifier head with this many classes (global average pool + linear). It is not used by
   * `encode`; `classify` uses it (e.g. to check that pretrained weights were mapped right). Default 0: no head.
   */
  classifierClasses?: number;
  /** Pixel normalisation that `normalizePixels` applies. Default: per backbone (see the subtypes). */
  normalization?: PixelNormalization;
}

/** ResNet50 (bottleneck ResNet). `blocksPerStage`/`baseWidth` allow reduced configs for tests and CPU experiments. */
export interface ResNet50Config extends EncoderConfigBase {
  type: 'resnet50';
  /**
   * Where the stride-2 of a downsampling bottleneck sits: on the first 1x1 conv (the original ResNet, Keras' weights)
   * or on the 3x3 conv ("ResNet v1.5", torchvision's weights). Default `3x3`. Must match the weights loaded.
   */
  strideOn?: '1x1' | '3x3';
  /** Bottleneck blocks in each of the four stages. Default [3, 4, 6, 3] (ResNet50). */
  blocksPerStage?: readonly [number, number, number, number];
  /** Width of the stem and of the first stage's 3x3 convs; later stages double it. Default 64 (output 2048 channels). */
  baseWidth?: number;
  /** Batch-norm epsilon. Default 1.001e-5 with `strideOn: '1x1'` (Keras) and 1e-5 with `3x3` (torchvision). */
  batchNormEpsilon?: number;
  /** Default `imagenet-mean-std`. */
  normalization?: PixelNormalization;
}

/** MobileNetV1 with width multiplier `width` (Keras' `alpha`); depth multiplier 1. */
export interface MobileNetV1Config extends EncoderConfigBase {
  type: 'mobilenet-v1';
  width: 0.25 | 0.5 | 0.75 | 1.0;
  /** Batch-norm epsilon. Default 1e-3 (Keras). */
  batchNormEpsilon?: number;
  /** Default `symmetric`. */
  normalization?: PixelNormalization;
}

export type EncoderConfig = ResNet50Config | MobileNetV1Config;

/** The spec's grid side. */
export const PAPER_GRID_SIZE = 14;
/** Output stride of both backbones. */
export const OUTPUT_STRIDE = 32;

const FREEZE_POLICIES: readonly FreezePolicy[] = ['none', 'stem-stage1', 'all'];
const NORMALIZATIONS: readonly PixelNormalization[] = ['imagenet-mean-std', 'caffe-bgr-mean', 'symmetric'];
const MOBILENET_WIDTHS: readonly number[] = [0.25, 0.5, 0.75, 1.0];

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}

/** How the backbone's native grid becomes the requested grid. */
export interface GridPlan {
  nativeSize: number;
  gridSize: number;
  /** `upsample`: nearest x factor; `pool`: average pool factor x factor; `identity`: nothing to do. */
  mode: 'identity' | 'upsample' | 'pool';
  factor: number;
}

/** Resolves a grid policy at an input size; throws a ConfigError naming `jsonPath` when the grid cannot be reached. */
export function planGrid(inputSize: number, grid: GridPolicy, jsonPath = '$.encoder.grid'): GridPlan {
  const nativeSize = inputSize / OUTPUT_STRIDE;
  if (grid === 'native' || grid === nativeSize) return { nativeSize, gridSize: nativeSize, mode: 'identity', factor: 1 };
  if (!isPositiveInteger(grid)) {
    throw new ConfigError(jsonPath, `expected 'native' or a positive integer grid side, found ${JSON.stringify(grid)}`);
  }
  if (grid % nativeSize === 0) return { nativeSize, gridSize: grid, mode: 'upsample', factor: grid / nativeSize };
  if (nativeSize % grid === 0) return { nativeSize, gridSize: grid, mode: 'pool', factor: nativeSize / grid };
  throw new ConfigError(
    jsonPath,
    `grid ${grid} cannot be reached from the native ${nativeSize}x${nativeSize} grid at input ${inputSize} ` +
      `(it must be a multiple or a divisor of ${nativeSize})`,
  );
}

/** Validates the fields shared by every encoder config (throws ConfigError naming the JSON path). */
export function validateCommonConfig(config: EncoderConfigBase, jsonPath: string): void {
  const inputSize = config.inputSize ?? 224;
  if (!isPositiveInteger(inputSize) || inputSize % OUTPUT_STRIDE !== 0) {
    throw new ConfigError(`${jsonPath}.inputSize`, `expected a positive multiple of ${OUTPUT_STRIDE}, found ${JSON.stringify(config.inputSize)}`);
  }
  planGrid(inputSize, config.grid ?? PAPER_GRID_SIZE, `${jsonPath}.grid`);
  if (config.freeze !== undefined && !FREEZE_POLICIES.includes(config.freeze)) {
    throw new ConfigError(`${jsonPath}.freeze`, `expected one of ${FREEZE_POLICIES.map((f) => `'${f}'`).join(', ')}, found ${JSON.stringify(config.freeze)}`);
  }
  if (config.trainableFrom !== undefined) {
    if (!isPositiveInteger(config.trainableFrom)) {
      throw new ConfigError(`${jsonPath}.trainableFrom`, `expected a block number (a positive integer), found ${JSON.stringify(config.trainableFrom)}`);
    }
    if ((config.freeze ?? 'none') !== 'none') {
      throw new ConfigError(`${jsonPath}.trainableFrom`, `freezes the blocks before it itself: it needs freeze 'none', found ${JSON.stringify(config.freeze)}`);
    }
  }
  if (config.seed !== undefined && !(typeof config.seed === 'number' && Number.isInteger(config.seed))) {
    throw new ConfigError(`${jsonPath}.seed`, `expected an integer, found ${JSON.stringify(config.seed)}`);
  }
  if (config.classifierClasses !== undefined && !(config.classifierClasses === 0 || isPositiveInteger(config.classifierClasses))) {
    throw new ConfigError(`${jsonPath}.classifierClasses`, `expected a non-negative integer, found ${JSON.stringify(config.classifierClasses)}`);
  }
  if (config.normalization !== undefined && !NORMALIZATIONS.includes(config.normalization)) {
    throw new ConfigError(
      `${jsonPath}.normalization`,
      `expected one of ${NORMALIZATIONS.map((n) => `'${n}'`).join(', ')}, found ${JSON.stringify(config.normalization)}`,
    );
  }
}

export function validateResNet50Config(config: ResNet50Config, jsonPath: string): void {
  validateCommonConfig(config, jsonPath);
  if (config.strideOn !== undefined && config.strideOn !== '1x1' && config.strideOn !== '3x3') {
    throw new ConfigError(`${jsonPath}.strideOn`, `expected '1x1' or '3x3', found ${JSON.stringify(config.strideOn)}`);
  }
  if (config.blocksPerStage !== undefined) {
    const blocks = config.blocksPerStage as readonly unknown[];
    if (!Array.isArray(blocks) || blocks.length !== 4 || !blocks.every(isPositiveInteger)) {
      throw new ConfigError(`${jsonPath}.blocksPerStage`, `expected four positive integers, found ${JSON.stringify(blocks)}`);
    }
  }
  if (config.baseWidth !== undefined && !isPositiveInteger(config.baseWidth)) {
    throw new ConfigError(`${jsonPath}.baseWidth`, `expected a positive integer, found ${JSON.stringify(config.baseWidth)}`);
  }
  validateEpsilon(config.batchNormEpsilon, `${jsonPath}.batchNormEpsilon`);
}

export function validateMobileNetV1Config(config: MobileNetV1Config, jsonPath: string): void {
  validateCommonConfig(config, jsonPath);
  if (!MOBILENET_WIDTHS.includes(config.width)) {
    throw new ConfigError(`${jsonPath}.width`, `expected one of ${MOBILENET_WIDTHS.join(', ')}, found ${JSON.stringify(config.width)}`);
  }
  validateEpsilon(config.batchNormEpsilon, `${jsonPath}.batchNormEpsilon`);
}

function validateEpsilon(value: number | undefined, jsonPath: string): void {
  if (value !== undefined && !(typeof value === 'number' && value > 0 && Number.isFinite(value))) {
    throw new ConfigError(jsonPath, `expected a positive number, found ${JSON.stringify(value)}`);
  }
}
