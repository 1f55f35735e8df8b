import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '@s2cpnet/core';
import { describe, expect, it } from 'vitest';
import { FIXTURES } from '../testing/helpers';
import { parseHdf5, readHdf5, type Hdf5Dataset, type Hdf5Group } from './hdf5';

/** The fixture formula (see fixtures/make_fixtures.py): value[i] = offset + scale * sin(salt * 0.7 + i * 0.37). */
function expectedValues(dataset: Hdf5Dataset): number[] {
  const { salt, offset, scale } = dataset.attributes as { salt: number; offset: number; scale: number };
  return Array.from({ length: dataset.size }, (_, i) => offset + scale * Math.sin(salt * 0.7 + i * 0.37));
}

function castLike(dtype: string, v: number): number {
  if (dtype === 'float32') return Math.fround(v);
  if (dtype === 'int32') return Math.trunc(v);
  return v;
}

const VARIANTS: [string, number][] = [
  ['variants-sb0.h5', 0],
  ['variants-sb2.h5', 2],
  ['variants-sb3.h5', 3],
];

describe('readHdf5', () => {
  for (const [file, superblock] of VARIANTS) {
    describe(`${file} (superblock v${superblock})`, async () => {
      const h5 = await readHdf5(join(FIXTURES, file));

      it('reads the superblock version and the root attributes (vlen string, fixed strings, int64, float32 array)', () => {
        expect(h5.superblockVersion).toBe(superblock);
        expect(h5.root.attributes).toEqual({ title: 'layout variants', labels: ['alpha', 'beta', 'gamma'], count: 3, weights: [0.5, -1.25, 2] });
      });

      it('lists groups and finds nested datasets by path', () => {
        expect([...h5.root.children().keys()].sort()).toEqual(['chunked', 'compact', 'plain']);
        const leaf = h5.get('/chunked/nested/deeper/leaf');
        expect(leaf?.kind).toBe('dataset');
        expect((leaf as Hdf5Dataset).path).toBe('/chunked/nested/deeper/leaf');
        expect(h5.get('chunked/nested')?.kind).toBe('group');
        expect(h5.get('chunked/missing')).toBeUndefined();
        expect(h5.root.datasets()).toHaveLength(12);
      });

      const cases: [string, number[], string, number][] = [
        ['plain/contiguous_f32', [3, 4], 'float32', 0],
        ['plain/contiguous_f64', [5], 'float64', 1e-15],
        ['plain/big_endian_f32', [2, 3], 'float32', 0],
        ['plain/int32', [4], 'int32', 0],
        ['plain/float16', [6], 'float16', 1e-3],
        ['plain/scalar', [], 'float32', 0],
        ['chunked/gzip_shuffle', [10, 7], 'float32', 0],
        ['chunked/gzip_single', [5, 5], 'float32', 0],
        ['chunked/uncompressed', [6, 6, 2], 'float32', 0],
        ['chunked/fletcher', [9], 'float32', 0],
        ['compact', [4], 'float32', 0],
      ];
      for (const [path, shape, dtype, tolerance] of cases) {
        it(`decodes ${path} (${dtype} ${JSON.stringify(shape)})`, () => {
          const dataset = h5.get(path) as Hdf5Dataset;
          expect(dataset.shape).toEqual(shape);
          expect(dataset.dtype).toBe(dtype);
          const values = Array.from(dataset.read() as ArrayLike<number>);
          const expected = expectedValues(dataset);
          expect(values).toHaveLength(expected.length);
          // float32 data: exact after rounding the float64 formula to float32 (1 ulp slack for libm differences).
          values.forEach((v, i) => expect(Math.abs(v - castLike(dtype, expected[i]!))).toBeLessThanOrEqual(tolerance + 1e-7));
        });
      }
    });
  }

  it('reads Keras layer groups: layer_names and weight_names attributes (symbol-table groups, chunked+gzip datasets)', async () => {
    const { gunzipSync } = await import('node:zlib');
    const bytes = gunzipSync(readFileSync(join(FIXTURES, 'keras-resnet-tiny.h5.gz')));
    const h5 = parseHdf5(bytes, { fileName: 'keras-resnet-tiny.h5' });
    const layers = h5.root.attributes['layer_names'] as string[];
    expect(layers.slice(0, 5)).toEqual(['input_1', 'conv1_conv', 'conv1_bn', 'conv2_block1_0_conv', 'conv2_block1_0_bn']);
    expect(h5.root.attributes['backend']).toBe('tensorflow');
    expect(h5.root.attributes['keras_version']).toBe('2.2.4');
    const conv = h5.get('conv1_conv') as Hdf5Group;
    expect(conv.attributes['weight_names']).toEqual(['conv1_conv/kernel:0', 'conv1_conv/bias:0']);
    expect((h5.get('conv1_conv/conv1_conv/kernel:0') as Hdf5Dataset).shape).toEqual([7, 7, 3, 2]);
    expect((h5.get('input_1') as Hdf5Group).attributes['weight_names']).toEqual([]);
  });

  it('rejects files that are not HDF5, or truncated, with an InputError naming the file', async () => {
    const notHdf5 = new Uint8Array(2048).map((_, i) => (i * 31) % 251);
    expect(() => parseHdf5(notHdf5, { fileName: 'noise.bin' })).toThrow(/noise\.bin: HDF5: not an HDF5 file/);
    const full = readFileSync(join(FIXTURES, 'variants-sb0.h5'));
    let error: unknown;
    try {
      const h5 = parseHdf5(full.subarray(0, 1500), { fileName: 'cut.h5' });
      for (const d of h5.root.datasets()) d.read();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toMatch(/cut\.h5: HDF5: .*outside the file/);
    await expect(readHdf5(join(FIXTURES, 'does-not-exist.h5'))).rejects.toThrow(/does-not-exist\.h5: cannot read HDF5 file/);
  });

  it('names the unsupported feature: dense link storage', async () => {
    await expect(readHdf5(join(FIXTURES, 'dense-links-sb3.h5'))).rejects.toThrow(/dense-links-sb3\.h5: HDF5: group \/many uses dense link storage/);
  });
});
