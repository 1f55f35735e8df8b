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
  expectGradientsMatch,
  randomTensor,
  distinctTensor,
  type GradientCheckOptions,
  type GradientCheckResult,
  type GradientCheckDetail,
  type ExpectGradientsOptions,
} from './gradient-check';
export { expectClose, expectNoLeaks, type CloseTolerance, type NumericValues } from './assertions';
