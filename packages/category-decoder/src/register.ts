import { registerLayers } from '@s2cpnet/core';
import { MultiLabelCategoryDecoder } from './multi-label';
import { NextNounCategoryDecoder } from './next-noun';
import { QueryDecoderLayer } from './query-decoder-layer';

/**
 * Registers this package's layer classes with tfjs serialization (`S2CP>MultiLabelCategoryDecoder`, ...).
 * Explicit: nothing is registered on import. Call `registerCoreLayers()` from `@s2cpnet/core` too.
 */
export function registerCategoryDecoderLayers(): void {
  registerLayers([MultiLabelCategoryDecoder, NextNounCategoryDecoder, QueryDecoderLayer]);
}
