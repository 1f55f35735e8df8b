/**
 * Test helpers for every S²CPNet package: `import { useBackend, testBackends, gradientCheck } from '@s2cpnet/core/testing'`.
 *
 * This entry point imports a tfjs backend package dynamically (in `useBackend`), so it is for tests and benchmarks;
 * the main `@s2cpnet/core` entry never loads a backend.
 *
 * @example
 * for (const backend of testBackends()) {
 *   describe(`conv on ${backend}`, () => {
 *     beforeAll(() => useBackend(backend));
 *     it('has correct gradients', () => {
 *       const x = randomTensor([1, 5, 5, 2], 1);
 *       expectGradientsMatch((t) => tf.mul(tf.tanh(t), 2), [x], { tolerance: 1e-3 });
 *       x.dispose();
 *     });
 *   });
 * }
 */
export { testBackends, useBackend, lastKernelReport, type TestBackend } from './backends';
export {
  gradientCheck,
  gradientCheckAsync,
  expectGradientsMatch,
  expectGradientsMatchAsync,
  type GradientCheckOptions,
  type GradientCheckResult,
  type GradientCheckDetail,
  type ExpectGradientsOptions,
} from './gradient-check';
/** Seeded inputs: normal float32 tensors, distinct-valued tensors for kinked ops, int32 token ids. */
export { randomTensor, distinctTensor, randomTokens } from './random-inputs';
export { expectClose, expectNoLeaks, type CloseTolerance, type NumericValues } from './assertions';
/**
 * A layer's weights by path (`namedWeights()` for S2Layers): read them as nested arrays (`WeightTable`), overwrite
 * them with seeded values (`randomizeWeights`) or add seeded noise (`perturbWeights`), copy them between two layers
 * with the same paths, and free them.
 */
export {
  namedWeightsOf,
  weightArrays,
  randomizeWeights,
  perturbWeights,
  copyWeightsByPath,
  disposeWeights,
  WeightTable,
  type PathedWeight,
  type LinearWeightArrays,
  type NormWeightArrays,
  type BatchNormWeightArrays,
  type AttentionWeightArrays,
  type FeedForwardWeightArrays,
} from './layer-weights';
/** Checkpoint round trips of a single layer: encode/decode weights by path, rebuild a layer from its JSON config. */
export { saveWeights, loadWeights, rebuildFromConfig, type SavedWeights } from './layer-roundtrip';
/**
 * Weight gradients: tfjs' analytic gradients by path, checked against float64 differences of an independent
 * reference (`referenceGradientCheck`, with `weightedSum` as the reference loss) or against float32 differences of
 * the layer itself (`checkWeightGradients`).
 */
export {
  weightGradients,
  referenceGradientCheck,
  weightedSum,
  checkWeightGradients,
  type WeightGradients,
  type ReferenceGradientCheckOptions,
  type ReferenceGradientResult,
  type WeightGradientCheckOptions,
  type WeightGradientCheckResult,
} from './weight-gradients';
/**
 * Float64 reference implementations of core's blocks over plain arrays (`reference64.linear`, `.layerNorm`,
 * `.attention`, `.feedForward`, `.sinusoid`, …), reading weights by path from `reference64.readWeights(layer)`.
 */
export * as reference64 from './reference64';
