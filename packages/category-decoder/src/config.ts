import { ConfigError } from '@s2cpnet/core';

/**
 * How the multi-label head turns each class query's output into its logit:
 * - `per-class` (default): class k has its own weight vector and bias, `logit_k = <h_k, w_k> + b_k`
 *   (K*(dDec+1) parameters; as Query2Label's group-wise linear layer);
 * - `shared`: one `Linear(dDec -> 1)` for every class (dDec+1 parameters); the queries alone tell classes apart.
 */
export type ClassifierKind = 'per-class' | 'shared';

/** Sizes of the multi-label query decoder (spec section 6). */
export interface MultiLabelSizes {
  /** Number of noun classes K. */
  numClasses: number;
  /** Width of the memory tokens (1024 for cvff/concat at d=512, 512 for add/single-view). */
  memoryWidth: number;
  /** Decoder width dDec. Default 512. */
  dim?: number;
  /** Attention heads. Default 8. */
  numHeads?: number;
  /** FFN hidden width. Default 4 * dim. */
  ffnDim?: number;
  /** Dropout. Default 0.1. */
  dropout?: number;
  /** Default `per-class`. */
  classifier?: ClassifierKind;
}

/** Sizes of the reference code's next-noun head (spec section 9). */
export interface NextNounSizes {
  /** Caption vocabulary size V: the nouns are generated as caption-vocabulary ids. */
  vocabSize: number;
  memoryWidth: number;
  /** Default 512. */
  dim?: number;
  /** Causal decoder layers. Default 1 (the head is "small"). */
  numLayers?: number;
  /** Default 8. */
  numHeads?: number;
  /** Default 4 * dim. */
  ffnDim?: number;
  /** Default 0.1. */
  dropout?: number;
  /** Longest noun sequence, `<end>` not counted. Default 12. */
  maxNouns?: number;
  /** Id of `<start>` in the caption vocabulary. Default 1 (`<pad>`=0, `<start>`, `<end>`, `<unk>`). */
  startId?: number;
  /** Id of `<end>`. Default 2. */
  endId?: number;
  /** Id of `<pad>`, ignored by the loss. Default 0. */
  padId?: number;
}

export const CATEGORY_DEFAULTS = {
  dim: 512,
  numHeads: 8,
  ffnMultiplier: 4,
  dropout: 0.1,
  classifier: 'per-class' as ClassifierKind,
  nextNounLayers: 1,
  maxNouns: 12,
  startId: 1,
  endId: 2,
  padId: 0,
} as const;

export function resolveMultiLabelSizes(sizes: MultiLabelSizes): Required<MultiLabelSizes> {
  const dim = sizes.dim ?? CATEGORY_DEFAULTS.dim;
  return {
    numClasses: sizes.numClasses,
    memoryWidth: sizes.memoryWidth,
    dim,
    numHeads: sizes.numHeads ?? CATEGORY_DEFAULTS.numHeads,
    ffnDim: sizes.ffnDim ?? CATEGORY_DEFAULTS.ffnMultiplier * dim,
    dropout: sizes.dropout ?? CATEGORY_DEFAULTS.dropout,
    classifier: sizes.classifier ?? CATEGORY_DEFAULTS.classifier,
  };
}

export function resolveNextNounSizes(sizes: NextNounSizes): Required<NextNounSizes> {
  const dim = sizes.dim ?? CATEGORY_DEFAULTS.dim;
  return {
    vocabSize: sizes.vocabSize,
    memoryWidth: sizes.memoryWidth,
    dim,
    numLayers: sizes.numLayers ?? CATEGORY_DEFAULTS.nextNounLayers,
    numHeads: sizes.numHeads ?? CATEGORY_DEFAULTS.numHeads,
    ffnDim: sizes.ffnDim ?? CATEGORY_DEFAULTS.ffnMultiplier * dim,
    dropout: sizes.dropout ?? CATEGORY_DEFAULTS.dropout,
    maxNouns: sizes.maxNouns ?? CATEGORY_DEFAULTS.maxNouns,
    startId: sizes.startId ?? CATEGORY_DEFAULTS.startId,
    endId: sizes.endId ?? CATEGORY_DEFAULTS.endId,
    padId: sizes.padId ?? CATEGORY_DEFAULTS.padId,
  };
}

function positiveInteger(jsonPath: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new ConfigError(jsonPath, `expected a positive integer, found ${JSON.stringify(value)}`);
  }
}

function checkCommon(config: { dim?: number; numHeads?: number; ffnDim?: number; dropout?: number; memoryWidth: number }, jsonPath: string): void {
  positiveInteger(`${jsonPath}.memoryWidth`, config.memoryWidth);
  for (const key of ['dim', 'numHeads', 'ffnDim'] as const) {
    if (config[key] !== undefined) positiveInteger(`${jsonPath}.${key}`, config[key]);
  }
  const dim = config.dim ?? CATEGORY_DEFAULTS.dim;
  const heads = config.numHeads ?? CATEGORY_DEFAULTS.numHeads;
  if (dim % heads !== 0) throw new ConfigError(`${jsonPath}.numHeads`, `dim ${dim} must be divisible by numHeads ${heads}`);
  if (config.dropout !== undefined && (typeof config.dropout !== 'number' || !(config.dropout >= 0 && config.dropout < 1))) {
    throw new ConfigError(`${jsonPath}.dropout`, `expected a number in [0, 1), found ${JSON.stringify(config.dropout)}`);
  }
}

/** Validates a multi-label head config; `jsonPath` is the path of the config object, e.g. `$.categoryHead`. */
export function validateMultiLabelSizes(config: MultiLabelSizes, jsonPath: string): void {
  if (typeof config !== 'object' || config === null) throw new ConfigError(jsonPath, `expected an object, found ${JSON.stringify(config)}`);
  positiveInteger(`${jsonPath}.numClasses`, config.numClasses);
  checkCommon(config, jsonPath);
  if (config.classifier !== undefined && config.classifier !== 'per-class' && config.classifier !== 'shared') {
    throw new ConfigError(`${jsonPath}.classifier`, `expected "per-class" or "shared", found ${JSON.stringify(config.classifier)}`);
  }
}

/** Validates a next-noun head config. */
export function validateNextNounSizes(config: NextNounSizes, jsonPath: string): void {
  if (typeof config !== 'object' || config === null) throw new ConfigError(jsonPath, `expected an object, found ${JSON.stringify(config)}`);
  positiveInteger(`${jsonPath}.vocabSize`, config.vocabSize);
  checkCommon(config, jsonPath);
  for (const key of ['numLayers', 'maxNouns'] as const) {
    if (config[key] !== undefined) positiveInteger(`${jsonPath}.${key}`, config[key]);
  }
  const resolved = resolveNextNounSizes(config);
  for (const key of ['startId', 'endId', 'padId'] as const) {
    const id = resolved[key];
    if (!Number.isInteger(id) || id < 0 || id >= config.vocabSize) {
      throw new ConfigError(`${jsonPath}.${key}`, `expected an id in 0..${config.vocabSize - 1}, found ${JSON.stringify(id)}`);
    }
  }
  if (new Set([resolved.startId, resolved.endId, resolved.padId]).size !== 3) {
    throw new ConfigError(`${jsonPath}.endId`, `startId, endId and padId must differ (found ${resolved.startId}, ${resolved.endId}, ${resolved.padId})`);
  }
}
