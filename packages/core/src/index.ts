/**
 * @s2cpnet/core: the contracts and building blocks every S²CPNet package shares.
 *
 * @example
 * ```ts
 * import { MultiHeadAttention, SeededRng } from '@s2cpnet/core';
 * const attention = new MultiHeadAttention({ dim: 64, numHeads: 8, seed: 1 });
 * ```
 * @packageDocumentation
 */
export * from './errors';
export * from './rng';
export * from './shapes';
export * from './init';
export * from './layer';
export * from './interfaces';
export * from './factory';
export * from './nn/index';
export * from './io/atomic';
export * from './kernels/index';
export { VERSION } from './version';

import { Linear, LayerNorm, FeedForward, MultiHeadAttention, Embedding, LearnedPositions1D, LearnedPositions2D, Conv2D, BatchNorm } from './nn/index';
import { registerLayers } from './layer';

/** Registers core's layer classes with tfjs serialization (`S2CP>Name`). Explicit; never done on import. */
export function registerCoreLayers(): void {
  registerLayers([Linear, LayerNorm, FeedForward, MultiHeadAttention, Embedding, LearnedPositions1D, LearnedPositions2D, Conv2D, BatchNorm]);
}
