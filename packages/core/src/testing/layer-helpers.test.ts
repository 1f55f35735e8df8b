import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { FeedForward, LayerNorm, Linear, MultiHeadAttention, sinusoidalTable } from '../nn/index';
import { registerCoreLayers } from '../index';
import { S2Layer } from '../layer';
import {
  WeightTable,
  checkWeightGradients,
  copyWeightsByPath,
  disposeWeights,
  expectClose,
  expectNoLeaks,
  loadWeights,
  namedWeightsOf,
  perturbWeights,
  randomTensor,
  randomTokens,
  randomizeWeights,
  rebuildFromConfig,
  reference64,
  referenceGradientCheck,
  saveWeights,
  testBackends,
  useBackend,
  weightGradients,
  weightedSum,
} from './index';

/** x ↦ x² with a deliberately wrong gradient (3x instead of 2x), to prove the checkers catch it. */
const squareWithWrongGradient = tf.customGrad((...args) => {
  // x is an intermediate here, freed before the backward pass unless saved.
  const [x, save] = args as unknown as [tf.Tensor, tf.GradSaveFunc];
  save([x]);
  return { value: tf.square(x), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.mul(saved[0]!, 3)) };
}) as (x: tf.Tensor) => tf.Tensor;

/** A layer class never passed to `registerLayers`. */
class UnregisteredLayer extends S2Layer {
  static readonly className = 'UnregisteredLayerForTest';
}

const flat = (t: tf.Tensor): number[] => Array.from(t.dataSync());
const valuesOf = (layer: tfl.layers.Layer): number[][] => namedWeightsOf(layer).map((w) => flat(w.variable.read()));

function built<T extends Linear | LayerNorm | FeedForward | MultiHeadAttention>(layer: T, inputDim: number): T {
  layer.ensureBuilt([null, inputDim]);
  return layer;
}

