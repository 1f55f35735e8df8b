import type * as tfl from '@tensorflow/tfjs-layers';
import { createFromFactoryMap, type FactoryMap, type FusionStrategy, type TypedConfig } from '@s2cpnet/core';
import { resolveFusionDimensions, type FusionConfig, type FusionDimensions, type FusionLayerArgs, type FusionRules } from './config';
import { CrossViewFusion, ReferenceCrossViewFusion } from './cvff';
import { AddFusion, ConcatFusion, SingleViewFusion } from './simple';

/** What every fusion factory returns: a fusion strategy that is also a tfjs layer (weights, config, serialization). */
export type FusionLayer = FusionStrategy & tfl.layers.Layer;

/** Constructor arguments from a config: everything but the `type` discriminant. */
function layerArgs(config: FusionDimensions & { type: string }): FusionLayerArgs {
  const { type: _type, ...args } = config;
  return args;
}

/**
 * The built-in fusion strategies by `type`. Extend it by spreading it into a new map:
 *
 * @example
 * ```ts
 * import { createFusion, defaultFusions, type FusionConfig } from '@s2cpnet/fusion';
 * type MyConfig = FusionConfig | { type: 'gated-sum'; imageChannels: number; maskChannels: number; dim: number; grid: number };
 * const fusions = { ...defaultFusions, 'gated-sum': (config) => new GatedSumFusion(config) };
 * const fusion = createFusion<MyConfig>({ type: 'gated-sum', imageChannels: 64, maskChannels: 32, dim: 16, grid: 7 }, fusions);
 * ```
 */
export const defaultFusions: FactoryMap<FusionConfig, FusionLayer> = {
  cvff: (config) => new CrossViewFusion(layerArgs(config)),
  'cvff-reference': (config) => new ReferenceCrossViewFusion(layerArgs(config)),
  add: (config) => new AddFusion(layerArgs(config)),
  concat: (config) => new ConcatFusion(layerArgs(config)),
  'single-view': (config) => new SingleViewFusion(layerArgs(config)),
};

/** How the built-in types' sizes are checked (the reference CVFF's default dropout is the authors' 0.5). */
const builtInRules: Record<FusionConfig['type'], FusionRules> = {
  cvff: { dropout: 0.1, attention: true },
  'cvff-reference': { dropout: 0.5, attention: true },
  add: { dropout: 0.1, attention: false },
  concat: { dropout: 0.1, attention: false },
  'single-view': { dropout: 0.1, attention: false },
};

export interface CreateFusionOptions {
  /** Where the config sits in its document, for error messages. Default `$.fusion`. */
  jsonPath?: string;
}

/**
 * Creates the fusion layer that `config.type` names, from `map` (default {@link defaultFusions}). An unknown type
 * throws a ConfigError listing the valid ones; for the built-in types the sizes are checked first, with errors
 * naming the JSON path (`$.fusion.dim: must be divisible by heads (8), found 100`).
 *
 * @example
 * ```ts
 * import { createFusion } from '@s2cpnet/fusion';
 * const fusion = createFusion({ type: 'cvff', imageChannels: 2048, maskChannels: 512, dim: 512, grid: 14, seed: 1 });
 * const memory = fusion.fuse(imageTokens, maskTokens); // [B,196,1024]
 * ```
 */
export function createFusion<Config extends TypedConfig = FusionConfig>(
  config: Config,
  map: FactoryMap<Config, FusionLayer> = defaultFusions as unknown as FactoryMap<Config, FusionLayer>,
  options: CreateFusionOptions = {},
): FusionLayer {
  const jsonPath = options.jsonPath ?? '$.fusion';
  const builtIn = config !== null && typeof config === 'object' && Object.prototype.hasOwnProperty.call(builtInRules, config.type);
  const factories = map as unknown as Record<string, (config: unknown, context: void) => FusionLayer>;
  if (builtIn && factories[config.type] === (defaultFusions as Record<string, unknown>)[config.type]) {
    resolveFusionDimensions(config as unknown as FusionDimensions, jsonPath, builtInRules[config.type as FusionConfig['type']]);
  }
  return createFromFactoryMap<Config, FusionLayer, void>(factories, config, undefined, { kind: 'fusion', jsonPath });
}
