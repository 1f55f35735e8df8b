import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError, InputError } from '@s2cpnet/core';
import { expectClose, testBackends, useBackend } from '@s2cpnet/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { ResNet50 } from '../resnet50';
import { FIXTURES, seededTensor, weightValues } from '../testing/helpers';
import { addRef, batchNormRef, conv2dRef, maxPoolRef, reluRef, toArray64, type Array64 } from '../testing/reference';
import { readHdf5, type Hdf5Dataset, type Hdf5File } from './hdf5';
import { loadKerasHdf5Weights } from './load';

const NEW_NAMES = gunzipSync(readFileSync(join(FIXTURES, 'keras-resnet-tiny.h5.gz')));
const OLD_NAMES = gunzipSync(readFileSync(join(FIXTURES, 'keras-resnet-tiny-oldnames.h5.gz')));
/** The architecture of the fixture (see fixtures/make_fixtures.py). */
const TINY_KERAS = { strideOn: '1x1', baseWidth: 2, blocksPerStage: [2, 1, 1, 1], inputSize: 32, grid: 'native' } as const;

function raw(h5: Hdf5File, layer: string, weight: string): Array64 {
  const d = h5.get(`${layer}/${layer}/${weight}:0`) as Hdf5Dataset;
  return { data: Float64Array.from(d.readFloat32()), shape: [...d.shape] };
}

/** Keras' ResNet50 computed in float64 straight from the file: conv WITH its bias, then BN with the file's statistics. */
function kerasResNetRef(h5: Hdf5File, x: Array64): Array64 {
  const unit = (v: Array64, name: string, stride: number, pad: number, relu: boolean) => {
    const conv = `${name}_conv`;
    const bn = `${name}_bn`;
    const z = conv2dRef(v, raw(h5, conv, 'kernel'), stride, pad, { bias: raw(h5, conv, 'bias').data });
    const y = batchNormRef(z, { gamma: raw(h5, bn, 'gamma').data, beta: raw(h5, bn, 'beta').data, mean: raw(h5, bn, 'moving_mean').data, variance: raw(h5, bn, 'moving_variance').data, epsilon: 1.001e-5 });
    return relu ? reluRef(y) : y;
  };
  let y = maxPoolRef(unit(x, 'conv1', 2, 3, true), 3, 2, 1);
  TINY_KERAS.blocksPerStage.forEach((count, s) => {
    for (let b = 1; b <= count; b++) {
      const prefix = `conv${s + 2}_block${b}`;
      const stride = b === 1 && s > 0 ? 2 : 1;
      const main = unit(unit(unit(y, `${prefix}_1`, stride, 0, true), `${prefix}_2`, 1, 1, true), `${prefix}_3`, 1, 0, false);
      const skip = b === 1 ? unit(y, `${prefix}_0`, stride, 0, false) : y;
      y = reluRef(addRef(main, skip));
    }
  });
  return y;
}

for (const backend of testBackends()) {
  describe(`loadKerasHdf5Weights on ${backend}`, () => {
    beforeAll(() => useBackend(backend));

    it("maps every Keras layer (new names), folds conv biases into the BN mean, and reproduces Keras' forward pass", async () => {
      const encoder = new ResNet50({ ...TINY_KERAS, seed: 1 });
      const report = await loadKerasHdf5Weights(encoder, NEW_NAMES);
      expect(report.scheme).toBe('Keras ResNet50 (new layer names)');
      expect(report.assignedVariables).toBe(20 * 5); // 20 conv+BN units x (kernel, gamma, beta, mean, variance)
      expect(report.unusedKeys).toEqual([]);
      const h5 = await readHdf5(NEW_NAMES);
      expectClose(encoder.stem.conv.kernel.read(), raw(h5, 'conv1_conv', 'kernel').data, 0);
      const spatial = encoder.stages[0]![1]!.spatial;
      expectClose(spatial.bn.movingMean.read(), raw(h5, 'conv2_block2_2_bn', 'moving_mean').data.map((m, i) => m - raw(h5, 'conv2_block2_2_conv', 'bias').data[i]!), 1e-7);
      expectClose(spatial.bn.gamma.read(), raw(h5, 'conv2_block2_2_bn', 'gamma').data, 0);

      const x = seededTensor([2, 32, 32, 3], 3) as tf.Tensor4D;
      const expected = kerasResNetRef(h5, toArray64(x));
      expect(expected.shape).toEqual([2, 1, 1, 64]);
      const y = encoder.encode(x);
      expectClose(y, expected.data, { atol: 1e-5, rtol: 1e-4 });
      tf.dispose([x, y]);
      encoder.dispose();
    });

    it('the old Keras names (conv1, bn_conv1, res2a_branch2a, ...) load the same weights', async () => {
      const a = new ResNet50({ ...TINY_KERAS, seed: 1 });
      const b = new ResNet50({ ...TINY_KERAS, seed: 2 });
      await loadKerasHdf5Weights(a, NEW_NAMES);
      const report = await loadKerasHdf5Weights(b, OLD_NAMES);
      expect(report.scheme).toBe('Keras ResNet50 (old layer names)');
      const va = weightValues(a);
      for (const [path, values] of weightValues(b)) expectClose(values, va.get(path)!, 0);
      a.dispose();
      b.dispose();
    });
  });
}

