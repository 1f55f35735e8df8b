import type * as tf from '@tensorflow/tfjs-core';
import type { ForwardOptions } from './layer';

/**
 * The contracts between S²CPNet's components. Each component package implements one of them; the assembly
 * package (`@s2cpnet/model`) wires them, so any implementation that keeps the contract can be swapped in.
 *
 * Layout: batch first, channels last. `G` grid side, `N = G*G` tokens.
 */

/** A backbone that maps images [B,H,W,3] to a feature grid [B,G,G,C]. The same weights serve the image and mask views. */
export interface Encoder {
  /** Channels C of the output grid. */
  readonly outputChannels: number;
  /** Side of the square input the encoder expects. */
  readonly inputSize: number;
  /** Side G of the output grid. */
  readonly gridSize: number;
  encode(images: tf.Tensor4D, options?: ForwardOptions): tf.Tensor4D;
}

/** A feature enhancer [B,G,G,C] -> [B,G,G,C'] (semantic: image view, spatial: mask view). */
export interface Enhancer {
  readonly inputChannels: number;
  readonly outputChannels: number;
  enhance(features: tf.Tensor4D, options?: ForwardOptions): tf.Tensor4D;
}

/** Two token maps in (image view, and mask view or null), one memory out. */
export interface FusionStrategy {
  /** Whether the strategy reads the mask view (false for single-view). */
  readonly usesMaskView: boolean;
  /** Width of the memory tokens it returns. */
  readonly memoryWidth: number;
  /** `imageTokens` [B,N,C1], `maskTokens` [B,N,C2] or null -> memory [B,N,memoryWidth]. */
  fuse(imageTokens: tf.Tensor3D, maskTokens: tf.Tensor3D | null, options?: ForwardOptions): tf.Tensor3D;
}

/** Multi-target category head: memory [B,N,D] -> one logit per noun class [B,K]. */
export interface CategoryHead {
  readonly numClasses: number;
  logits(memory: tf.Tensor3D, options?: ForwardOptions): tf.Tensor2D;
  /** Loss of `logits` against multi-hot `targets` [B,K] (a scalar). */
  loss(logits: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar;
}

/** What a caption decoder returns from a teacher-forced pass. */
export interface CaptionDecoderOutput {
  /** [B,T,V] next-word logits. */
  logits: tf.Tensor3D;
  /** Per layer, cross-attention weights [B,heads,T,N] when requested. */
  crossAttention?: tf.Tensor4D[];
}

/** One decoding step's result. */
export interface DecodeStepOutput<State> {
  /** [B,V] next-word logits. */
  logits: tf.Tensor2D;
  state: State;
  /** [B,N] cross-attention of the last layer averaged over heads, when requested. */
  attention?: tf.Tensor2D;
}

/**
 * A caption decoder: teacher-forced `forward` for training, and `initState`/`step` for step-wise decoding in which
 * each new word costs one position (keys and values of earlier words and of the memory are cached in `State`).
 */
export interface CaptionDecoder<State = unknown> {
  readonly vocabSize: number;
  readonly memoryWidth: number;
  forward(memory: tf.Tensor3D, tokens: tf.Tensor2D, options?: ForwardOptions & { returnAttention?: boolean }): CaptionDecoderOutput;
  initState(memory: tf.Tensor3D): State;
  step(tokens: tf.Tensor1D, state: State, options?: { returnAttention?: boolean }): DecodeStepOutput<State>;
  /** Selects rows of every cached tensor (beam search reorders hypotheses). */
  reorderState(state: State, indices: tf.Tensor1D): State;
  disposeState(state: State): void;
}
