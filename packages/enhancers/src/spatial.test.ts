import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, ShapeError } from '@s2cpnet/core';
import {
  disposeWeights,
  expectClose,
  expectGradientsMatch,
  expectNoLeaks,
  loadWeights,
  randomizeWeights,
  randomTensor,
  rebuildFromConfig,
  referenceGradientCheck,
  saveWeights,
  testBackends,
  useBackend,
  weightedSum,
  weightGradients,
  WeightTable,
} from '@s2cpnet/core/testing';
import { SpatialEnhancer, registerEnhancerLayers, type SpatialEnhancerArgs } from './index';
import { SpatialEnhancer as SpatialFromSubpath } from './spatial';
import { referenceLowPass, referenceSpatial, type Image } from './testing/fixtures/reference-enhancers';

const BATCH = 2;
const GRID = 4;
const CHANNELS = 8;
const OUTPUT = 6;

/** Parameters (README): C * C_out + C_out (1x1 conv with bias) + 1 (the scalar a). */
const expectedParameters = (c: number, out: number) => c * out + out + 1;

/** The paper's layer and the reference-code switches, at test sizes (7x7 pooling becomes 2x2 on a 4x4 grid). */
const CASES: [string, SpatialEnhancerArgs][] = [
  ['paper', { inputChannels: CHANNELS, outputChannels: OUTPUT }],
  ['reference (2x2 low-pass, a on the max branch, C kept)', { inputChannels: CHANNELS, variant: 'reference', lowPassGrid: 2 }],
  ['paper with a on the foreground branch', { inputChannels: CHANNELS, outputChannels: OUTPUT, alphaBranch: 'foreground' }],
];

function make(args: SpatialEnhancerArgs, seed: number): SpatialEnhancer {
  const layer = new SpatialEnhancer({ ...args, seed });
  layer.ensureBuilt([null, GRID, GRID, CHANNELS]);
  return layer;
}

function outputValues(layer: SpatialEnhancer, x: tf.Tensor4D): number[] {
  const y = layer.enhance(x);
  const values = Array.from(y.dataSync());
  y.dispose();
  return values;
}

describe('SpatialEnhancer configuration', () => {
  it('is the same class on the main entry and the ./spatial subpath', () => {
    expect(SpatialFromSubpath).toBe(SpatialEnhancer);
  });

  it('defaults to the paper and switches every reference-code option with the variant', () => {
    expect(new SpatialEnhancer({ inputChannels: 2048 }).getConfig()).toMatchObject({
      outputChannels: 512,
      lowPassGrid: null,
      alphaBranch: 'background',
      initialAlpha: 0.5,
      variant: 'paper',
    });
    expect(new SpatialEnhancer({ inputChannels: 2048, variant: 'reference' }).getConfig()).toMatchObject({
      outputChannels: 2048,
      lowPassGrid: 7,
      alphaBranch: 'foreground',
    });
  });

  it('rejects bad arguments with ConfigErrors naming them', () => {
    expect(() => new SpatialEnhancer({ inputChannels: -1 })).toThrow(ConfigError);
    expect(() => new SpatialEnhancer({ inputChannels: 8, lowPassGrid: 0 })).toThrow(/SpatialEnhancer\.lowPassGrid/);
    expect(() => new SpatialEnhancer({ inputChannels: 8, alphaBranch: 'max' as never })).toThrow(/SpatialEnhancer\.alphaBranch/);
    expect(() => new SpatialEnhancer({ inputChannels: 8, initialAlpha: Number.NaN })).toThrow(/initialAlpha/);
  });

  it('counts parameters as the README formula says, at test and paper sizes', async () => {
    await useBackend(testBackends()[0]!);
    for (const [c, out] of [
      [CHANNELS, OUTPUT],
      [2048, 512],
      [2048, 2048],
    ] as const) {
      const layer = new SpatialEnhancer({ inputChannels: c, outputChannels: out });
      layer.ensureBuilt([null, null, null, c]);
      expect(layer.countParams()).toBe(expectedParameters(c, out));
      expect(layer.multiplyAdds(14, 14)).toBe(14 * 14 * c * out);
      disposeWeights(layer);
    }
  });
});

