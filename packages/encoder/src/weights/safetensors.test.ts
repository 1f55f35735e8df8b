import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError, InputError } from '@s2cpnet/core';
import { expectClose, testBackends, useBackend } from '@s2cpnet/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MobileNetV1 } from '../mobilenet-v1';
import { ResNet50 } from '../resnet50';
import { randomizeWeights, seededTensor } from '../testing/helpers';
import { loadSafetensorsWeights, saveSafetensorsWeights } from './load';
import { encodeSafetensors, parseSafetensors, readSafetensors, writeSafetensors, type SafetensorsInput } from './safetensors';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 's2cpnet-safetensors-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Builds a safetensors file by hand: header length, JSON header, data. */
function handMade(header: object, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe('safetensors reader/writer', () => {
  it('round-trips F32, F64, I32, I64 and U8 tensors with metadata; the header is padded to 8 bytes', async () => {
    const tensors: Record<string, SafetensorsInput> = {
      'a.weight': { shape: [2, 3], data: Float32Array.from([1.5, -2, 3.25, 0, 1e-8, -7]) },
      'b.double': { shape: [2], data: Float64Array.from([Math.PI, -1e300]) },
      'c.int': { shape: [3], data: Int32Array.from([-5, 0, 2147483647]) },
      'd.long': { dtype: 'I64', shape: [], data: [9007199254740991] },
      'e.bytes': { shape: [4], data: Uint8Array.from([0, 1, 128, 255]) },
    };
    const file = join(dir, 'round.safetensors');
    await writeSafetensors(file, tensors, { format: 'pt', note: 'hello' });
    const bytes = await readFile(file);
    const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, { dtype: string; data_offsets: number[] }>;
    expect(header['a.weight']).toEqual({ dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
    expect(header['d.long']!.dtype).toBe('I64');
    const st = await readSafetensors(file);
    expect(st.metadata).toEqual({ format: 'pt', note: 'hello' });
    expect([...st.tensors.keys()]).toEqual(Object.keys(tensors));
    expect(Array.from(st.tensors.get('a.weight')!.read())).toEqual([1.5, -2, 3.25, 0, Math.fround(1e-8), -7]);
    expect(Array.from(st.tensors.get('b.double')!.read())).toEqual([Math.PI, -1e300]);
    expect(Array.from(st.tensors.get('c.int')!.read())).toEqual([-5, 0, 2147483647]);
    expect(Array.from(st.tensors.get('d.long')!.read())).toEqual([9007199254740991]);
    expect(st.tensors.get('d.long')!.shape).toEqual([]);
    expect(Array.from(st.tensors.get('e.bytes')!.read())).toEqual([0, 1, 128, 255]);
  });

  it('decodes F16 and BF16 (as float32)', () => {
    const data = new Uint8Array(12);
    const view = new DataView(data.buffer);
    [0x3c00, 0xc000, 0x3555].forEach((h, i) => view.setUint16(2 * i, h, true)); // 1, -2, 0.33325
    [0x3f80, 0xc040, 0x4049].forEach((h, i) => view.setUint16(6 + 2 * i, h, true)); // 1, -3, 3.140625
    const st = parseSafetensors(handMade({ h: { dtype: 'F16', shape: [3], data_offsets: [0, 6] }, b: { dtype: 'BF16', shape: [3], data_offsets: [6, 12] } }, data));
    expectClose(st.tensors.get('h')!.readFloat32(), [1, -2, 0.333251953125], 0);
    expectClose(st.tensors.get('b')!.readFloat32(), [1, -3, 3.140625], 0);
  });

  it('rejects malformed files with an InputError naming the file and the JSON path', () => {
    const bad = (header: object, data = new Uint8Array(8)) => () => parseSafetensors(handMade(header, data), 'bad.safetensors');
    expect(bad({ x: { dtype: 'Q8', shape: [1], data_offsets: [0, 1] } })).toThrow(/bad\.safetensors at \$\["x"\]\.dtype: safetensors: unknown dtype "Q8"/);
    expect(bad({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } })).toThrow(/\$\["x"\]\.data_offsets: .*span 8 bytes but F32 \[3\] needs 12/);
    expect(bad({ x: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } })).toThrow(/fall outside the data section \(8 bytes\)/);
    expect(bad({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } })).toThrow(/\$\["x"\]\.shape/);
    const truncated = handMade({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)).subarray(0, 20);
    expect(() => parseSafetensors(truncated, 't.safetensors')).toThrow(InputError);
    expect(() => parseSafetensors(truncated, 't.safetensors')).toThrow(/header length \d+ exceeds the file/);
    expect(() => encodeSafetensors({ x: { shape: [2], data: [1, 2, 3] } })).toThrow(/has 3 values but shape \[2\] needs 2/);
  });
});

/** torchvision's ResNet50 parameter names for blocks [1,1,1,1], written out independently of the encoder's mapping. */
function torchvisionNames(): { conv: string[]; bn: string[] } {
  const conv = ['conv1'];
  const bn = ['bn1'];
  for (let s = 1; s <= 4; s++) {
    for (const i of [1, 2, 3]) {
      conv.push(`layer${s}.0.conv${i}`);
      bn.push(`layer${s}.0.bn${i}`);
    }
    conv.push(`layer${s}.0.downsample.0`);
    bn.push(`layer${s}.0.downsample.1`);
  }
  return { conv, bn };
}

/** A PyTorch-layout value by formula: weight[o][i][y][x] for conv kernels. */
const torchValue = (salt: number, o: number, i: number, y: number, x: number) => Math.sin(salt * 1.7 + o * 0.9 + i * 0.31 + y * 0.13 + x * 0.07);

