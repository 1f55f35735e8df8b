/**
 * Greedy decoding and batched beam search over any `CaptionDecoder` (subpath `@s2cpnet/caption-decoder/decoding`).
 *
 * @example
 * ```ts
 * import { beamSearch, greedyDecode } from '@s2cpnet/caption-decoder/decoding';
 * const captions = beamSearch(decoder, memory, { beamSize: 3, startId: 1, endId: 2 });
 * ```
 * @module
 */
export { greedyDecode } from './greedy';
export { beamSearch, lengthPenaltyFactor, type BeamSearchOptions } from './beam';
export { DEFAULT_MAX_DECODE_LENGTH, type DecodedCaption, type DecodeOptions } from './types';