for (const backend of testBackends()) {
  describe(`SpatialEnhancer on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
      registerEnhancerLayers();
    });

    describe.each(CASES)('%s', (_name, args) => {
      it('matches Eq. 3-5 computed in float64 (a moved away from 0.5 so that the branch choice matters)', () => {
        const layer = make(args, 1);
        randomizeWeights(layer, 2);
        const x = randomTensor([BATCH, GRID, GRID, CHANNELS], 3) as tf.Tensor4D;
        const [actual, low] = expectNoLeaks(() => {
          const y = layer.enhance(x);
          const l = layer.lowPass(x);
          const broadcastLow = tf.tidy(() => tf.add(l, tf.zerosLike(x)) as tf.Tensor4D); // the global mean is [B,1,1,C]; compare per pixel
          const out = [y.arraySync(), broadcastLow.arraySync()] as const;
          tf.dispose([y, l, broadcastLow]);
          return out;
        });
        const table = WeightTable.of(layer);
        const images = x.arraySync() as Image[];
        const options = { lowPassGrid: layer.lowPassGrid, alphaBranch: layer.alphaBranch };
        expectClose(low.flat(3), images.flatMap((image) => referenceLowPass(image, layer.lowPassGrid).flat(2)));
        expectClose(actual.flat(3), images.flatMap((image) => referenceSpatial(image, table, options).flat(2)));
        expect(actual[0]![0]![0]!.length).toBe(layer.outputChannels);
        x.dispose();
        disposeWeights(layer);
      });

      it('has input and weight gradients (incl. the scalar a) that agree with finite differences', () => {
        const layer = make(args, 4);
        randomizeWeights(layer, 5);
        // Spread 3: channel gaps well above the finite-difference step, so channel min/max keep their argument.
        const x = randomTensor([BATCH, GRID, GRID, CHANNELS], 6, 3);
        const r = randomTensor([BATCH, GRID, GRID, layer.outputChannels], 7);
        const images = x.arraySync() as Image[];
        const weights = r.arraySync();
        const options = { lowPassGrid: layer.lowPassGrid, alphaBranch: layer.alphaBranch };
        expectNoLeaks(() => {
          // Per-element steps (a random direction moves all 256 inputs at once, and some min/max pair would swap).
          expectGradientsMatch((t) => tf.mul(layer.enhance(t as tf.Tensor4D), r), [x], { tolerance: 1e-2, eps: 3e-3, relativeFloor: 1e-2, mode: 'elements', maxElements: 48 });
          const result = referenceGradientCheck(
            layer,
            () => tf.mul(layer.enhance(x as tf.Tensor4D), r),
            (w) => weightedSum(images.map((image) => referenceSpatial(image, w, options)), weights),
          );
          expect(result.maxRelativeError, result.worst).toBeLessThan(1e-3);
          const { gradientMax } = weightGradients(layer, () => tf.mul(layer.enhance(x as tf.Tensor4D), r));
          expect(Object.keys(gradientMax)).toContain('alpha');
          for (const [path, max] of Object.entries(gradientMax)) expect(max, path).toBeGreaterThan(0);
        });
        tf.dispose([x, r]);
        disposeWeights(layer);
      });

      it('round-trips its config and its weights (save by path, load into a rebuilt layer)', async () => {
        const layer = make(args, 8);
        const x = randomTensor([BATCH, GRID, GRID, CHANNELS], 9) as tf.Tensor4D;
        const fresh = rebuildFromConfig(layer);
        fresh.ensureBuilt([null, GRID, GRID, CHANNELS]);
        expect(fresh.getConfig()).toMatchObject({ ...layer.getConfig(), name: fresh.name });
        expect(outputValues(fresh, x)).toEqual(outputValues(layer, x));
        randomizeWeights(layer, 10);
        const expected = outputValues(layer, x);
        const saved = await saveWeights(layer);
        expectNoLeaks(() => loadWeights(fresh, saved));
        expect(outputValues(fresh, x)).toEqual(expected);
        const sameSeed = make(args, 8);
        const otherSeed = make(args, 11);
        expect(outputValues(otherSeed, x)).not.toEqual(outputValues(sameSeed, x));
        x.dispose();
        for (const l of [layer, fresh, sameSeed, otherSeed]) disposeWeights(l);
      });
    });

    it('starts with a = 0.5, where both branch placements agree', () => {
      const background = make({ inputChannels: CHANNELS, outputChannels: OUTPUT }, 21);
      const foreground = make({ inputChannels: CHANNELS, outputChannels: OUTPUT, alphaBranch: 'foreground' }, 21);
      expect(Array.from(background.alpha.read().dataSync())).toEqual([0.5]);
      const x = randomTensor([BATCH, GRID, GRID, CHANNELS], 22) as tf.Tensor4D;
      expectClose(outputValues(foreground, x), outputValues(background, x));
      x.dispose();
      disposeWeights(background);
      disposeWeights(foreground);
    });

    it('reference pooling on a 2x-replicated grid leaves no high-frequency part (spec section 9)', () => {
      // A 2x2 map upsampled to 4x4 by repetition; pooling to 2x2 and upsampling reproduces it, so H = 0 and both
      // gates are sigmoid(0) = 0.5: the output is Conv(0.5 * M5) whatever a is.
      const reference = make({ inputChannels: CHANNELS, variant: 'reference', lowPassGrid: 2 }, 31);
      randomizeWeights(reference, 32);
      expectNoLeaks(() =>
        tf.tidy(() => {
          const small = randomTensor([1, 2, 1, 2, 1, CHANNELS], 33);
          const replicated = tf.reshape(tf.mul(small, tf.ones([1, 1, 2, 1, 2, 1])), [1, 4, 4, CHANNELS]) as tf.Tensor4D;
          const { background, foreground } = reference.saliencyGates(replicated);
          expectClose(background, tf.fill([1, 4, 4, 1], 0.5));
          expectClose(foreground, tf.fill([1, 4, 4, 1], 0.5));
          expectClose(reference.enhance(replicated), reference.outputConv.forward(tf.mul(replicated, 0.5) as tf.Tensor4D));
        }),
      );
      disposeWeights(reference);
    });

    it('names the argument when the grid does not divide into the low-pass grid, or channels are wrong', () => {
      const layer = make({ inputChannels: CHANNELS, lowPassGrid: 3 }, 41);
      const x = tf.zeros([1, GRID, GRID, CHANNELS]) as tf.Tensor4D;
      expect(() => layer.enhance(x)).toThrow(ShapeError);
      expect(() => layer.enhance(x)).toThrow(/grid 4x4 is not a multiple of lowPassGrid 3/);
      const wrong = tf.zeros([1, GRID, GRID, 3]) as tf.Tensor4D;
      expect(() => layer.enhance(wrong)).toThrow(/argument 'features' expected 8 channels, found 3/);
      tf.dispose([x, wrong]);
      disposeWeights(layer);
    });
  });
}
