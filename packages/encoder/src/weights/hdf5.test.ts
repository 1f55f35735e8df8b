import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { InputError } from '@s2cpnet/core';
import type { Group } from 'h5wasm';
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

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
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
        expect(h5.fileName).toBe(join(FIXTURES, file));
        expect(h5.root.attributes).toEqual({ title: 'layout variants', labels: ['alpha', 'beta', 'gamma'], count: 3, weights: [0.5, -1.25, 2] });
      });

      it('lists groups and finds nested datasets by path', () => {
        expect([...h5.root.children().keys()].sort()).toEqual(['chunked', 'compact', 'plain']);
        const leaf = h5.get('/chunked/nested/deeper/leaf');
        expect(leaf?.kind).toBe('dataset');
        expect((leaf as Hdf5Dataset).path).toBe('/chunked/nested/deeper/leaf');
        expect(h5.get('chunked/nested')?.kind).toBe('group');
        expect((h5.get('chunked/nested') as Hdf5Group).path).toBe('/chunked/nested');
        expect(h5.get('chunked/missing')).toBeUndefined();
        expect(h5.get('/')).toBe(h5.root);
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
          // readFloat32 converts, and every read is a new array (changing one does not change the file's values).
          const f32 = dataset.readFloat32();
          expect(f32).toBeInstanceOf(Float32Array);
          f32.fill(123);
          expect(Array.from(dataset.readFloat32())).toEqual(values.map((v) => Math.fround(v)));
        });
      }
    });
  }

  it('reads Keras layer groups: layer_names and weight_names attributes (symbol-table groups, chunked+gzip datasets)', async () => {
    const bytes = gunzipSync(readFileSync(join(FIXTURES, 'keras-resnet-tiny.h5.gz')));
    const h5 = await readHdf5(bytes, { fileName: 'keras-resnet-tiny.h5' });
    expect(bytes.length).toBeGreaterThan(100_000); // the caller's buffer is copied, not handed over to the worker
    expect(h5.fileName).toBe('keras-resnet-tiny.h5');
    const layers = h5.root.attributes['layer_names'] as string[];
    expect(layers.slice(0, 5)).toEqual(['input_1', 'conv1_conv', 'conv1_bn', 'conv2_block1_0_conv', 'conv2_block1_0_bn']);
    expect(layers).toHaveLength(41);
    expect(h5.root.attributes['backend']).toBe('tensorflow');
    expect(h5.root.attributes['keras_version']).toBe('2.2.4');
    const conv = h5.get('conv1_conv') as Hdf5Group;
    expect(conv.attributes['weight_names']).toEqual(['conv1_conv/kernel:0', 'conv1_conv/bias:0']);
    const kernel = h5.get('conv1_conv/conv1_conv/kernel:0') as Hdf5Dataset;
    expect(kernel.shape).toEqual([7, 7, 3, 2]);
    const expected = expectedValues(kernel);
    kernel.readFloat32().forEach((v, i) => expect(Math.abs(v - Math.fround(expected[i]!))).toBeLessThanOrEqual(1e-7));
    expect((h5.get('input_1') as Hdf5Group).attributes['weight_names']).toEqual([]);
    // The deprecated parseHdf5 is readHdf5 for bytes (now asynchronous).
    expect((await parseHdf5(bytes)).get('conv1_conv/conv1_conv/kernel:0')?.kind).toBe('dataset');
  });

  it('reads groups with dense link storage (more than 8 links in a libver=latest file)', async () => {
    const h5 = await readHdf5(join(FIXTURES, 'dense-links-sb3.h5'));
    const many = h5.get('many') as Hdf5Group;
    expect([...many.children().keys()]).toEqual(Array.from({ length: 12 }, (_, i) => `d${String(i).padStart(2, '0')}`));
    expect(many.datasets().map((d) => Array.from(d.readFloat32()))).toEqual(Array.from({ length: 12 }, (_, i) => [i]));
  });

  it('links: an object reached by several links is one node, a link cycle is cut, external and broken links are left out', async () => {
    // h5wasm also writes HDF5 files (used here in tests only): hard, soft and external links and a deep shared chain.
    const h5wasm = await import('h5wasm');
    const { FS } = await h5wasm.ready;
    const f = new h5wasm.File('/links.h5', 'w');
    const a = f.create_group('a');
    a.create_dataset({ name: 'x', data: new Float32Array([1, 2, 3]) });
    a.create_hard_link('/a', 'loop'); // /a/loop is /a: a cycle
    f.create_hard_link('/a', 'b');
    f.create_soft_link('/a/x', 'soft');
    f.create_soft_link('/nowhere', 'broken');
    f.create_external_link('/etc/hostname', '/', 'external');
    // 40 groups, each with two hard links to the next: 2^40 paths, 40 objects.
    for (let i = 0; i < 40; i++) f.create_group(`chain${i}`);
    for (let i = 0; i < 39; i++) for (const link of ['l', 'r']) (f.get(`chain${i}`) as Group).create_hard_link(`/chain${i + 1}`, link);
    f.close();
    const bytes = FS.readFile('/links.h5') as Uint8Array;
    FS.unlink('/links.h5');

    const started = Date.now();
    const h5 = await readHdf5(bytes, { fileName: 'links.h5', timeoutMs: 30_000 });
    expect(Date.now() - started).toBeLessThan(15_000);
    const root = h5.root;
    expect([...root.children().keys()].filter((k) => !k.startsWith('chain'))).toEqual(['a', 'b', 'soft']);
    expect(root.get('b')).toBe(root.get('a'));
    expect(root.get('soft')).toBe(root.get('a/x'));
    expect([...(root.get('a') as Hdf5Group).children().keys()]).toEqual(['x']);
    expect(Array.from((root.get('b/x') as Hdf5Dataset).readFloat32())).toEqual([1, 2, 3]);
    expect(root.get('chain0/l/r/l/r')).toBe(root.get('chain4'));
    expect(root.get('chain38/r')).toBe(root.get('chain39'));
    expect((root.get('chain39') as Hdf5Group).path).toBe(`/chain0${'/l'.repeat(39)}`); // the path of its first visit
    expect(root.datasets().map((d) => d.path)).toEqual(['/a/x']);
  });

  it('rejects files that are not HDF5, truncated or corrupt, with an InputError naming the file', async () => {
    const noise = new Uint8Array(2048).map((_, i) => (i * 31) % 251);
    const notHdf5 = await rejection(readHdf5(noise, { fileName: 'noise.bin' }));
    expect(notHdf5).toBeInstanceOf(InputError);
    expect(notHdf5.message).toMatch(/^noise\.bin: HDF5: not an HDF5 file/);

    const full = readFileSync(join(FIXTURES, 'variants-sb0.h5'));
    const truncated = await rejection(readHdf5(full.subarray(0, 1500), { fileName: 'cut.h5' }));
    expect(truncated).toBeInstanceOf(InputError);
    expect(truncated.message).toMatch(/^cut\.h5: HDF5: .*truncated file: eof = 1500/);

    // The HDF5 signature followed by random bytes: the C library itself has to refuse it.
    let seed = 7;
    const random = Uint8Array.from({ length: 4096 }, () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) >> 16) & 0xff);
    random.set(full.subarray(0, 8));
    const corrupt = await rejection(readHdf5(random, { fileName: 'random.h5' }));
    expect(corrupt).toBeInstanceOf(InputError);
    expect(corrupt.message).toMatch(/^random\.h5: HDF5: \S/);

    const missing = await rejection(readHdf5(join(FIXTURES, 'does-not-exist.h5')));
    expect(missing).toBeInstanceOf(InputError);
    expect(missing.message).toMatch(/does-not-exist\.h5: cannot read HDF5 file/);

    // After the failures (each retires its worker), a good file still reads correctly.
    const int32 = (await readHdf5(full)).get('plain/int32') as Hdf5Dataset;
    expect(Array.from(int32.read() as Int32Array)).toEqual(expectedValues(int32).map(Math.trunc));
  });

  it('gives up on a file that makes the HDF5 library loop, naming the file, and keeps working', async () => {
    const bytes = new Uint8Array(readFileSync(join(FIXTURES, 'variants-sb0.h5')));
    // One changed byte (found by fuzzing): the size of the global-heap object that holds the root attribute `title`
    // (15, the length of 'layout variants', at byte 24 of the collection at 2048) becomes 251. HDF5 2.0 loops on it.
    expect(String.fromCharCode(...bytes.subarray(2048, 2052))).toBe('GCOL');
    expect(bytes[2072]).toBe(15);
    bytes[2072] = 251;
    const started = Date.now();
    const error = await rejection(readHdf5(bytes, { fileName: 'loops.h5', timeoutMs: 3000 }));
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toBe('loops.h5: HDF5: gave up after 3000 ms (a corrupt file can make the HDF5 library loop)');
    const h5 = await readHdf5(join(FIXTURES, 'variants-sb0.h5'));
    expect(h5.root.attributes['title']).toBe('layout variants');
  });

  it('refuses files whose datasets hold more than maxDataBytes', async () => {
    const error = await rejection(readHdf5(join(FIXTURES, 'variants-sb0.h5'), { maxDataBytes: 100 }));
    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toMatch(/variants-sb0\.h5: HDF5: dataset \/\S+: the datasets hold more than 100 bytes \(the limit; see the maxDataBytes option\)/);
  });

  it('reads several files at once (one worker, one file at a time)', async () => {
    const files = ['variants-sb0.h5', 'variants-sb2.h5', 'variants-sb3.h5', 'dense-links-sb3.h5'];
    const read = await Promise.all(files.map((f) => readHdf5(join(FIXTURES, f))));
    expect(read.map((h5) => h5.superblockVersion)).toEqual([0, 2, 3, 3]);
    expect(read.map((h5) => h5.root.datasets().length)).toEqual([12, 12, 12, 12]);
  });
});
