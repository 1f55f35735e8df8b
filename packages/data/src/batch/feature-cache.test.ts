import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FeatureCache } from './feature-cache';

const tmp = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-features-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const feature = { shape: [2, 2, 3], data: Float32Array.from({ length: 12 }, (_, i) => i * 0.5 - 2.25) };

describe('FeatureCache', () => {
  it('stores and reads a feature exactly, keyed by image id and backbone id', async () => {
    const cache = new FeatureCache({ dir: tmp });
    expect(await cache.get('airplane/airplane_001.jpg', 'resnet50')).toBeUndefined();
    await cache.put('airplane/airplane_001.jpg', 'resnet50', feature);
    const back = await cache.get('airplane/airplane_001.jpg', 'resnet50');
    expect(back!.shape).toEqual([2, 2, 3]);
    expect(Array.from(back!.data)).toEqual(Array.from(feature.data));
    expect(await cache.get('airplane/airplane_001.jpg', 'mobilenet')).toBeUndefined();
    expect(await cache.get('airplane/airplane_002.jpg', 'resnet50')).toBeUndefined();
  });

  it('keeps unsafe backbone ids inside the cache folder and apart from each other', async () => {
    const cache = new FeatureCache({ dir: tmp });
    await cache.put('1.jpg', '../../etc', feature);
    await cache.put('1.jpg', '.._.._etc', { shape: [1], data: Float32Array.of(9) });
    expect(path.dirname(path.dirname(cache.fileFor('1.jpg', '../../etc')))).toBe(tmp);
    expect(cache.fileFor('1.jpg', '../../etc')).not.toBe(cache.fileFor('1.jpg', '.._.._etc'));
    expect((await cache.get('1.jpg', '../../etc'))!.shape).toEqual([2, 2, 3]);
    expect(() => cache.fileFor('1.jpg', '')).toThrow(/\$\.backboneId/);
  });

  it('treats a truncated file as missing and recomputes it; concurrent requests compute once', async () => {
    const cache = new FeatureCache({ dir: tmp });
    await cache.put('2.jpg', 'r', feature);
    const file = cache.fileFor('2.jpg', 'r');
    writeFileSync(file, readFileSync(file).subarray(0, 30));
    expect(await cache.get('2.jpg', 'r')).toBeUndefined();
    let calls = 0;
    const compute = async () => {
      calls++;
      return feature;
    };
    const [a, b] = await Promise.all([cache.getOrCompute('2.jpg', 'r', compute), cache.getOrCompute('2.jpg', 'r', compute)]);
    expect(calls).toBe(1);
    expect(a).toBe(b);
    expect((await cache.get('2.jpg', 'r'))!.data.length).toBe(12);
    await cache.getOrCompute('2.jpg', 'r', compute);
    expect(calls).toBe(1);
    expect(cache.stats).toEqual({ hits: 1, computed: 1 });
    expect(readdirSync(path.dirname(file)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('rejects a feature whose data does not match its shape', async () => {
    const cache = new FeatureCache({ dir: tmp });
    await expect(cache.put('3.jpg', 'r', { shape: [2, 2], data: new Float32Array(3) })).rejects.toThrow(/shape \[2,2\] with 3 values/);
    expect(() => new FeatureCache({ dir: '' })).toThrow(/\$\.dir/);
  });
});
