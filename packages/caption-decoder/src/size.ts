import { resolveCaptionDecoderSizes, type CaptionDecoderLayerType, type CaptionDecoderSizes } from './config';

/**
 * Parameter count of a `TransformerCaptionDecoder`, as a closed formula (tests check it against `countParams()`).
 * With V vocabulary, d width, D memory width, f FFN width, P positions, L layers:
 * ```
 * embedding V*d + learned positions P*d + memory projection (D*d + d)
 * + L * (2 attentions 2*4*(d*d + d) + FFN (d*f + f + f*d + d) + layer norms n*2*d)
 * + head (d*V + V)
 * ```
 * where n = 4 layer norms for the gated layers (text, visual gate, text gate, output) and 3 for the plain layer.
 */
export function captionDecoderParameterCount(sizes: CaptionDecoderSizes & { layerType?: CaptionDecoderLayerType }): number {
  const s = resolveCaptionDecoderSizes(sizes, sizes.layerType ?? 'gated');
  const d = s.dim;
  const norms = s.layerType === 'plain' ? 3 : 4;
  const perLayer = 2 * 4 * (d * d + d) + (d * s.ffnDim + s.ffnDim + s.ffnDim * d + d) + norms * 2 * d;
  return s.vocabSize * d + s.maxLength * d + (s.memoryWidth * d + d) + s.numLayers * perLayer + (d * s.vocabSize + s.vocabSize);
}

export interface CaptionCostShape {
  /** Memory tokens N (196 for a 14x14 grid). */
  memoryTokens: number;
  /** Input tokens T per caption. */
  tokens: number;
  /** Captions decoded against each memory (5 in training). Default 1. */
  captionsPerImage?: number;
}

/**
 * Multiply-accumulates of one teacher-forced forward pass for ONE image and its `c` captions (1 MAC = 2 FLOP).
 * Only matrix products are counted (no softmax, norms, activations, embedding look-ups). Per image:
 * ```
 * memory projection N*D*d, and per layer the cross-attention keys/values 2*N*d*d   (once per image, shared by c captions)
 * per caption and layer: self-attention projections 4*T*d*d, scores and context 2*T*T*d,
 *                        cross-attention query/output 2*T*d*d, scores and context 2*T*N*d, FFN 2*T*d*f
 * per caption: head T*d*V
 * ```
 */
export function captionDecoderForwardMacs(sizes: CaptionDecoderSizes & { layerType?: CaptionDecoderLayerType }, shape: CaptionCostShape): number {
  const s = resolveCaptionDecoderSizes(sizes, sizes.layerType ?? 'gated');
  const d = s.dim;
  const n = shape.memoryTokens;
  const t = shape.tokens;
  const c = shape.captionsPerImage ?? 1;
  const perImage = n * s.memoryWidth * d + s.numLayers * 2 * n * d * d;
  const perCaptionLayer = 4 * t * d * d + 2 * t * t * d + 2 * t * d * d + 2 * t * n * d + 2 * t * d * s.ffnDim;
  return perImage + c * (s.numLayers * perCaptionLayer + t * d * s.vocabSize);
}

/**
 * Multiply-accumulates to produce the word at position `position` (0 = the step that reads `<start>`) for one
 * hypothesis. With the cache, only the new position is computed: per layer 4d^2 (self projections) + 2(t+1)d
 * (scores and context over t+1 keys) + 2d^2 (cross query/output) + 2Nd (cross scores and context) + 2df, plus the
 * head dV; the memory's keys/values are paid once in `initState` (`N*D*d + L*2*N*d^2`, not included here).
 * Without the cache, a decoder must rerun the whole prefix of t+1 positions with a teacher-forced pass
 * (`captionDecoderForwardMacs` with T = t+1, memory work included, head applied to every position).
 */
export function captionDecoderStepMacs(
  sizes: CaptionDecoderSizes & { layerType?: CaptionDecoderLayerType },
  memoryTokens: number,
  position: number,
  cached: boolean,
): number {
  if (!cached) return captionDecoderForwardMacs(sizes, { memoryTokens, tokens: position + 1 });
  const s = resolveCaptionDecoderSizes(sizes, sizes.layerType ?? 'gated');
  const d = s.dim;
  const perLayer = 4 * d * d + 2 * (position + 1) * d + 2 * d * d + 2 * memoryTokens * d + 2 * d * s.ffnDim;
  return s.numLayers * perLayer + d * s.vocabSize;
}
