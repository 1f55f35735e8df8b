/**
 * @s2cpnet/model: assembles S²CPNet and its ablation variants from the component packages.
 *
 * @example
 * ```ts
 * import { PRESETS } from '@s2cpnet/model';
 * console.log(PRESETS.s2cpnet.fusion); // 'cvff'
 * ```
 * @packageDocumentation
 */
export * from './presets';
