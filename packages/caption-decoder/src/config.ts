import { ConfigError } from '@s2cpnet/core';

/**
 * Which decoder layer a caption decoder stacks:
 * - `gated`: the paper's gated layer (Eq. 6), `F = LN_a(sigmoid(Vv)*Vv) + LN_b(sigmoid(T)*T) + w`;
 * - `plain`: a standard post-norm transformer decoder layer (Baseline1);
 * - `gated-reference`: the authors' released-code gate, `LN_a((1+sigmoid(Vv))*Vv) + LN_b((1+sigmoid(T))*T) + T`.
 */
export type CaptionDecoderLayerType = 'gated' | 'plain' | 'gated-reference';

export const captionDecoderLayerTypes: readonly CaptionDecoderLayerType[] = ['gated', 'plain', 'gated-reference'];

/** Sizes of a caption decoder. Everything but `vocabSize` and `memoryWidth` has a default (spec section 6). */
export interface CaptionDecoderSizes {
  /** Caption vocabulary size V (ids include `<pad>`=0, `<start>`, `<end>`, `<unk>`). */
  vocabSize: number;
  /** Width of the memory tokens the decoder reads (1024 for cvff/concat at d=512, 512 for add/single-view). */
  memoryWidth: number;
  /** Decoder width dDec. Default 512. */
  dim?: number;
  /** Number of stacked layers L. Default 3. */
  numLayers?: number;
  /** Attention heads. Default 8. */
  numHeads?: number;
  /** Hidden width of the feed-forward blocks. Default 4 * dim. */
  ffnDim?: number;
  /** Dropout rate on attention weights and sub-layer outputs. Default 0.1. */
  dropout?: number;
  /** Number of positions (input tokens, `<start>` included) the decoder can read. Default 32. */
  maxLength?: number;
}

/** The sizes with every default filled in. */
export interface ResolvedCaptionDecoderSizes extends Required<CaptionDecoderSizes> {
  layerType: CaptionDecoderLayerType;
}

export const CAPTION_DECODER_DEFAULTS = {
  dim: 512,
  numLayers: 3,
  numHeads: 8,
  ffnMultiplier: 4,
  dropout: 0.1,
  maxLength: 32,
} as const;

export function resolveCaptionDecoderSizes(sizes: CaptionDecoderSizes, layerType: CaptionDecoderLayerType): ResolvedCaptionDecoderSizes {
  const dim = sizes.dim ?? CAPTION_DECODER_DEFAULTS.dim;
  return {
    layerType,
    vocabSize: sizes.vocabSize,
    memoryWidth: sizes.memoryWidth,
    dim,
    numLayers: sizes.numLayers ?? CAPTION_DECODER_DEFAULTS.numLayers,
    numHeads: sizes.numHeads ?? CAPTION_DECODER_DEFAULTS.numHeads,
    ffnDim: sizes.ffnDim ?? CAPTION_DECODER_DEFAULTS.ffnMultiplier * dim,
    dropout: sizes.dropout ?? CAPTION_DECODER_DEFAULTS.dropout,
    maxLength: sizes.maxLength ?? CAPTION_DECODER_DEFAULTS.maxLength,
  };
}

function positiveInteger(jsonPath: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new ConfigError(jsonPath, `expected a positive integer, found ${JSON.stringify(value)}`);
  }
}

/**
 * Checks a caption-decoder config where it enters the toolkit, naming the JSON path of the first bad value.
 * `jsonPath` is the path of the config object itself, e.g. `$.captionDecoder`.
 */
export function validateCaptionDecoderSizes(sizes: CaptionDecoderSizes, jsonPath: string): void {
  if (typeof sizes !== 'object' || sizes === null) {
    throw new ConfigError(jsonPath, `expected an object, found ${JSON.stringify(sizes)}`);
  }
  positiveInteger(`${jsonPath}.vocabSize`, sizes.vocabSize);
  positiveInteger(`${jsonPath}.memoryWidth`, sizes.memoryWidth);
  for (const key of ['dim', 'numLayers', 'numHeads', 'ffnDim', 'maxLength'] as const) {
    if (sizes[key] !== undefined) positiveInteger(`${jsonPath}.${key}`, sizes[key]);
  }
  const dim = sizes.dim ?? CAPTION_DECODER_DEFAULTS.dim;
  const heads = sizes.numHeads ?? CAPTION_DECODER_DEFAULTS.numHeads;
  if (dim % heads !== 0) {
    throw new ConfigError(`${jsonPath}.numHeads`, `dim ${dim} must be divisible by numHeads ${heads}`);
  }
  if (sizes.dropout !== undefined && (typeof sizes.dropout !== 'number' || !(sizes.dropout >= 0 && sizes.dropout < 1))) {
    throw new ConfigError(`${jsonPath}.dropout`, `expected a number in [0, 1), found ${JSON.stringify(sizes.dropout)}`);
  }
  if (sizes.vocabSize < 4) {
    throw new ConfigError(`${jsonPath}.vocabSize`, `must cover <pad>, <start>, <end> and <unk> (at least 4), found ${sizes.vocabSize}`);
  }
}
