/**
 * The building blocks of CVFF against spec section 5 (and the section 9 variants) computed independently in
 * float64 TypeScript, their gradients against finite differences, and their weight bookkeeping.
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
import { BottleneckMergeBlock, CoarseGate, CrossViewUnit, ReferenceCoarseGate, ResidualMergeBlock } from './index';
import {
  referenceBottleneckMerge,
  referenceGate,
  referenceResidualMerge,
  referenceUnit,
  type Variant,
} from './testing/fixtures/reference-fusion';
import type { Matrix, Tokens } from './testing/fixtures/reference-math';

const BATCH = 2;
const TOKENS = 4; // grid 2
const DIM = 8;
const HEADS = 2;

const perSample = <T>(batch: Tokens, other: Tokens, fn: (a: Matrix, b: Matrix) => T): T[] => batch.map((a, i) => fn(a, other[i]!));

for (const backend of testBackends()) {
  describe(`CVFF components on ${backend}`, () => {
    beforeAll(() => useBackend(backend));

    describe.each<[Variant, typeof CoarseGate | typeof ReferenceCoarseGate]>([
      ['paper', CoarseGate],
      ['reference', ReferenceCoarseGate],
    ])('%s coarse gate', (variant, Gate) => {
      it('matches the equation (weights and fused map)', () => {
        const gate = new Gate({ dim: DIM, seed: 3 });
        const v1 = randomTensor([BATCH, TOKENS, DIM], 1) as tf.Tensor3D;
        const v2 = randomTensor([BATCH, TOKENS, DIM], 2) as tf.Tensor3D;
        gate.ensureBuilt([null, 2 * DIM]);
        randomizeWeights(gate, 10);
        const { weights, fused } = expectNoLeaks(() => {
          const g = gate.gateWeights(v1, v2);
          const f = gate.forward(v1, v2);
          const out = { weights: [g.image.arraySync(), g.mask.arraySync()], fused: f.arraySync() };
          tf.dispose([g.image, g.mask, f]);
          return out;
        });
        const w = WeightTable.of(gate);
        const expected = perSample(v1.arraySync(), v2.arraySync(), (a, b) => referenceGate(a, b, w, variant));
        expectClose(weights[0]!.flat(2), expected.flatMap((e) => e.imageWeights));
        expectClose(weights[1]!.flat(2), expected.flatMap((e) => e.maskWeights));
        expectClose(fused.flat(2), expected.flatMap((e) => e.fused.flat()));
        if (variant === 'reference') {
          // softmax gate: the two weights of a token sum to one
          const sums = (weights[0]!.flat(2) as number[]).map((g1, i) => g1 + (weights[1]!.flat(2) as number[])[i]!);
          expectClose(sums, sums.map(() => 1));
        }
        tf.dispose([v1, v2]);
        disposeWeights(gate);
      });

      it('has gradients that agree with finite differences', () => {
        const gate = new Gate({ dim: DIM, seed: 4 });
        const v1 = randomTensor([BATCH, TOKENS, DIM], 5);
        const v2 = randomTensor([BATCH, TOKENS, DIM], 6);
        const r = randomTensor([BATCH, TOKENS, DIM], 7);
        gate.ensureBuilt([null, 2 * DIM]);
        randomizeWeights(gate, 11);
        const [a, b, weights] = [v1.arraySync() as Tokens, v2.arraySync() as Tokens, r.arraySync()];
        expectNoLeaks(() => {
          expectGradientsMatch((x, y) => tf.mul(gate.forward(x as tf.Tensor3D, y as tf.Tensor3D), r), [v1, v2], { tolerance: 1e-2, eps: 1e-2 });
          const result = referenceGradientCheck(
            gate,
            () => tf.mul(gate.forward(v1 as tf.Tensor3D, v2 as tf.Tensor3D), r),
            (w) => weightedSum(perSample(a, b, (x, y) => referenceGate(x, y, w, variant).fused), weights),
          );
          expect(result.maxRelativeError, result.worst).toBeLessThan(1e-3);
        });
        tf.dispose([v1, v2, r]);
        disposeWeights(gate);
      });
    });

    describe.each<Variant>(['paper', 'reference'])('%s CVFF unit', (variant) => {
      const makeUnit = (seed: number) => {
        const unit = new CrossViewUnit({ dim: DIM, heads: HEADS, hiddenDim: 2 * DIM, dropout: 0.1, variant, seed });
        unit.ensureBuilt([null, DIM]);
        randomizeWeights(unit, seed + 100);
        return unit;
      };

      it('matches the equations incl. multi-head attention, inference mode', () => {
        const unit = makeUnit(21);
        const v1 = randomTensor([BATCH, TOKENS, DIM], 22) as tf.Tensor3D;
        const v2 = randomTensor([BATCH, TOKENS, DIM], 23) as tf.Tensor3D;
        const [image, mask] = expectNoLeaks(() => {
          const out = unit.forward(v1, v2);
          const arrays = out.map((t) => t.arraySync());
          tf.dispose(out);
          return arrays;
        });
        const w = WeightTable.of(unit);
        const expected = perSample(v1.arraySync(), v2.arraySync(), (a, b) => referenceUnit(a, b, w, HEADS, variant));
        expectClose(image!.flat(2), expected.flatMap((e) => e[0].flat()));
        expectClose(mask!.flat(2), expected.flatMap((e) => e[1].flat()));
        tf.dispose([v1, v2]);
        disposeWeights(unit);
      });

      it('has input and weight gradients that agree with finite differences', () => {
        const unit = makeUnit(31);
        const v1 = randomTensor([BATCH, TOKENS, DIM], 32);
        const v2 = randomTensor([BATCH, TOKENS, DIM], 33);
        const r1 = randomTensor([BATCH, TOKENS, DIM], 34);
        const r2 = randomTensor([BATCH, TOKENS, DIM], 35);
        const loss = (a: tf.Tensor, b: tf.Tensor) => {
          const [x, y] = unit.forward(a as tf.Tensor3D, b as tf.Tensor3D);
          return tf.add(tf.sum(tf.mul(x, r1)), tf.sum(tf.mul(y, r2)));
        };
        const [a, b, w1, w2] = [v1, v2, r1, r2].map((t) => t.arraySync() as Tokens);
        expectNoLeaks(() => {
          // Small steps: softmax attention and the FFN's ReLUs are strongly curved at these random weights.
          expectGradientsMatch(loss, [v1, v2], { tolerance: 1e-2, eps: 3e-4 });
          const result = referenceGradientCheck(
            unit,
            () => loss(v1, v2),
            (w) => {
              const views = perSample(a!, b!, (x, y) => referenceUnit(x, y, w, HEADS, variant));
              return weightedSum(views.map((v) => v[0]), w1) + weightedSum(views.map((v) => v[1]), w2);
            },
            { perWeight: 2 },
          );
          expect(result.checked).toBeGreaterThan(40);
          expect(result.maxRelativeError, result.worst).toBeLessThan(1e-3);
        });
        tf.dispose([v1, v2, r1, r2]);
        disposeWeights(unit);
      });

      it('applies seeded dropout in training mode only', () => {
        const unit = makeUnit(41);
        const v1 = randomTensor([BATCH, TOKENS, DIM], 42) as tf.Tensor3D;
        const v2 = randomTensor([BATCH, TOKENS, DIM], 43) as tf.Tensor3D;
        expectNoLeaks(() => {
          const run = (options?: { training: boolean; dropoutSeed: number }) => {
            const out = unit.forward(v1, v2, options);
            const values = Array.from(out[0].dataSync());
            tf.dispose(out);
            return values;
          };
          const inference = run();
          const trainingA = run({ training: true, dropoutSeed: 1 });
          const trainingA2 = run({ training: true, dropoutSeed: 1 });
          const trainingB = run({ training: true, dropoutSeed: 2 });
          expect(trainingA).toEqual(trainingA2);
          expect(trainingA).not.toEqual(trainingB);
          expect(trainingA).not.toEqual(inference);
        });
        tf.dispose([v1, v2]);
        disposeWeights(unit);
      });
    });

    describe.each<[string, typeof ResidualMergeBlock | typeof BottleneckMergeBlock, typeof referenceResidualMerge]>([
      ['ResBlock (paper)', ResidualMergeBlock, referenceResidualMerge],
      ['bottleneck (reference)', BottleneckMergeBlock, referenceBottleneckMerge],
    ])('%s merge block', (_name, Block, reference) => {
      const CHANNELS = 8;
      const GRID = 3;

      it('matches the equation in inference mode', () => {
        const block = new Block({ channels: CHANNELS, seed: 51 });
        block.ensureBuilt([null, GRID, GRID, CHANNELS]);
        randomizeWeights(block, 52);
        const x = randomTensor([BATCH, GRID, GRID, CHANNELS], 53) as tf.Tensor4D;
        const actual = expectNoLeaks(() => {
          const y = block.forward(x);
          const values = y.arraySync();
          y.dispose();
          return values;
        });
        const w = WeightTable.of(block);
        const expected = x.arraySync().map((image) => reference(image, w));
        expectClose(actual.flat(3), expected.flat(3));
        x.dispose();
        disposeWeights(block);
      });

      it('has gradients that agree with finite differences (inference mode)', () => {
        const block = new Block({ channels: CHANNELS, seed: 61 });
        block.ensureBuilt([null, GRID, GRID, CHANNELS]);
        randomizeWeights(block, 62);
        const x = randomTensor([BATCH, GRID, GRID, CHANNELS], 63);
        const r = randomTensor([BATCH, GRID, GRID, CHANNELS], 64);
        const [images, weights] = [x.arraySync() as number[][][][], r.arraySync()];
        expectNoLeaks(() => {
          // Small steps so that the ReLU kinks are rarely crossed.
          expectGradientsMatch((t) => tf.mul(block.forward(t as tf.Tensor4D), r), [x], { tolerance: 1e-2, eps: 1e-4 });
          const result = referenceGradientCheck(
            block,
            () => tf.mul(block.forward(x as tf.Tensor4D), r),
            (w) => weightedSum(images.map((image) => reference(image, w)), weights),
          );
          expect(result.maxRelativeError, result.worst).toBeLessThan(1e-3);
        });
        tf.dispose([x, r]);
        disposeWeights(block);
      });

      it('uses batch statistics in training mode and updates the moving averages', () => {
        const block = new Block({ channels: CHANNELS, seed: 71 });
        block.ensureBuilt([null, GRID, GRID, CHANNELS]);
        randomizeWeights(block, 72);
        const x = randomTensor([BATCH, GRID, GRID, CHANNELS], 73) as tf.Tensor4D;
        const movingMean = () => block.namedWeights().filter((n) => n.path.endsWith('moving_mean')).map((n) => Array.from(n.variable.read().dataSync()));
        const before = movingMean();
        expectNoLeaks(() => {
          const inference = block.forward(x);
          const training = block.forward(x, { training: true });
          expect(Array.from(training.dataSync())).not.toEqual(Array.from(inference.dataSync()));
          tf.dispose([inference, training]);
        });
        expect(movingMean()).not.toEqual(before);
        x.dispose();
        disposeWeights(block);
      });
    });
  });
}
