import * as tf from '@tensorflow/tfjs-core';
import { ShapeError, assertRank } from '@s2cpnet/core';

export interface CaptionCrossEntropyOptions {
  /**
   * Label smoothing epsilon in [0, 1): the target distribution is `(1-eps)` on the true word plus `eps/V` spread
   * over the whole vocabulary (Szegedy et al. 2016). Default 0.
   */
  labelSmoothing?: number;
}

/**
 * Mean next-word cross-entropy over the non-pad target tokens (spec section 6: `CE(caption, ignore <pad>)`).
 * `logits` [B,T,V], `targets` [B,T] int32 (the inputs shifted left by one: words then `<end>`, then `padId`).
 * Uses `logSoftmax`, which subtracts the row maximum, so large logits do not overflow. Returns a scalar; a batch
 * with no real token gives 0.
 *
 * @example
 * ```ts
 * const { logits } = decoder.forward(memory, inputs, { training: true });
 * const loss = captionCrossEntropy(logits, targets, 0, { labelSmoothing: 0.1 });
 * ```
 */
export function captionCrossEntropy(
  logits: tf.Tensor3D,
  targets: tf.Tensor2D,
  padId = 0,
  options: CaptionCrossEntropyOptions = {},
): tf.Scalar {
  assertRank('captionCrossEntropy', 'logits', logits, 3);
  assertRank('captionCrossEntropy', 'targets', targets, 2);
  const [batch, length, vocab] = logits.shape;
  if (targets.shape[0] !== batch || targets.shape[1] !== length) {
    throw new ShapeError('captionCrossEntropy', 'targets', `expected shape [${batch}, ${length}] to match logits, found [${targets.shape.join(', ')}]`);
  }
  if (targets.dtype !== 'int32') throw new ShapeError('captionCrossEntropy', 'targets', `expected dtype int32, found ${targets.dtype}`);
  const smoothing = options.labelSmoothing ?? 0;
  if (!(smoothing >= 0 && smoothing < 1)) {
    throw new ShapeError('captionCrossEntropy', 'labelSmoothing', `expected a number in [0, 1), found ${smoothing}`);
  }
  return tf.tidy(() => {
    const logProbs = tf.logSoftmax(logits, -1);
    const truth = tf.oneHot(targets, vocab);
    const targetLogProb = tf.sum(tf.mul(logProbs, truth), -1);
    let perToken = tf.neg(targetLogProb);
    if (smoothing > 0) {
      const uniform = tf.neg(tf.mean(logProbs, -1));
      perToken = tf.add(tf.mul(perToken, 1 - smoothing), tf.mul(uniform, smoothing));
    }
    const real = tf.cast(tf.notEqual(targets, padId), 'float32');
    const count = tf.maximum(tf.sum(real), 1);
    return tf.div(tf.sum(tf.mul(perToken, real)), count) as tf.Scalar;
  });
}
