import { registerLayers } from '@s2cpnet/core';
import { TransformerCaptionDecoder } from './decoder';
import { GatedDecoderLayer, PlainDecoderLayer } from './layers';

/**
 * Registers this package's layer classes with tfjs serialization (`S2CP>TransformerCaptionDecoder`, ...), so that
 * `tf.serialization` can rebuild them from `getConfig()`. Explicit: nothing is registered on import. Call
 * `registerCoreLayers()` from `@s2cpnet/core` as well for the building blocks.
 */
export function registerCaptionDecoderLayers(): void {
  registerLayers([TransformerCaptionDecoder, GatedDecoderLayer, PlainDecoderLayer]);
}
