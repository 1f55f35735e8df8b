/**
 * @s2cpnet/enhancers: the semantic (image view, Eq. 1-2) and spatial (mask view, Eq. 3-5) feature enhancers of
 * S²CPNet. Each is also available on its own subpath: `@s2cpnet/enhancers/semantic`, `@s2cpnet/enhancers/spatial`.
 *
 * @example
 * ```ts
 * import { SemanticEnhancer, SpatialEnhancer, registerEnhancerLayers } from '@s2cpnet/enhancers';
 * registerEnhancerLayers(); // once, before deserialising saved configs
 * const semantic = new SemanticEnhancer({ channels: 2048, seed: 1 });
 * const spatial = new SpatialEnhancer({ inputChannels: 2048, outputChannels: 512, seed: 2 });
 * ```
 * @packageDocumentation
 */
export { SemanticEnhancer, registerSemanticEnhancerLayers, type SemanticEnhancerArgs } from './semantic';
export { SpatialEnhancer, registerSpatialEnhancerLayers, type SpatialEnhancerArgs, type AlphaBranch } from './spatial';
export type { EnhancerVariant } from './validate';

import { registerLayers } from '@s2cpnet/core';
import { SemanticEnhancer } from './semantic';
import { SpatialEnhancer } from './spatial';

/** Registers both enhancer classes with tfjs serialization (`S2CP>SemanticEnhancer`, `S2CP>SpatialEnhancer`). Explicit; never done on import. */
export function registerEnhancerLayers(): void {
  registerLayers([SemanticEnhancer, SpatialEnhancer]);
}