for (const backend of testBackends()) {
  describe(`layer test helpers on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
      registerCoreLayers();
    });

    it('namedWeightsOf uses S2Layer paths (tfjs names otherwise), and WeightTable reads them by path', () => {
      const ff = built(new FeedForward({ dim: 4, hiddenDim: 6, seed: 1 }), 4);
      expect(namedWeightsOf(ff).map((w) => w.path).sort()).toEqual(['inner/bias', 'inner/kernel', 'outer/bias', 'outer/kernel']);
      const dense = tfl.layers.dense({ units: 2 });
      dense.build([null, 3]);
      expect(namedWeightsOf(dense).map((w) => w.path)).toEqual(dense.weights.map((w) => w.originalName));

      const table = WeightTable.of(ff);
      expect(table.linear('inner').kernel).toEqual(ff.inner.kernel.read().arraySync());
      expect(table.scoped('outer').vector('bias')).toEqual(ff.outer.bias!.read().arraySync());
      expect(() => table.vector('inner/gamma')).toThrow(/no weight 'inner\/gamma'; have inner\/kernel/);
      disposeWeights(ff);
      disposeWeights(dense);
    });

    it('randomizeWeights overwrites with seeded values; perturbWeights adds seeded noise to the current ones', () => {
      expectNoLeaks(() => {
        const norm = built(new LayerNorm({ dim: 256, seed: 2 }), 256);
        randomizeWeights(norm, 5);
        const [gamma, beta] = valuesOf(norm) as [number[], number[]];
        const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
        expect(Math.abs(mean(gamma) - 1)).toBeLessThan(0.1);
        expect(Math.sqrt(mean(beta.map((v) => v * v)))).toBeGreaterThan(0.35);
        expect(Math.sqrt(mean(beta.map((v) => v * v)))).toBeLessThan(0.65);
        const other = built(new LayerNorm({ dim: 256, seed: 99 }), 256);
        randomizeWeights(other, 5);
        expect(valuesOf(other)).toEqual(valuesOf(norm));

        const a = built(new Linear({ inputDim: 8, units: 8, seed: 3 }), 8);
        const b = built(new Linear({ inputDim: 8, units: 8, seed: 3 }), 8);
        const before = valuesOf(a);
        perturbWeights(a, 4, 0.01);
        perturbWeights(b, 4, 0.01);
        const after = valuesOf(a);
        expect(after).toEqual(valuesOf(b));
        const changes = after.flatMap((w, i) => w.map((v, j) => v - before[i]![j]!));
        expect(changes.every((d) => Math.abs(d) < 0.06)).toBe(true);
        expect(changes.filter((d) => d !== 0).length).toBe(changes.length);
        [norm, other, a, b].forEach(disposeWeights);
      });
    });

    it('copyWeightsByPath copies by path and rejects a layer with other paths', () => {
      const source = built(new Linear({ inputDim: 3, units: 2, seed: 1 }), 3);
      const target = built(new Linear({ inputDim: 3, units: 2, seed: 2 }), 3);
      const noBias = built(new Linear({ inputDim: 3, units: 2, seed: 3, useBias: false }), 3);
      randomizeWeights(source, 1);
      expect(valuesOf(target)).not.toEqual(valuesOf(source));
      expectNoLeaks(() => copyWeightsByPath(source, target));
      expect(valuesOf(target)).toEqual(valuesOf(source));
      expect(() => copyWeightsByPath(source, noBias)).toThrow(/path sets differ \(1 vs 2/);
      [source, target, noBias].forEach(disposeWeights);
    });

    it('saveWeights, rebuildFromConfig and loadWeights round-trip a layer exactly', async () => {
      const attention = built(new MultiHeadAttention({ dim: 8, numHeads: 2, seed: 3 }), 8);
      randomizeWeights(attention, 4);
      const x = randomTensor([2, 3, 8], 1) as tf.Tensor3D;
      const outputOf = (layer: MultiHeadAttention) => {
        const y = layer.forward(x, x).output;
        const values = flat(y);
        y.dispose();
        return values;
      };
      const expected = outputOf(attention);
      const saved = await saveWeights(attention);
      const copy = rebuildFromConfig(attention);
      expect(copy).toBeInstanceOf(MultiHeadAttention);
      expect(copy.getConfig()['seed']).toBe(3);
      copy.ensureBuilt([null, 8]);
      expect(outputOf(copy)).not.toEqual(expected);
      expectNoLeaks(() => loadWeights(copy, saved));
      expect(outputOf(copy)).toEqual(expected);

      const linear = built(new Linear({ inputDim: 8, units: 8, seed: 1 }), 8);
      expect(() => loadWeights(linear, saved)).toThrow(/paths differ; missing kernel, bias; unexpected query\/kernel/);
      expect(() => rebuildFromConfig(new UnregisteredLayer({ seed: 1 }))).toThrow(/UnregisteredLayerForTest is not registered/);
      x.dispose();
      [attention, copy, linear].forEach(disposeWeights);
    });

    it('randomTokens is seeded and stays in low..vocab-1', () => {
      const a = randomTokens(3, 40, 7, 1);
      const b = randomTokens(3, 40, 7, 1);
      const withPad = randomTokens(3, 40, 7, 2, 0);
      expect(a.dtype).toBe('int32');
      expect(a.shape).toEqual([3, 40]);
      expect(flat(a)).toEqual(flat(b));
      expect(new Set(flat(a))).toEqual(new Set([1, 2, 3, 4, 5, 6]));
      expect(new Set(flat(withPad))).toEqual(new Set([0, 1, 2, 3, 4, 5, 6]));
      tf.dispose([a, b, withPad]);
    });

    it("reference64 blocks match core's Linear, LayerNorm, MultiHeadAttention, FeedForward and sinusoidal table", () => {
      const { readWeights, matrices } = reference64;
      const x = randomTensor([2, 5, 8], 1) as tf.Tensor3D;
      const source = randomTensor([2, 3, 8], 2) as tf.Tensor3D;
      const [xRows, sourceRows] = [matrices(x), matrices(source)];
      const compare = (actual: tf.Tensor, expected: number[][][]) => {
        expectClose(flat(actual), expected.flat(2), 1e-4);
        actual.dispose();
      };

      const linear = built(new Linear({ inputDim: 8, units: 6, seed: 1 }), 8);
      const norm = built(new LayerNorm({ dim: 8, seed: 2 }), 8);
      const ff = built(new FeedForward({ dim: 8, hiddenDim: 12, seed: 3 }), 8);
      const attention = built(new MultiHeadAttention({ dim: 8, numHeads: 2, seed: 4 }), 8);
      [linear, norm, ff, attention].forEach((layer, i) => randomizeWeights(layer, 10 + i));
      compare(linear.forward(x), xRows.map((rows) => reference64.linear(rows, readWeights(linear), '')));
      compare(norm.forward(x), xRows.map((rows) => reference64.layerNorm(rows, readWeights(norm), '')));
      compare(ff.forward(x), xRows.map((rows) => reference64.feedForward(rows, readWeights(ff), '')));

      const cross = attention.forward(x, source, source, { returnAttention: true });
      const crossReference = xRows.map((rows, b) => reference64.attention(rows, sourceRows[b]!, readWeights(attention), '', 2, false));
      compare(cross.output, crossReference.map((r) => r.output));
      compare(cross.attention!, crossReference.flatMap((r) => r.weights));
      const self = attention.forward(x, x, x, { causal: true, returnAttention: true });
      const selfReference = xRows.map((rows) => reference64.attention(rows, rows, readWeights(attention), '', 2, true));
      compare(self.output, selfReference.map((r) => r.output));
      compare(self.attention!, selfReference.flatMap((r) => r.weights));

      const table = sinusoidalTable(6, 8);
      expectClose(
        table,
        Array.from({ length: 6 }, (_, t) => reference64.sinusoid(t, 8)).flat(),
        1e-6,
      );
      expect(reference64.join('', 'kernel')).toBe('kernel');
      expect(reference64.join('layer0', 'kernel')).toBe('layer0/kernel');
      expect(() => reference64.getWeight(readWeights(norm), 'kernel')).toThrow(/no weight 'kernel' \(have gamma, beta\)/);
      tf.dispose([x, source]);
      [linear, norm, ff, attention].forEach(disposeWeights);
    });

    it('weightGradients and referenceGradientCheck agree with a float64 reference and catch a wrong one', () => {
      const linear = built(new Linear({ inputDim: 3, units: 2, seed: 5 }), 3);
      randomizeWeights(linear, 6);
      const x = randomTensor([4, 3], 7);
      const probe = randomTensor([4, 2], 8);
      const [xRows, probeRows] = [x.arraySync() as number[][], probe.arraySync() as number[][]];
      const output = () => tf.mul(linear.forward(x), probe);
      const referenceLoss = (kernelFactor: number) => (w: WeightTable) => {
        const kernel = w.matrix('kernel');
        const bias = w.vector('bias');
        const y = xRows.map((row) => bias.map((b, o) => b + row.reduce((s, v, i) => s + v * kernelFactor * kernel[i]![o]!, 0)));
        return weightedSum(y, probeRows);
      };

      const { gradients, gradientMax } = expectNoLeaks(() => weightGradients(linear, output));
      // d/dW[i][o] of sum(probe ⊙ (xW + b)) = Σ_rows x[r][i] · probe[r][o]
      const expectedKernel = [0, 1, 2].flatMap((i) => [0, 1].map((o) => xRows.reduce((s, row, r) => s + row[i]! * probeRows[r]![o]!, 0)));
      expectClose(gradients['kernel']!, expectedKernel, 1e-5);
      expect(gradientMax['kernel']).toBeCloseTo(Math.max(...expectedKernel.map(Math.abs)), 5);

      const good = expectNoLeaks(() => referenceGradientCheck(linear, output, referenceLoss(1)));
      expect(good.checked).toBe(4 + 2);
      expect(good.maxRelativeError, good.worst).toBeLessThan(1e-4);
      const bad = referenceGradientCheck(linear, output, referenceLoss(2));
      expect(bad.maxRelativeError).toBeGreaterThan(0.3);
      expect(bad.worst).toMatch(/^kernel\[\d\]: numeric .*, analytic /);

      const ff = built(new FeedForward({ dim: 3, hiddenDim: 4, seed: 1 }), 3);
      const innerOnly = weightGradients(ff, () => ff.inner.forward(x));
      expect(innerOnly.gradientMax['outer/kernel']).toBe(0);
      expect(innerOnly.gradientMax['inner/kernel']).toBeGreaterThan(0);
      tf.dispose([x, probe]);
      [linear, ff].forEach(disposeWeights);
    });

    it('checkWeightGradients accepts correct gradients, names unreached weights and catches a wrong gradient', () => {
      const ff = built(new FeedForward({ dim: 4, hiddenDim: 8, seed: 2 }), 4);
      perturbWeights(ff, 3, 0.1);
      const x = randomTensor([3, 4], 4);
      const probe = randomTensor([3, 4], 5);
      const output = () => tf.mul(ff.forward(x), probe);

      for (const mode of ['elements', 'directions'] as const) {
        const result = expectNoLeaks(() => checkWeightGradients(ff, output, { mode }));
        expect(result.unreached).toEqual([]);
        expect(result.checked).toBeGreaterThan(mode === 'elements' ? 4 : 3);
        expect(result.maxRelativeError, `${mode}: ${result.worstPath}`).toBeLessThan(2e-2);
      }
      const before = valuesOf(ff);
      const innerProbe = randomTensor([3, 8], 6);
      const innerOnly = checkWeightGradients(ff, () => tf.mul(ff.inner.forward(x), innerProbe));
      expect(innerOnly.unreached).toEqual(['outer/kernel', 'outer/bias']);
      expect(valuesOf(ff)).toEqual(before);

      const wrong = checkWeightGradients(ff, () => squareWithWrongGradient(ff.forward(x)));
      expect(wrong.maxRelativeError).toBeGreaterThan(0.2);
      tf.dispose([x, probe, innerProbe]);
      disposeWeights(ff);
    });
  });
}
