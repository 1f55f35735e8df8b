/**
 * @s2cpnet/model: assembles S²CPNet and its ablation variants from the component packages; training, inference
 * and checkpoints.
 *
 * @example
 * ```ts
 * import { buildS2CPNet, presetConfig } from '@s2cpnet/model';
 * const model = buildS2CPNet(presetConfig('s2cpnet'), { vocabSize: 300, numClasses: 90 });
 * console.log(model.countParams());
 * ```
 * @packageDocumentation
 */
export * from './presets';
export * from './config';
export * from './s2cpnet';
export * from './optimizer';
export * from './tensor-file';
export * from './checkpoint';
export * from './average';
export * from './inference';
export * from './train';
export * from './scst';
export * from './encoder-weights';
export * from './captioner';
