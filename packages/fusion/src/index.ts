/**
 * @s2cpnet/fusion: the cross-view feature fusion (CVFF) of S²CPNet and the other fusion strategies of the
 * ablations (add, concat, single-view, and the authors' reference CVFF) behind one interface: core's
 * `FusionStrategy`, `fuse(imageTokens [B,N,C1], maskTokens [B,N,C2] | null) -> memory [B,N,memoryWidth]`.
 *
 * @example
 * ```ts
 * import { createFusion, registerFusionLayers } from '@s2cpnet/fusion';
 * registerFusionLayers(); // once, before deserialising saved configs
 * const fusion = createFusion({ type: 'cvff', imageChannels: 2048, maskChannels: 512, dim: 512, grid: 14 });
 * ```
 * @packageDocumentation
 */
export * from './config';
export { FusionLayerBase } from './base';
export { CoarseGate, ReferenceCoarseGate, type CoarseGateArgs, type FusionGate, type GateWeights } from './gates';
export { CrossViewUnit, type CrossViewUnitArgs, type CrossViewVariant, type ViewBlocks } from './unit';
export { ResidualMergeBlock, BottleneckMergeBlock, type MergeBlock, type MergeBlockArgs } from './merge';
export { CrossViewFusionBase, CrossViewFusion, ReferenceCrossViewFusion } from './cvff';
export { AddFusion, ConcatFusion, SingleViewFusion } from './simple';
export { defaultFusions, createFusion, type FusionLayer, type CreateFusionOptions } from './factory';

import { registerLayers } from '@s2cpnet/core';
import { CoarseGate, ReferenceCoarseGate } from './gates';
import { CrossViewUnit } from './unit';
import { ResidualMergeBlock, BottleneckMergeBlock } from './merge';
import { CrossViewFusion, ReferenceCrossViewFusion } from './cvff';
import { AddFusion, ConcatFusion, SingleViewFusion } from './simple';

/** Registers every fusion layer class with tfjs serialization (`S2CP>CrossViewFusion`, ...). Explicit; never done on import. */
export function registerFusionLayers(): void {
  registerLayers([
    CrossViewFusion,
    ReferenceCrossViewFusion,
    AddFusion,
    ConcatFusion,
    SingleViewFusion,
    CrossViewUnit,
    CoarseGate,
    ReferenceCoarseGate,
    ResidualMergeBlock,
    BottleneckMergeBlock,
  ]);
}
