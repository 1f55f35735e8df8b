/**
 * Greedy decoding and batched beam search over any `CaptionDecoder` (subpath `@s2cpnet/caption-decoder/decoding`).
 * The searches themselves are model-independent generators (`greedySearch`, `beamSearchSteps`) driven by a step
 * function: `runSearch` over a tfjs decoder, `runSearchAsync` over an asynchronous runtime such as ONNX Runtime.
 * `greedyDecodeAsync` / `beamSearchAsync` read asynchronously: use them on GPU backends (webgpu has no synchronous
 * reads under Node).
 *
 * @example
 * ```ts
 * import { beamSearch, greedyDecode } from '@s2cpnet/caption-decoder/decoding';
 * const captions = beamSearch(decoder, memory, { beamSize: 3, startId: 1, endId: 2 });
 * ```
 * @module
 */
export { greedyDecode, greedyDecodeAsync, greedySearch } from './greedy';
export { beamSearch, beamSearchAsync, beamSearchSteps, lengthPenaltyFactor, type BeamSearchOptions } from './beam';
export { runSearch, runSearchAsync, runTfjsSearch, runTfjsSearchAsync, tfjsStepper, type Search, type StepAnswer, type StepRequest } from './search';
export { DEFAULT_MAX_DECODE_LENGTH, checkSearchOptions, type DecodedCaption, type DecodeOptions } from './types';
