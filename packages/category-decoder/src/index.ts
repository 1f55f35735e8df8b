/**
 * @s2cpnet/category-decoder: S²CPNet's multi-target category (noun) head: the paper's multi-label query decoder
 * with binary cross-entropy, and the released code's next-noun generation as an option.
 *
 * @example
 * ```ts
 * import { createCategoryHead, predictCategories } from '@s2cpnet/category-decoder';
 * const head = createCategoryHead({ type: 'multi-label', numClasses: nouns.length, memoryWidth: 1024 });
 * const [predicted] = predictCategories(head.logits(memory), nouns);
 * ```
 * @packageDocumentation
 */
export * from './config';
export * from './query-decoder-layer';
export * from './multi-label';
export * from './next-noun';
export * from './loss';
export * from './predict';
export * from './size';
export * from './factory';
export { registerCategoryDecoderLayers } from './register';
