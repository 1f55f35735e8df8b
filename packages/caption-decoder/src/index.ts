/**
 * @s2cpnet/caption-decoder: the gated (paper Eq. 6), plain (Baseline1) and reference-gated transformer caption
 * decoders, with cached step-wise decoding; greedy and beam search live in the `./decoding` subpath.
 *
 * @example
 * ```ts
 * import { createCaptionDecoder, captionCrossEntropy } from '@s2cpnet/caption-decoder';
 * import { beamSearch } from '@s2cpnet/caption-decoder/decoding';
 * const decoder = createCaptionDecoder({ type: 'gated', vocabSize: 300, memoryWidth: 1024 });
 * const [best] = beamSearch(decoder, memory, { beamSize: 3, startId: 1, endId: 2 });
 * ```
 * @packageDocumentation
 */
export * from './config';
export * from './layers';
export * from './decoder';
export * from './loss';
export * from './size';
export * from './factory';
export { registerCaptionDecoderLayers } from './register';
