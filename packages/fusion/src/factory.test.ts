import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, S2CPNetError, ShapeError } from '@s2cpnet/core';
import { disposeWeights, testBackends, useBackend } from '@s2cpnet/core/testing';
import {
  AddFusion,
  ConcatFusion,
  CrossViewFusion,
  ReferenceCrossViewFusion,
  SingleViewFusion,
  createFusion,
  defaultFusions,
  registerFusionLayers,
  type FusionConfig,
} from './index';

const SIZES = { imageChannels: 6, maskChannels: 5, dim: 8, grid: 2, heads: 2, units: 1 };

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}

describe('createFusion', () => {
  it('creates the class each type names, with the documented memory widths', () => {
    const expected: Record<FusionConfig['type'], [unknown, number, boolean]> = {
      cvff: [CrossViewFusion, 16, true],
      'cvff-reference': [ReferenceCrossViewFusion, 16, true],
      add: [AddFusion, 8, true],
      concat: [ConcatFusion, 16, true],
      'single-view': [SingleViewFusion, 8, false],
    };
    for (const type of Object.keys(defaultFusions) as FusionConfig['type'][]) {
      const fusion = createFusion({ type, ...SIZES });
      const [cls, width, usesMask] = expected[type];
      expect(fusion).toBeInstanceOf(cls as never);
      expect(fusion.memoryWidth).toBe(width);
      expect(fusion.usesMaskView).toBe(usesMask);
    }
  });

  it('fills in the paper defaults and the reference dropout', () => {
    const paper = createFusion({ type: 'cvff', imageChannels: 2048, maskChannels: 512, dim: 512, grid: 14 }).getConfig();
    expect(paper).toMatchObject({ heads: 8, units: 3, ffnMultiplier: 4, dropout: 0.1, seed: 0 });
    const reference = createFusion({ type: 'cvff-reference', imageChannels: 2048, maskChannels: 2048, dim: 512, grid: 14 }).getConfig();
    expect(reference['dropout']).toBe(0.5);
  });

  it('rejects an unknown type with a ConfigError listing the valid names', () => {
    const error = thrown(() => createFusion({ type: 'mystery', ...SIZES } as unknown as FusionConfig));
    expect(error).toBeInstanceOf(ConfigError);
    expect(S2CPNetError.isInstance(error)).toBe(true);
    const message = (error as Error).message;
    expect(message).toContain('$.fusion.type');
    expect(message).toContain('"mystery"');
    for (const name of Object.keys(defaultFusions)) expect(message).toContain(JSON.stringify(name));
  });

  it.each<[string, Partial<FusionConfig>, string, string]>([
    ['dim not divisible by heads', { dim: 10, heads: 4 }, '$.fusion.dim', 'divisible by heads (4), found 10'],
    ['odd dim', { dim: 9, heads: 1 }, '$.fusion.dim', 'must be even'],
    ['fractional channels', { imageChannels: 2.5 }, '$.fusion.imageChannels', 'found 2.5'],
    ['missing grid', { grid: undefined }, '$.fusion.grid', 'found undefined'],
    ['zero units', { units: 0 }, '$.fusion.units', 'integer >= 1, found 0'],
    ['dropout of 1', { dropout: 1 }, '$.fusion.dropout', 'in [0, 1), found 1'],
  ])('rejects %s naming the JSON path', (_name, patch, path, text) => {
    const error = thrown(() => createFusion({ type: 'cvff', ...SIZES, ...patch } as FusionConfig));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).jsonPath).toBe(path);
    expect((error as Error).message).toContain(text);
  });

  it('uses the caller’s JSON path in errors', () => {
    const error = thrown(() => createFusion({ type: 'add', ...SIZES, dim: 7 }, defaultFusions, { jsonPath: '$.model.fusion' }));
    expect((error as ConfigError).jsonPath).toBe('$.model.fusion.dim');
  });

  it('validates in the constructors too, naming the class', () => {
    const error = thrown(() => new CrossViewFusion({ ...SIZES, heads: 3 }));
    expect((error as ConfigError).jsonPath).toBe('CrossViewFusion(args).dim');
    // strategies without attention do not split dim into heads
    expect(new ConcatFusion({ ...SIZES, dim: 6, heads: 4 }).memoryWidth).toBe(12);
  });

  it('leaves the validation of user-defined types to their factories', () => {
    const calls: unknown[] = [];
    const map = {
      ...defaultFusions,
      custom: (config: { type: 'custom'; dim: number }) => {
        calls.push(config);
        return new SingleViewFusion({ imageChannels: 4, maskChannels: 1, dim: config.dim, grid: 2 });
      },
    };
    const fusion = createFusion<FusionConfig | { type: 'custom'; dim: number }>({ type: 'custom', dim: 6 }, map);
    expect(calls).toEqual([{ type: 'custom', dim: 6 }]);
    expect(fusion.memoryWidth).toBe(6);
  });

  it('registers every fusion layer class with tfjs serialization', () => {
    registerFusionLayers();
    const registered = Object.keys(tf.serialization.SerializationMap.getMap().classNameMap);
    for (const name of [
      'CrossViewFusion',
      'ReferenceCrossViewFusion',
      'AddFusion',
      'ConcatFusion',
      'SingleViewFusion',
      'CrossViewUnit',
      'CoarseGate',
      'ReferenceCoarseGate',
      'ResidualMergeBlock',
      'BottleneckMergeBlock',
    ]) {
      expect(registered).toContain(name);
    }
  });
});

for (const backend of testBackends()) {
  describe(`fusion input checks on ${backend}`, () => {
    beforeAll(() => useBackend(backend));

    it.each(Object.keys(defaultFusions) as FusionConfig['type'][])('%s names the argument and shapes on bad input', (type) => {
      const fusion = createFusion({ type, ...SIZES });
      const good = tf.zeros([2, 4, 6]) as tf.Tensor3D;
      const mask = tf.zeros([2, 4, 5]) as tf.Tensor3D;
      const wrongTokens = tf.zeros([2, 9, 6]) as tf.Tensor3D;
      const wrongMask = tf.zeros([2, 4, 7]) as tf.Tensor3D;
      const before = tf.memory().numTensors;
      const tokenError = thrown(() => fusion.fuse(wrongTokens, mask));
      expect(tokenError).toBeInstanceOf(ShapeError);
      expect((tokenError as ShapeError).argument).toBe('imageTokens');
      expect((tokenError as Error).message).toContain('expected shape [?, 4, 6], found [2, 9, 6]');
      if (fusion.usesMaskView) {
        const maskError = thrown(() => fusion.fuse(good, wrongMask));
        expect((maskError as ShapeError).argument).toBe('maskTokens');
        expect((maskError as Error).message).toContain('[2, 4, 5]');
        const nullError = thrown(() => fusion.fuse(good, null));
        expect((nullError as ShapeError).argument).toBe('maskTokens');
      } else {
        const memory = fusion.fuse(good, null);
        expect(memory.shape).toEqual([2, 4, 8]);
        memory.dispose();
      }
      expect(tf.memory().numTensors - before).toBe(fusion.weights.length);
      tf.dispose([good, mask, wrongTokens, wrongMask]);
      disposeWeights(fusion);
    });
  });
}
