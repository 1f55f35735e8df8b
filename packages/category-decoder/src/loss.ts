import * as tf from '@tensorflow/tfjs-core';
import { ShapeError, assertRank } from '@s2cpnet/core';

/**
 * Mean binary cross-entropy of `logits` against `targets` (multi-hot, same shape), computed from the logits in the
 * numerically stable form `max(z,0) - z*y + log(1 + exp(-|z|))` (no sigmoid that could round to 0 or 1).
 *
 * @example
 * ```ts
 * const loss = binaryCrossEntropyWithLogits(head.logits(memory), nounTargets); // scalar
 * ```
 */
export function binaryCrossEntropyWithLogits(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  if (logits.shape.join(',') !== targets.shape.join(',')) {
    throw new ShapeError('binaryCrossEntropyWithLogits', 'targets', `expected shape [${logits.shape.join(', ')}], found [${targets.shape.join(', ')}]`);
  }
  return tf.tidy(() => {
    const y = tf.cast(targets, 'float32');
    const perEntry = tf.add(tf.sub(tf.relu(logits), tf.mul(logits, y)), tf.log1p(tf.exp(tf.neg(tf.abs(logits)))));
    return tf.mean(perEntry) as tf.Scalar;
  });
}

/**
 * Mean softmax cross-entropy of step logits [B,S,V] against token ids [B,S] over the non-pad positions (stable
 * `logSoftmax`); 0 when there is no real position.
 */
export function sequenceCrossEntropy(logits: tf.Tensor3D, targets: tf.Tensor2D, padId: number): tf.Scalar {
  assertRank('sequenceCrossEntropy', 'logits', logits, 3);
  assertRank('sequenceCrossEntropy', 'targets', targets, 2);
  const [batch, steps, vocab] = logits.shape;
  if (targets.shape[0] !== batch || targets.shape[1] !== steps) {
    throw new ShapeError('sequenceCrossEntropy', 'targets', `expected shape [${batch}, ${steps}], found [${targets.shape.join(', ')}]`);
  }
  return tf.tidy(() => {
    const ids = tf.cast(targets, 'int32');
    const logProbs = tf.logSoftmax(logits, -1);
    const nll = tf.neg(tf.sum(tf.mul(logProbs, tf.oneHot(ids, vocab)), -1));
    const real = tf.cast(tf.notEqual(ids, padId), 'float32');
    return tf.div(tf.sum(tf.mul(nll, real)), tf.maximum(tf.sum(real), 1)) as tf.Scalar;
  });
}
