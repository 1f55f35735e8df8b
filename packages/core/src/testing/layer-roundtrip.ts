import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { namedWeightsOf } from './layer-weights';

/** Weights encoded as a checkpoint writer would: one buffer plus a manifest entry per path. */
export interface SavedWeights {
  data: ArrayBuffer;
  specs: tf.io.WeightsManifestEntry[];
}

/** Encodes every weight under its path (`namedWeights()` for S2Layers). */
export async function saveWeights(layer: tfl.layers.Layer): Promise<SavedWeights> {
  const map: tf.NamedTensorMap = {};
  for (const { path, variable } of namedWeightsOf(layer)) map[path] = variable.read();
  return tf.io.encodeWeights(map);
}

/** Decodes saved weights and writes each into the weight with the same path; every path must match. */
export function loadWeights(layer: tfl.layers.Layer, saved: SavedWeights): void {
  const decoded = tf.io.decodeWeights(saved.data, saved.specs);
  try {
    const targets = namedWeightsOf(layer);
    const missing = targets.filter((t) => !(t.path in decoded)).map((t) => t.path);
    const extra = Object.keys(decoded).filter((p) => !targets.some((t) => t.path === p));
    if (missing.length > 0 || extra.length > 0) {
      throw new Error(`loadWeights: paths differ; missing ${missing.join(', ')}; unexpected ${extra.join(', ')}`);
    }
    for (const { path, variable } of targets) variable.write(decoded[path]!);
  } finally {
    tf.dispose(Object.values(decoded));
  }
}

/**
 * Rebuilds a layer from its config through the tfjs serialization registry, after a JSON round trip of the config
 * (so a config that is not JSON-safe fails here). The class must be registered.
 *
 * @example
 * const saved = await saveWeights(layer);
 * const copy = rebuildFromConfig(layer);
 * copy.build(inputShape); // a layer has weights only once built
 * loadWeights(copy, saved);
 */
export function rebuildFromConfig<T extends tfl.layers.Layer>(layer: T): T {
  const className = layer.getClassName();
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[className];
  if (!entry) throw new Error(`rebuildFromConfig: class ${className} is not registered`);
  const [cls, fromConfig] = entry;
  const config = JSON.parse(JSON.stringify(layer.getConfig())) as tf.serialization.ConfigDict;
  return fromConfig(cls, config) as unknown as T;
}