describe('loadKerasHdf5Weights errors', () => {
  beforeAll(() => useBackend('cpu'));

  it("refuses an encoder with the stride on the 3x3 (Keras' weights have it on the 1x1)", async () => {
    const encoder = new ResNet50({ ...TINY_KERAS, strideOn: '3x3' });
    await expect(loadKerasHdf5Weights(encoder, NEW_NAMES)).rejects.toThrow(/stride on the 1x1 conv, but the encoder has strideOn '3x3'/);
    // ... unless told that the file differs.
    await expect(loadKerasHdf5Weights(encoder, NEW_NAMES, { checkStridePlacement: false })).resolves.toMatchObject({ assignedVariables: 100 });
    encoder.dispose();
  });

  it('a file that does not fit lists the mismatches and leaves the encoder unchanged', async () => {
    const encoder = new ResNet50({ ...TINY_KERAS, baseWidth: 4 });
    const before = weightValues(encoder);
    let error: unknown;
    try {
      await loadKerasHdf5Weights(encoder, NEW_NAMES);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CheckpointError);
    expect((error as Error).message).toMatch(/'conv1_conv\/kernel' has shape \[7, 7, 3, 2\], the encoder expects \[7, 7, 3, 4\]/);
    for (const [path, values] of weightValues(encoder)) expectClose(values, before.get(path)!, 0);
    const deeper = new ResNet50({ ...TINY_KERAS, blocksPerStage: [3, 1, 1, 1] });
    await expect(loadKerasHdf5Weights(deeper, NEW_NAMES)).rejects.toThrow(/missing 'conv2_block3_1_conv\/kernel'/);
    const headed = new ResNet50({ ...TINY_KERAS, classifierClasses: 10 });
    await expect(loadKerasHdf5Weights(headed, NEW_NAMES)).rejects.toThrow(/missing 'predictions\/kernel or fc1000\/kernel \(classifier head/);
    [encoder, deeper, headed].forEach((e) => e.dispose());
  });

  it('a truncated, corrupt or non-HDF5 file gives an InputError naming the file and leaves the encoder unchanged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 's2cpnet-keras-'));
    try {
      const encoder = new ResNet50({ ...TINY_KERAS, seed: 1 });
      const before = weightValues(encoder);
      const truncated = join(dir, 'truncated.h5');
      writeFileSync(truncated, NEW_NAMES.subarray(0, 150_000));
      const corrupt = join(dir, 'corrupt.h5');
      const flipped = new Uint8Array(NEW_NAMES);
      flipped.fill(0x5a, 2048, 4096); // object headers and heaps near the start of the file
      writeFileSync(corrupt, flipped);
      const text = join(dir, 'not-hdf5.h5');
      writeFileSync(text, 'this is not an HDF5 file\n'.repeat(100));
      for (const [file, cause] of [
        [truncated, /truncated file: eof = 150000/],
        [corrupt, /HDF5: \S/],
        [text, /HDF5: not an HDF5 file/],
      ] as const) {
        let error: unknown;
        try {
          await loadKerasHdf5Weights(encoder, file);
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(InputError);
        expect((error as Error).message.startsWith(`${file}: `)).toBe(true);
        expect((error as Error).message).toMatch(cause);
      }
      await expect(loadKerasHdf5Weights(encoder, NEW_NAMES.subarray(0, 150_000))).rejects.toThrow(/^<HDF5 bytes>: HDF5: .*truncated file/);
      for (const [path, values] of weightValues(encoder)) expectClose(values, before.get(path)!, 0);
      encoder.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
