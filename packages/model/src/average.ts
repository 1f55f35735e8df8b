import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError } from '@s2cpnet/core';
import type { LoadedCheckpoint } from './checkpoint';

/**
 * Checkpoint averaging: replaces the weights of `checkpoints[0].model` by the element-wise mean of the same weight
 * in every checkpoint (typically the last few epochs of one run, after its learning rate has decayed). Batch-norm
 * moving statistics are averaged like every other float weight. The checkpoints must share config, vocabulary,
 * noun classes and every weight's name and shape; a mismatch names the checkpoint and the weight.
 * Returns the first checkpoint, whose model now holds the average (the others are left untouched).
 */
export function averageCheckpoints(checkpoints: readonly LoadedCheckpoint[]): LoadedCheckpoint {
  if (checkpoints.length === 0) throw new CheckpointError('averageCheckpoints: no checkpoint given');
  const [first, ...rest] = checkpoints as [LoadedCheckpoint, ...LoadedCheckpoint[]];
  const reference = first.model.namedWeights();
  const configText = JSON.stringify({ ...first.model.config, encoderWeights: undefined, seed: undefined });
  for (const other of rest) {
    const where = `${other.dir}: cannot average with ${first.dir}`;
    if (JSON.stringify({ ...other.model.config, encoderWeights: undefined, seed: undefined }) !== configText) {
      throw new CheckpointError(`${where}: the model configs differ`);
    }
    if (JSON.stringify(other.vocabulary.toJSON()) !== JSON.stringify(first.vocabulary.toJSON())) throw new CheckpointError(`${where}: the vocabularies differ`);
    if (JSON.stringify(other.classNames) !== JSON.stringify(first.classNames)) throw new CheckpointError(`${where}: the noun classes differ`);
    const weights = other.model.namedWeights();
    if (weights.length !== reference.length) throw new CheckpointError(`${where}: ${weights.length} weights vs ${reference.length}`);
    weights.forEach((w, i) => {
      const r = reference[i]!;
      if (w.path !== r.path || JSON.stringify(w.variable.shape) !== JSON.stringify(r.variable.shape)) {
        throw new CheckpointError(`${where}: weight ${i} is ${w.path} [${w.variable.shape.join(',')}], expected ${r.path} [${r.variable.shape.join(',')}]`);
      }
    });
  }
  if (rest.length === 0) return first;
  const all = checkpoints.map((c) => c.model.namedWeights());
  reference.forEach((w, i) => {
    if (w.variable.dtype !== 'float32') return;
    const mean = tf.tidy(() => tf.div(tf.addN(all.map((weights) => weights[i]!.variable.read())), checkpoints.length));
    w.variable.write(mean);
    mean.dispose();
  });
  return first;
}
