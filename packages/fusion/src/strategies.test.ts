/**
 * Each built-in fusion strategy end to end against its equations in float64 TypeScript (batch norms in inference
 * mode), its weight gradients against float64 finite differences, and its parameter count and multiply-add count
 * against the closed-form formulas stated in the README.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  disposeWeights,
  expectClose,
  expectGradientsMatch,
  expectNoLeaks,
  randomizeWeights,
  randomTensor,
  referenceGradientCheck,
  testBackends,
  useBackend,
  weightedSum,
  WeightTable,
} from '@s2cpnet/core/testing';
import { createFusion, type FusionConfig, type FusionLayer } from './index';
import {
  referenceAdd,
  referenceConcat,
  referenceCrossViewFusion,
  referenceSingleView,
} from './testing/fixtures/reference-fusion';
import type { Tokens } from './testing/fixtures/reference-math';

const SIZES = { imageChannels: 6, maskChannels: 5, dim: 8, grid: 3, heads: 2, units: 2, ffnMultiplier: 2, seed: 17 };
const BATCH = 2;
const TOKENS = SIZES.grid * SIZES.grid;

type Reference = (image: Tokens, mask: Tokens, w: WeightTable) => Tokens;
const sizes = { grid: SIZES.grid, units: SIZES.units, heads: SIZES.heads };
const references: Record<FusionConfig['type'], Reference> = {
  cvff: (image, mask, w) => referenceCrossViewFusion(image, mask, w, sizes, 'paper'),
  'cvff-reference': (image, mask, w) => referenceCrossViewFusion(image, mask, w, sizes, 'reference'),
  add: (image, mask, w) => referenceAdd(image, mask, w, SIZES.grid),
  concat: (image, mask, w) => referenceConcat(image, mask, w, SIZES.grid),
  'single-view': (image, _mask, w) => referenceSingleView(image, w, SIZES.grid),
};

/**
 * Parameter counts (README, "Parameters"): with P = (C1 + C2) d + 2d + G d for the projections and positions,
 * f the FFN multiplier and U units; the counts include batch-norm moving statistics (4 values per channel).
 */
function expectedParameters(type: FusionConfig['type'], c: typeof SIZES): number {
  const { imageChannels: c1, maskChannels: c2, dim: d, grid: g, units: u, ffnMultiplier: f } = c;
  const positions = g * d;
  switch (type) {
    case 'single-view':
      return c1 * d + d + positions;
    case 'add':
    case 'concat':
      return (c1 + c2) * d + 2 * d + positions;
    case 'cvff':
      return (c1 + c2 + 2 + g) * d + u * ((44 + 4 * f) * d * d + (30 + 2 * f) * d + 2);
    case 'cvff-reference':
      return (c1 + c2 + 2 + g) * d + u * ((22.25 + 4 * f) * d * d + (45 + 2 * f) * d + 2);
  }
}

/** Multiply-adds per sample (README, "FLOPs"), N = G^2 tokens. */
function expectedMultiplyAdds(type: FusionConfig['type'], c: typeof SIZES): number {
  const { imageChannels: c1, maskChannels: c2, dim: d, grid: g, units: u, ffnMultiplier: f } = c;
  const n = g * g;
  const attention = 4 * n * d * d + 2 * n * n * d;
  const feedForward = 2 * f * n * d * d;
  switch (type) {
    case 'single-view':
      return n * c1 * d;
    case 'add':
    case 'concat':
      return n * (c1 + c2) * d;
    case 'cvff':
      return n * (c1 + c2) * d + u * (n * 2 * d * 2 + 2 * (attention + feedForward) + n * 9 * (2 * d) * (2 * d));
    case 'cvff-reference': {
      const b = (2 * d) / 4;
      const gate = n * (2 * d * d + d * 2);
      const merge = n * (2 * d * b + 9 * b * b + b * 2 * d);
      return n * (c1 + c2) * d + u * (gate + 2 * (2 * attention + feedForward) + merge);
    }
  }
}

const types = Object.keys(references) as FusionConfig['type'][];

for (const backend of testBackends()) {
  describe(`fusion strategies on ${backend}`, () => {
    beforeAll(() => useBackend(backend));

    describe.each(types)('%s', (type) => {
      const build = (): FusionLayer => {
        const fusion = createFusion({ type, ...SIZES } as FusionConfig);
        tf.dispose(tf.tidy(() => fusion.fuse(tf.zeros([1, TOKENS, SIZES.imageChannels]), tf.zeros([1, TOKENS, SIZES.maskChannels])))); // builds the weights
        randomizeWeights(fusion, 23);
        return fusion;
      };

      it('matches its equations (inference mode)', () => {
        const fusion = build();
        const image = randomTensor([BATCH, TOKENS, SIZES.imageChannels], 1) as tf.Tensor3D;
        const mask = randomTensor([BATCH, TOKENS, SIZES.maskChannels], 2) as tf.Tensor3D;
        const actual = expectNoLeaks(() => {
          const memory = fusion.fuse(image, fusion.usesMaskView ? mask : null);
          const values = memory.arraySync();
          memory.dispose();
          return values;
        });
        const expected = references[type](image.arraySync(), mask.arraySync(), WeightTable.of(fusion));
        expect(actual.length).toBe(BATCH);
        expect(actual[0]!.length).toBe(TOKENS);
        expect(actual[0]![0]!.length).toBe(fusion.memoryWidth);
        expectClose(actual.flat(2), expected.flat(2));
        tf.dispose([image, mask]);
        disposeWeights(fusion);
      });

      it('has input and weight gradients that agree with finite differences', () => {
        const fusion = build();
        const image = randomTensor([BATCH, TOKENS, SIZES.imageChannels], 3);
        const mask = randomTensor([BATCH, TOKENS, SIZES.maskChannels], 4);
        const r = randomTensor([BATCH, TOKENS, fusion.memoryWidth], 5);
        const [imageArray, maskArray, rArray] = [image, mask, r].map((t) => t.arraySync() as Tokens);
        const loss = (a: tf.Tensor, b: tf.Tensor) => tf.mul(fusion.fuse(a as tf.Tensor3D, b as tf.Tensor3D), r);
        expectNoLeaks(() => {
          expectGradientsMatch(loss, fusion.usesMaskView ? [image, mask] : [image], {
            tolerance: 2e-2,
            eps: 1e-4,
            wrt: fusion.usesMaskView ? [0, 1] : [0],
          });
          const result = referenceGradientCheck(
            fusion,
            () => loss(image, mask),
            (w) => weightedSum(references[type](imageArray!, maskArray!, w), rArray),
            { perWeight: 1 },
          );
          expect(result.maxRelativeError, result.worst).toBeLessThan(1e-3);
        });
        tf.dispose([image, mask, r]);
        disposeWeights(fusion);
      });

      it('has the parameter and multiply-add counts of the stated formulas', () => {
        const fusion = build();
        expect(fusion.countParams()).toBe(expectedParameters(type, SIZES));
        expect((fusion as FusionLayer & { multiplyAdds(): number }).multiplyAdds()).toBe(expectedMultiplyAdds(type, SIZES));
        disposeWeights(fusion);
      });
    });
  });
}
