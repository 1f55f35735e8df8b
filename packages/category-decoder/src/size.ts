import { resolveMultiLabelSizes, resolveNextNounSizes, type MultiLabelSizes, type NextNounSizes } from './config';

/** Parameters of one post-norm query-decoder layer: 2 attentions 2*4*(d*d+d), FFN d*f+f+f*d+d, 3 layer norms 3*2*d. */
export function queryDecoderLayerParameterCount(dim: number, ffnDim: number): number {
  return 2 * 4 * (dim * dim + dim) + (dim * ffnDim + ffnDim + ffnDim * dim + dim) + 3 * 2 * dim;
}

/**
 * Parameters of `MultiLabelCategoryDecoder`:
 * `K*d (class queries) + D*d + d (memory projection) + layer + classifier`, the classifier being
 * `K*d + K` ('per-class') or `d + 1` ('shared').
 */
export function multiLabelParameterCount(sizes: MultiLabelSizes): number {
  const s = resolveMultiLabelSizes(sizes);
  const classifier = s.classifier === 'per-class' ? s.numClasses * s.dim + s.numClasses : s.dim + 1;
  return s.numClasses * s.dim + (s.memoryWidth * s.dim + s.dim) + queryDecoderLayerParameterCount(s.dim, s.ffnDim) + classifier;
}

/**
 * Parameters of `NextNounCategoryDecoder`: `V*d (embedding) + (maxNouns+1)*d (learned positions) + D*d + d
 * + L * layer + d*V + V (head)`.
 */
export function nextNounParameterCount(sizes: NextNounSizes): number {
  const s = resolveNextNounSizes(sizes);
  return (
    s.vocabSize * s.dim +
    (s.maxNouns + 1) * s.dim +
    (s.memoryWidth * s.dim + s.dim) +
    s.numLayers * queryDecoderLayerParameterCount(s.dim, s.ffnDim) +
    (s.dim * s.vocabSize + s.vocabSize)
  );
}

/**
 * Multiply-accumulates of one multi-label forward pass for ONE image (1 MAC = 2 FLOP; matrix products only):
 * memory projection `N*D*d`; self-attention among the K queries `4*K*d^2 + 2*K^2*d` (image-independent: computed
 * once per call, so a batch of B pays it once, not B times); cross-attention `2*K*d^2 + 2*N*d^2 + 2*K*N*d`;
 * FFN `2*K*d*f`; classifier `K*d`.
 */
export function multiLabelForwardMacs(sizes: MultiLabelSizes, memoryTokens: number): number {
  const s = resolveMultiLabelSizes(sizes);
  const k = s.numClasses;
  const d = s.dim;
  const n = memoryTokens;
  const self = 4 * k * d * d + 2 * k * k * d;
  const cross = 2 * k * d * d + 2 * n * d * d + 2 * k * n * d;
  return n * s.memoryWidth * d + self + cross + 2 * k * d * s.ffnDim + k * d;
}

/**
 * Multiply-accumulates of one teacher-forced next-noun pass over S steps for ONE image: `N*D*d` + per layer
 * `2*N*d^2 + 4*S*d^2 + 2*S^2*d + 2*S*d^2 + 2*S*N*d + 2*S*d*f` + head `S*d*V`.
 */
export function nextNounForwardMacs(sizes: NextNounSizes, memoryTokens: number, steps?: number): number {
  const s = resolveNextNounSizes(sizes);
  const d = s.dim;
  const n = memoryTokens;
  const t = steps ?? s.maxNouns + 1;
  const perLayer = 2 * n * d * d + 4 * t * d * d + 2 * t * t * d + 2 * t * d * d + 2 * t * n * d + 2 * t * d * s.ffnDim;
  return n * s.memoryWidth * d + s.numLayers * perLayer + t * d * s.vocabSize;
}
