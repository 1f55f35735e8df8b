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
import { SemanticEnhancer, registerEnhancerLayers } from './index';
import { SemanticEnhancer as SemanticFromSubpath } from './semantic';
import { referenceSemantic, referenceSemanticGate, type Image } from './testing/fixtures/reference-enhancers';

const BATCH = 2;
const GRID = 4;
const CHANNELS = 8;
const REDUCTION = 2; // hidden width 4: enough units that some ReLU is active for random weights

/** Parameters (README): 2 C^2/r + C/r + C, plus C^2 + C with the reference output conv. */
const expectedParameters = (c: number, r: number, outputConv: boolean) =>
  2 * c * Math.floor(c / r) + Math.floor(c / r) + c + (outputConv ? c * c + c : 0);

function outputValues(layer: SemanticEnhancer, x: tf.Tensor4D): number[] {
  const y = layer.enhance(x);
  const values = Array.from(y.dataSync());
  y.dispose();
  return values;
}

function make(variant: 'paper' | 'reference', seed: number): SemanticEnhancer {
  const layer = new SemanticEnhancer({ channels: CHANNELS, reduction: REDUCTION, variant, seed });
  layer.ensureBuilt([null, GRID, GRID, CHANNELS]);
  return layer;
}

describe('SemanticEnhancer configuration', () => {
  it('is the same class on the main entry and the ./semantic subpath', () => {
    expect(SemanticFromSubpath).toBe(SemanticEnhancer);
  });

  it('defaults to the paper (reduction 16, no output conv) and the reference variant adds the output conv', () => {
    const paper = new SemanticEnhancer({ channels: 2048 });
    expect(paper.getConfig()).toMatchObject({ channels: 2048, reduction: 16, variant: 'paper', outputConv: false });
    expect(paper.hiddenChannels).toBe(128);
    expect(new SemanticEnhancer({ channels: 2048, variant: 'reference' }).useOutputConv).toBe(true);
    expect(new SemanticEnhancer({ channels: 2048, variant: 'reference', outputConv: false }).useOutputConv).toBe(false);
  });

  it('rejects bad arguments with ConfigErrors naming them', () => {
    expect(() => new SemanticEnhancer({ channels: 0 })).toThrow(ConfigError);
    expect(() => new SemanticEnhancer({ channels: 64, reduction: 1.5 })).toThrow(/SemanticEnhancer\.reduction: expected an integer >= 1, found 1.5/);
    expect(() => new SemanticEnhancer({ channels: 64, variant: 'code' as never })).toThrow(/SemanticEnhancer\.variant/);
  });

  it('counts parameters as the README formula says, at test and paper sizes', async () => {
    await useBackend(testBackends()[0]!);
    for (const [c, r, variant] of [
      [CHANNELS, REDUCTION, 'paper'],
      [CHANNELS, REDUCTION, 'reference'],
      [2048, 16, 'paper'],
    ] as const) {
      const layer = new SemanticEnhancer({ channels: c, reduction: r, variant });
      layer.ensureBuilt([null, null, null, c]);
      expect(layer.countParams()).toBe(expectedParameters(c, r, variant === 'reference'));
      expect(layer.multiplyAdds(14, 14)).toBe(2 * c * Math.floor(c / r) + (variant === 'reference' ? 14 * 14 * c * c : 0));
      disposeWeights(layer);
    }
  });
});

for (const backend of testBackends()) {
  describe(`SemanticEnhancer on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
      registerEnhancerLayers();
    });

    describe.each(['paper', 'reference'] as const)('%s variant', (variant) => {
      it('matches Eq. 1-2 computed in float64', () => {
        const layer = make(variant, 1);
        randomizeWeights(layer, 2);
        const x = randomTensor([BATCH, GRID, GRID, CHANNELS], 3) as tf.Tensor4D;
        const [actual, gate] = expectNoLeaks(() => {
          const y = layer.enhance(x);
          const w = layer.channelGate(x);
          const out = [y.arraySync(), w.arraySync()] as const;
          tf.dispose([y, w]);
          return out;
        });
        const table = WeightTable.of(layer);
        const images = x.arraySync() as Image[];
        expect(gate[0]!.length).toBe(1);
        expectClose(gate.flat(3), images.flatMap((image) => referenceSemanticGate(image, table)));
        expectClose(actual.flat(3), images.flatMap((image) => referenceSemantic(image, table, variant === 'reference').flat(2)));
        x.dispose();
        disposeWeights(layer);
      });

      it('has input and weight gradients that agree with finite differences', () => {
        const layer = make(variant, 4);
        randomizeWeights(layer, 5);
        const x = randomTensor([BATCH, GRID, GRID, CHANNELS], 6);
        const channelsOut = layer.outputChannels;
        const r = randomTensor([BATCH, GRID, GRID, channelsOut], 7);
        const images = x.arraySync() as Image[];
        const weights = r.arraySync();
        expectNoLeaks(() => {
          expectGradientsMatch((t) => tf.mul(layer.enhance(t as tf.Tensor4D), r), [x], { tolerance: 1e-2, eps: 1e-3 });
          const result = referenceGradientCheck(
            layer,
            () => tf.mul(layer.enhance(x as tf.Tensor4D), r),
            (w) => weightedSum(images.map((image) => referenceSemantic(image, w, variant === 'reference')), weights),
          );
          expect(result.maxRelativeError, result.worst).toBeLessThan(1e-3);
          const { gradientMax } = weightGradients(layer, () => tf.mul(layer.enhance(x as tf.Tensor4D), r));
          for (const [path, max] of Object.entries(gradientMax)) expect(max, path).toBeGreaterThan(0);
        });
        tf.dispose([x, r]);
        disposeWeights(layer);
      });

      it('round-trips its config and its weights (save by path, load into a rebuilt layer)', async () => {
        const layer = make(variant, 8);
        const x = randomTensor([BATCH, GRID, GRID, CHANNELS], 9) as tf.Tensor4D;
        const fresh = rebuildFromConfig(layer);
        fresh.ensureBuilt([null, GRID, GRID, CHANNELS]);
        expect(fresh.getConfig()).toMatchObject({ ...layer.getConfig(), name: fresh.name });
        expect(outputValues(fresh, x)).toEqual(outputValues(layer, x)); // same seed, same weights
        randomizeWeights(layer, 10);
        const expected = outputValues(layer, x);
        expect(outputValues(fresh, x)).not.toEqual(expected);
        const saved = await saveWeights(layer);
        expectNoLeaks(() => loadWeights(fresh, saved));
        expect(outputValues(fresh, x)).toEqual(expected);
        const sameSeed = make(variant, 8);
        const otherSeed = make(variant, 11);
        expect(outputValues(otherSeed, x)).not.toEqual(outputValues(sameSeed, x));
        x.dispose();
        for (const l of [layer, fresh, sameSeed, otherSeed]) disposeWeights(l);
      });

      it('names the argument on a wrong input shape', () => {
        const layer = make(variant, 12);
        const wrong = tf.zeros([1, GRID, GRID, CHANNELS + 1]) as tf.Tensor4D;
        expect(() => layer.enhance(wrong)).toThrow(ShapeError);
        expect(() => layer.enhance(wrong)).toThrow(/argument 'features' expected 8 channels, found 9/);
        wrong.dispose();
        disposeWeights(layer);
      });
    });
  });
}
