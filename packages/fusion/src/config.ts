import { ConfigError } from '@s2cpnet/core';

/**
 * Sizes every fusion strategy is configured with. Strategies ignore the fields they do not use (single-view ignores
 * `maskChannels`; add, concat and single-view ignore `heads`, `units` and `ffnMultiplier`).
 */
export interface FusionDimensions {
  /** Width C1 of the image-view tokens (2048 after the semantic enhancer on ResNet50). */
  imageChannels: number;
  /** Width C2 of the mask-view tokens (512 after the spatial enhancer, 2048 without it). */
  maskChannels: number;
  /** Model width d the views are projected to (paper: 512). Even, and divisible by `heads`. */
  dim: number;
  /** Grid side G; the token count is N = G*G in row-major order (paper: 14). */
  grid: number;
  /** Attention heads. Default 8. */
  heads?: number;
  /** Number of fusion units U with separate weights. Default 3. */
  units?: number;
  /** Feed-forward width as a multiple of `dim`. Default 4. */
  ffnMultiplier?: number;
  /** Dropout rate. Default 0.1 (0.5 for `cvff-reference`, as in the authors' code). */
  dropout?: number;
  /** Seed of the weight initialisation. Default 0. */
  seed?: number;
}

/** Constructor arguments of every built-in fusion layer: the sizes plus tfjs' `name`/`trainable`. */
export interface FusionLayerArgs extends FusionDimensions {
  name?: string;
  trainable?: boolean;
}

/** Cross-view feature fusion as the paper specifies it (spec section 5). */
export interface CrossViewFusionConfig extends FusionDimensions {
  type: 'cvff';
}
/** Cross-view feature fusion as the authors' released code does it (spec section 9). */
export interface ReferenceCrossViewFusionConfig extends FusionDimensions {
  type: 'cvff-reference';
}
/** Model2-A: `Linear(V1) + Linear(V2)` plus 2-D positions. */
export interface AddFusionConfig extends FusionDimensions {
  type: 'add';
}
/** Model2-B: `concat(Linear(V1) + P, Linear(V2) + P)`. */
export interface ConcatFusionConfig extends FusionDimensions {
  type: 'concat';
}
/** Baseline / Model1: image tokens only, `Linear(V1) + P`. */
export interface SingleViewFusionConfig extends FusionDimensions {
  type: 'single-view';
}

/** Discriminated union of the built-in fusion configs. */
export type FusionConfig =
  | CrossViewFusionConfig
  | ReferenceCrossViewFusionConfig
  | AddFusionConfig
  | ConcatFusionConfig
  | SingleViewFusionConfig;

export type FusionType = FusionConfig['type'];

/** Resolved sizes with every default filled in. */
export interface ResolvedFusionDimensions {
  imageChannels: number;
  maskChannels: number;
  dim: number;
  grid: number;
  heads: number;
  units: number;
  ffnMultiplier: number;
  dropout: number;
  seed: number;
}

/** How a strategy's sizes are checked: its default dropout, and whether it splits `dim` into attention heads. */
export interface FusionRules {
  dropout: number;
  attention: boolean;
}

function integerAtLeast(jsonPath: string, field: string, value: unknown, minimum: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < minimum) {
    throw new ConfigError(`${jsonPath}.${field}`, `expected an integer >= ${minimum}, found ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Checks the sizes and fills in defaults. Errors are ConfigErrors naming `jsonPath.field`, what was expected and
 * what was found, e.g. `$.fusion.dim: must be divisible by heads (8), found 100`.
 */
export function resolveFusionDimensions(
  config: FusionDimensions,
  jsonPath: string,
  rules: FusionRules = { dropout: 0.1, attention: true },
): ResolvedFusionDimensions {
  if (typeof config !== 'object' || config === null) {
    throw new ConfigError(jsonPath, `expected an object, found ${JSON.stringify(config)}`);
  }
  const imageChannels = integerAtLeast(jsonPath, 'imageChannels', config.imageChannels, 1);
  const maskChannels = integerAtLeast(jsonPath, 'maskChannels', config.maskChannels, 1);
  const dim = integerAtLeast(jsonPath, 'dim', config.dim, 2);
  const grid = integerAtLeast(jsonPath, 'grid', config.grid, 1);
  const heads = integerAtLeast(jsonPath, 'heads', config.heads ?? 8, 1);
  const units = integerAtLeast(jsonPath, 'units', config.units ?? 3, 1);
  const ffnMultiplier = integerAtLeast(jsonPath, 'ffnMultiplier', config.ffnMultiplier ?? 4, 1);
  const seed = integerAtLeast(jsonPath, 'seed', config.seed ?? 0, 0);
  const dropout = config.dropout ?? rules.dropout;
  if (dim % 2 !== 0) {
    throw new ConfigError(`${jsonPath}.dim`, `must be even (the 2-D positions split it into row and column halves), found ${dim}`);
  }
  if (rules.attention && dim % heads !== 0) throw new ConfigError(`${jsonPath}.dim`, `must be divisible by heads (${heads}), found ${dim}`);
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) {
    throw new ConfigError(`${jsonPath}.dropout`, `expected a number in [0, 1), found ${JSON.stringify(config.dropout)}`);
  }
  return { imageChannels, maskChannels, dim, grid, heads, units, ffnMultiplier, dropout, seed };
}