for (const backend of testBackends()) {
  describe(`loadSafetensorsWeights on ${backend}`, () => {
    beforeAll(() => useBackend(backend));
    const config = { baseWidth: 2, blocksPerStage: [1, 1, 1, 1] as [number, number, number, number], inputSize: 32, grid: 'native' as const };

    it("maps torchvision names: [out,in,kh,kw] -> [kh,kw,in,out], BN running stats; fc and num_batches_tracked are not needed", async () => {
      const encoder = new ResNet50({ ...config, strideOn: '3x3', seed: 3 });
      const { conv, bn } = torchvisionNames();
      const kernels = [encoder.stem, ...encoder.stages.flatMap((s) => s.flatMap((b) => [b.reduce, b.spatial, b.expand, b.shortcut!]))];
      const tensors: Record<string, SafetensorsInput> = {};
      conv.forEach((name, u) => {
        const [kh, kw, ci, co] = kernels[u]!.conv.kernel.shape as number[];
        const data = new Float32Array(co! * ci! * kh! * kw!);
        for (let o = 0; o < co!; o++) for (let i = 0; i < ci!; i++) for (let y = 0; y < kh!; y++) for (let x = 0; x < kw!; x++) data[((o * ci! + i) * kh! + y) * kw! + x] = torchValue(u, o, i, y, x);
        tensors[`${name}.weight`] = { shape: [co!, ci!, kh!, kw!], data };
        const c = co!;
        tensors[`${bn[u]}.weight`] = { shape: [c], data: Float32Array.from({ length: c }, (_, k) => 1 + 0.1 * k + u) };
        tensors[`${bn[u]}.bias`] = { shape: [c], data: Float32Array.from({ length: c }, (_, k) => -0.1 * k - u) };
        tensors[`${bn[u]}.running_mean`] = { shape: [c], data: Float32Array.from({ length: c }, (_, k) => 0.01 * k + u) };
        tensors[`${bn[u]}.running_var`] = { shape: [c], data: Float32Array.from({ length: c }, (_, k) => 1 + 0.02 * k + u) };
        tensors[`${bn[u]}.num_batches_tracked`] = { dtype: 'I64', shape: [], data: [1234] };
      });
      tensors['fc.weight'] = { shape: [10, 64], data: Float32Array.from({ length: 640 }, (_, k) => Math.cos(k)) };
      tensors['fc.bias'] = { shape: [10], data: Float32Array.from({ length: 10 }, (_, k) => k) };
      const file = join(dir, 'torchvision.safetensors');
      await writeSafetensors(file, tensors);

      const report = await loadSafetensorsWeights(encoder, file);
      expect(report.scheme).toBe('torchvision ResNet50');
      expect(report.unusedKeys).toEqual([]);
      expect(report.classifierLoaded).toBe(false);
      kernels.forEach((unit, u) => {
        const [kh, kw, ci, co] = unit.conv.kernel.shape as number[];
        const k = unit.conv.kernel.read().dataSync();
        for (let y = 0; y < kh!; y++) for (let x = 0; x < kw!; x++) for (let i = 0; i < ci!; i++) for (let o = 0; o < co!; o++) {
          expect(k[((y * kw! + x) * ci! + i) * co! + o]).toBe(Math.fround(torchValue(u, o, i, y, x)));
        }
        expectClose(unit.bn.movingVariance.read(), tensors[`${bn[u]}.running_var`]!.data as Float32Array, 0);
        expectClose(unit.bn.gamma.read(), tensors[`${bn[u]}.weight`]!.data as Float32Array, 0);
      });

      // With a classifier head kept, fc is loaded (transposed from [K, C] to [C, K]).
      const headed = new ResNet50({ ...config, strideOn: '3x3', classifierClasses: 10 });
      expect((await loadSafetensorsWeights(headed, file)).classifierLoaded).toBe(true);
      const head = headed.classifierHead!.kernel.read().dataSync();
      expect(head[5 * 10 + 3]).toBe(Math.fround(Math.cos(3 * 64 + 5))); // kernel[c=5][k=3] = fc.weight[3][5]

      // torchvision weights put the stride on the 3x3: a '1x1' encoder is refused.
      const wrongStride = new ResNet50({ ...config, strideOn: '1x1' });
      await expect(loadSafetensorsWeights(wrongStride, file)).rejects.toThrow(CheckpointError);
      [encoder, headed, wrongStride].forEach((e) => e.dispose());
    });

    const roundTrips: [string, () => ResNet50 | MobileNetV1][] = [
      ['ResNet50 (stride on 3x3, with head)', () => new ResNet50({ ...config, strideOn: '3x3', classifierClasses: 4, seed: 1 })],
      ['ResNet50 (stride on 1x1)', () => new ResNet50({ ...config, strideOn: '1x1', seed: 1 })],
      ['MobileNetV1 (with head)', () => new MobileNetV1({ width: 0.25, inputSize: 32, grid: 'native', classifierClasses: 3, seed: 1 })],
    ];
    for (const [name, make] of roundTrips) {
      it(`saveSafetensorsWeights -> loadSafetensorsWeights keeps the outputs of ${name}`, async () => {
        const source = make();
        randomizeWeights(source, 8);
        const file = join(dir, `${name.replace(/\W+/g, '-')}.safetensors`);
        await saveSafetensorsWeights(source, file);
        const target = make();
        randomizeWeights(target, 9);
        const report = await loadSafetensorsWeights(target, file);
        expect(report.unusedKeys).toEqual([]);
        const x = seededTensor([2, 32, 32, 3], 10) as tf.Tensor4D;
        expectClose(target.encode(x), source.encode(x), 0);
        if (source.classifierHead) expectClose(target.classify(x), source.classify(x), 0);
        x.dispose();
        source.dispose();
        target.dispose();
      });
    }
  });
}
