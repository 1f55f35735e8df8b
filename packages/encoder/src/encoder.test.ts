import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, S2CPNetError, ShapeError } from '@s2cpnet/core';
import { expectClose, expectNoLeaks, testBackends, useBackend } from '@s2cpnet/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BackboneEncoder } from './backbone';
import type { EncoderConfig } from './config';
import { createEncoder, defaultEncoders, registerEncoderLayers } from './factory';
import { MobileNetV1, mobileNetChannels, MOBILENET_V1_BLOCKS } from './mobilenet-v1';
import { ResNet50 } from './resnet50';
import { randomizeWeights, seededTensor, weightValues, writeWeightValues } from './testing/helpers';

/** Small configs of every factory in `defaultEncoders` (cpu-sized: 64x64 input, reduced depth/width). */
const TINY: Record<keyof typeof defaultEncoders, EncoderConfig> = {
  resnet50: { type: 'resnet50', baseWidth: 2, blocksPerStage: [2, 1, 1, 1], inputSize: 64, grid: 4, seed: 1 },
  'mobilenet-v1': { type: 'mobilenet-v1', width: 0.25, inputSize: 64, grid: 4, seed: 1 },
};

/** The values of a tensor, which is then disposed. */
function numbers(t: tf.Tensor): Float32Array {
  const values = t.dataSync().slice() as Float32Array;
  t.dispose();
  return values;
}

function paramCount(weights: readonly { shape: readonly (number | null)[] }[]): number {
  return weights.reduce((n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
}

for (const backend of testBackends()) {
  describe(`encoders on ${backend}`, () => {
    beforeAll(() => useBackend(backend));

    for (const [type, config] of Object.entries(TINY)) {
      describe(`conformance: ${type}`, () => {
        it('maps [B,S,S,3] to [B,G,G,C] without leaking, in inference and training calls', () => {
          const encoder = createEncoder(config);
          randomizeWeights(encoder, 2);
          const x = seededTensor([2, 64, 64, 3], 3) as tf.Tensor4D;
          for (const training of [false, true]) {
            // A first call of each kind may build or drop the folded-weight cache; the second must be leak-free.
            encoder.encode(x, { training }).dispose();
            const y = expectNoLeaks(() => {
              const out = encoder.encode(x, { training });
              const shape = out.shape;
              const finite = tf.tidy(() => tf.all(tf.isFinite(out)).dataSync()[0]);
              out.dispose();
              return { shape, finite };
            });
            expect(y.shape).toEqual([2, 4, 4, encoder.outputChannels]);
            expect(y.finite).toBe(1);
          }
          expect(encoder.gridSize).toBe(4);
          expect(encoder.computeOutputShape([2, 64, 64, 3])).toEqual([2, 4, 4, encoder.outputChannels]);
          x.dispose();
          encoder.dispose();
        });

        it('grid policies: native, nearest 2x upsampling (= replicated native cells), average pooling', () => {
          const native = createEncoder({ ...config, grid: 'native' });
          const up = createEncoder({ ...config, grid: 4 });
          const down = createEncoder({ ...config, grid: 1 });
          const x = seededTensor([1, 64, 64, 3], 4) as tf.Tensor4D;
          const n = native.encode(x);
          const u = up.encode(x);
          const d = down.encode(x);
          expect(n.shape.slice(1, 3)).toEqual([2, 2]);
          expect(u.shape.slice(1, 3)).toEqual([4, 4]);
          expect(d.shape.slice(1, 3)).toEqual([1, 1]);
          // Same seed => same weights: upsampled cell (i, j) equals native cell (i/2, j/2); pooling is the mean.
          const c = native.outputChannels;
          const nv = n.dataSync().slice() as Float32Array;
          const uv = u.dataSync().slice() as Float32Array;
          for (let i = 0; i < 4; i++)
            for (let j = 0; j < 4; j++)
              expectClose(uv.subarray((i * 4 + j) * c, (i * 4 + j + 1) * c), nv.subarray((Math.floor(i / 2) * 2 + Math.floor(j / 2)) * c, (Math.floor(i / 2) * 2 + Math.floor(j / 2) + 1) * c), 0);
          expectClose(d, tf.tidy(() => tf.mean(n, [1, 2], true)), 1e-5);
          tf.dispose([x, n, u, d]);
          [native, up, down].forEach((e) => e.dispose());
        });

        it('encodeViews: image and mask views share the weights and equal two separate calls', () => {
          const encoder = createEncoder(config);
          randomizeWeights(encoder, 5);
          const images = seededTensor([2, 64, 64, 3], 6) as tf.Tensor4D;
          const masks = seededTensor([2, 64, 64, 3], 7) as tf.Tensor4D;
          encoder.encode(images).dispose(); // builds the folded-weight cache
          const views = expectNoLeaks(() => {
            const v = encoder.encodeViews(images, masks);
            const out = { images: numbers(v.images), masks: numbers(v.masks) };
            tf.dispose([v.images, v.masks]);
            return out;
          });
          expectClose(views.images, encoder.encode(images), 1e-5);
          expectClose(views.masks, encoder.encode(masks), 1e-5);
          expect(() => encoder.encodeViews(images, seededTensor([1, 64, 64, 3], 8) as tf.Tensor4D)).toThrow(ShapeError);
          tf.dispose([images, masks]);
          encoder.dispose();
        });

        it('freeze policies: trainable weights, gradients-free frozen parts, BN in inference mode when frozen', () => {
          const all = createEncoder({ ...config, freeze: 'all' });
          const none = createEncoder({ ...config, freeze: 'none' });
          const early = createEncoder({ ...config, freeze: 'stem-stage1' });
          const total = paramCount(none.weights);
          expect(paramCount(all.trainableWeights)).toBe(0);
          expect(paramCount(all.nonTrainableWeights)).toBe(total);
          const movingStats = paramCount(none.namedWeights().filter((w) => /moving_(mean|variance)$/.test(w.path)).map((w) => w.variable));
          expect(paramCount(none.trainableWeights)).toBe(total - movingStats);
          const earlyPrefix = early instanceof ResNet50 ? /^(stem|stage1)\// : /^(stem|block[123])\//;
          const frozen = early.namedWeights().filter((w) => earlyPrefix.test(w.path));
          expect(frozen.length).toBeGreaterThan(0);
          expect(early.trainableWeights.some((w) => frozen.some((f) => f.variable === w))).toBe(false);
          expect(paramCount(early.trainableWeights)).toBe(total - movingStats - paramCount(frozen.filter((w) => !/moving_/.test(w.path)).map((w) => w.variable)));
          // A frozen encoder gives the same output in a training call as in an inference call and keeps its BN stats.
          randomizeWeights(all, 9);
          const x = seededTensor([2, 64, 64, 3], 10) as tf.Tensor4D;
          const before = weightValues(all);
          expectClose(all.encode(x, { training: true }), all.encode(x, { training: false }), 0);
          for (const [path, values] of weightValues(all)) expectClose(values, before.get(path)!, 0);
          // setFreeze changes it back: now a training call uses batch statistics and differs.
          all.setFreeze('none');
          expect(all.freeze).toBe('none');
          const trained = numbers(all.encode(x, { training: true }));
          const inference = numbers(all.encode(x));
          expect(Math.max(...trained.map((v, i) => Math.abs(v - inference[i]!)))).toBeGreaterThan(1e-3);
          x.dispose();
          [all, none, early].forEach((e) => e.dispose());
        });

        it('trainableFrom: the stem and earlier blocks are frozen, the later blocks train, and the config keeps it', () => {
          const none = createEncoder({ ...config, freeze: 'none' });
          const blocks = none.orderedBlocks().length;
          expect(blocks).toBe(type === 'mobilenet-v1' ? 13 : 5);
          const from = blocks - 1; // the last two blocks train
          // Out of range: refused before any weight is made.
          const tensors = tf.memory().numTensors;
          expect(() => createEncoder({ ...config, trainableFrom: blocks + 1 })).toThrow(new RegExp(`this backbone has ${blocks} blocks`));
          expect(tf.memory().numTensors).toBe(tensors);
          const partial = createEncoder({ ...config, trainableFrom: from });
          expect(partial.trainableFrom).toBe(from);
          const pathOf = new Map(partial.namedWeights().map((w) => [w.variable, w.path]));
          const expected = partial
            .orderedBlocks()
            .slice(from - 1)
            .flatMap((block) => block.weights)
            .filter((w) => !/moving_(mean|variance)$/.test(pathOf.get(w)!));
          expect(expected.length).toBeGreaterThan(0);
          expect(new Set(partial.trainableWeights)).toEqual(new Set(expected));
          expect(paramCount(partial.trainableWeights)).toBeLessThan(paramCount(none.trainableWeights));
          // A training call gives gradients to exactly those weights, and the frozen stem runs in inference mode.
          randomizeWeights(partial, 21);
          const x = seededTensor([2, 64, 64, 3], 22) as tf.Tensor4D;
          const { grads, value } = tf.variableGrads(
            () => tf.sum(partial.encode(x, { training: true })) as tf.Scalar,
            partial.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val),
          );
          expect(Object.keys(grads).length).toBe(expected.length);
          const norms = Object.values(grads).map((g) => numbers(tf.norm(g))[0]!);
          expect(norms.filter((n) => n > 0).length).toBeGreaterThan(0);
          tf.dispose([value, ...Object.values(grads)]);
          // createEncoder(encoderConfig()) keeps it; setFreeze('all') freezes everything, setFreeze('none') restores it.
          const twin = createEncoder(partial.encoderConfig());
          expect(twin.encoderConfig()).toMatchObject({ freeze: 'none', trainableFrom: from });
          expect(new Set(twin.trainableWeights.map((w) => twin.namedWeights().find((n) => n.variable === w)!.path))).toEqual(
            new Set(expected.map((w) => pathOf.get(w)!)),
          );
          // The frozen part can be cached: frozenFeatures then encodeFromFrozen is encode; its weights are the frozen ones.
          expect(partial.partlyTrainable).toBe(true);
          const frozenPart = partial.frozenFeatures(x);
          expect(frozenPart.shape[3]).toBe((partial.orderedBlocks()[from - 2] as unknown as { outputChannels: number }).outputChannels);
          expectClose(partial.encodeFromFrozen(frozenPart), partial.encode(x), 1e-5);
          frozenPart.dispose();
          const frozenSet = new Set(partial.frozenPartWeights());
          expect(partial.trainableWeights.some((w) => frozenSet.has(w))).toBe(false);
          expect(frozenSet.size + expected.length).toBeLessThanOrEqual(partial.weights.length);
          expect(none.partlyTrainable).toBe(false);
          expectClose(none.encodeFromFrozen(none.frozenFeatures(x)), none.encode(x), 0);
          partial.setFreeze('all');
          expect(partial.partlyTrainable).toBe(false);
          expect(partial.trainableWeights.length).toBe(0);
          partial.setFreeze('none');
          expect(new Set(partial.trainableWeights)).toEqual(new Set(expected));
          x.dispose();
          [none, partial, twin].forEach((e) => e.dispose());
        });

        it('inference calls cache folded weights, refresh them when weights are written, and training calls release them', () => {
          const encoder = createEncoder({ ...config, freeze: 'none' });
          const x = seededTensor([1, 64, 64, 3], 11) as tf.Tensor4D;
          const first = numbers(encoder.encode(x)); // builds the cache
          const cached = tf.memory().numTensors;
          const again = expectNoLeaks(() => {
            const y = encoder.encode(x);
            const v = numbers(y);
            y.dispose();
            return v;
          });
          expectClose(again, first, 0);
          randomizeWeights(encoder, 12);
          const after = numbers(encoder.encode(x));
          expect(tf.memory().numTensors).toBe(cached); // the old cache was released, a new one built
          expect(Math.max(...after.map((v, i) => Math.abs(v - first[i]!)))).toBeGreaterThan(1e-3);
          // releaseCachedWeights frees the cache (two tensors per conv unit) and the next call rebuilds it.
          const units = encoder.namedWeights().filter((w) => w.path.endsWith('conv/kernel')).length;
          encoder.releaseCachedWeights();
          expect(tf.memory().numTensors).toBe(cached - 2 * units);
          expectClose(numbers(encoder.encode(x)), after, 0);
          expect(tf.memory().numTensors).toBe(cached);
          // A training call of a trainable encoder drops the cache (its weights change every step).
          numbers(encoder.encode(x, { training: true }));
          expect(tf.memory().numTensors).toBe(cached - 2 * units);
          x.dispose();
          encoder.dispose();
        });

        it('getConfig/fromConfig (tfjs serialization) and createEncoder(encoderConfig()) make equal encoders', () => {
          registerEncoderLayers();
          const encoder = createEncoder({ ...config, freeze: 'stem-stage1', seed: 77 });
          const cls0 = encoder.constructor as tf.serialization.SerializableConstructor<tf.serialization.Serializable>;
          expect(tf.serialization.getRegisteredName(cls0)).toBe(`S2CP>${encoder.getClassName()}`);
          const entry = tf.serialization.SerializationMap.getMap().classNameMap[encoder.getClassName()];
          expect(entry).toBeDefined();
          const [cls, fromConfig] = entry!;
          const json = JSON.parse(JSON.stringify(encoder.getConfig())) as tf.serialization.ConfigDict;
          const clone = fromConfig(cls, json) as unknown as BackboneEncoder;
          const twin = createEncoder(encoder.encoderConfig());
          const x = seededTensor([2, 64, 64, 3], 13) as tf.Tensor4D;
          const y = numbers(encoder.encode(x));
          // Weights come from the seed only, so both rebuilt encoders agree exactly without copying anything.
          expectClose(clone.encode(x), y, 0);
          expectClose(twin.encode(x), y, 0);
          expect(clone.encoderConfig()).toEqual(encoder.encoderConfig());
          expect(clone.freeze).toBe('stem-stage1');
          x.dispose();
          [encoder, clone, twin].forEach((e) => e.dispose());
        });

        it('save/load by namedWeights paths into an encoder with another seed gives equal outputs', () => {
          const source = createEncoder({ ...config, seed: 5 });
          randomizeWeights(source, 14);
          const saved = weightValues(source);
          const target = createEncoder({ ...config, seed: 6 });
          const x = seededTensor([2, 64, 64, 3], 15) as tf.Tensor4D;
          const before = numbers(target.encode(x));
          const expected = numbers(source.encode(x));
          expect(Math.max(...before.map((v, i) => Math.abs(v - expected[i]!)))).toBeGreaterThan(1e-3);
          expect([...saved.keys()]).toEqual(target.namedWeights().map((w) => w.path));
          expect(new Set(saved.keys()).size).toBe(saved.size); // paths are unique
          writeWeightValues(target, saved);
          expectClose(target.encode(x), expected, 0);
          expectClose(target.encode(x, { training: true }), source.encode(x, { training: true }), 1e-6);
          x.dispose();
          [source, target].forEach((e) => e.dispose());
        });

        it('is deterministic under its seed', () => {
          const a = weightValues(createEncoder({ ...config, seed: 3 }));
          const b = weightValues(createEncoder({ ...config, seed: 3 }));
          const c = weightValues(createEncoder({ ...config, seed: 4 }));
          for (const [path, values] of a) expectClose(values, b.get(path)!, 0);
          const kernel = [...a.keys()].find((p) => p.endsWith('kernel'))!;
          expect(Math.max(...a.get(kernel)!.map((v, i) => Math.abs(v - c.get(kernel)![i]!)))).toBeGreaterThan(0);
        });

        it('rejects images of the wrong shape naming the argument', () => {
          const encoder = createEncoder(config);
          const wrong = tf.zeros([1, 32, 32, 3]) as tf.Tensor4D;
          expect(() => encoder.encode(wrong)).toThrow(/argument 'images' expected shape \[\?, 64, 64, 3\], found \[1, 32, 32, 3\]/);
          wrong.dispose();
          encoder.dispose();
        });
      });
    }

    it('classifier head: logits from pooled native features through the linear head', () => {
      const encoder = createEncoder({ ...TINY['mobilenet-v1'], classifierClasses: 5 });
      randomizeWeights(encoder, 16);
      const x = seededTensor([2, 64, 64, 3], 17) as tf.Tensor4D;
      const head = encoder.classifierHead!;
      const expected = tf.tidy(() => {
        const native = createEncoder({ ...TINY['mobilenet-v1'], grid: 'native' });
        writeWeightValues(native, new Map([...weightValues(encoder)].filter(([p]) => !p.startsWith('classifier/'))));
        const pooled = tf.mean(native.encode(x), [1, 2]);
        native.dispose();
        return tf.add(tf.matMul(pooled, head.kernel.read() as tf.Tensor2D), head.bias!.read());
      });
      expectClose(encoder.classify(x), expected, 1e-5);
      expect(() => createEncoder(TINY.resnet50).classify(x)).toThrow(/classifierClasses/);
      tf.dispose([x, expected]);
      encoder.dispose();
    });

    it('pixel normalisations match their definitions', () => {
      const pixels = tf.tensor4d([0, 127.5, 255, 10, 20, 30], [1, 1, 2, 3]);
      const resnet = createEncoder({ ...TINY.resnet50 });
      const mobile = createEncoder(TINY['mobilenet-v1']);
      const caffe = createEncoder({ ...TINY.resnet50, normalization: 'caffe-bgr-mean' });
      expectClose(mobile.normalizePixels(pixels), [-1, 0, 1, 10 / 127.5 - 1, 20 / 127.5 - 1, 30 / 127.5 - 1], 1e-6);
      const mean = [0.485, 0.456, 0.406];
      const std = [0.229, 0.224, 0.225];
      expectClose(resnet.normalizePixels(pixels), [0, 127.5, 255, 10, 20, 30].map((v, i) => (v / 255 - mean[i % 3]!) / std[i % 3]!), 1e-5);
      expectClose(caffe.normalizePixels(pixels), [255 - 103.939, 127.5 - 116.779, 0 - 123.68, 30 - 103.939, 20 - 116.779, 10 - 123.68], 1e-4);
      pixels.dispose();
    });
  });
}

describe('parameter counts (construction only; no forward pass)', () => {
  beforeAll(() => useBackend('wasm'));

  /**
   * ResNet50 trunk = stem 7*7*3*64 + BN(64), then per bottleneck (in -> mid -> 4 mid):
   * in*mid + 9*mid^2 + mid*4mid + BN(mid) + BN(mid) + BN(4mid) [+ in*4mid + BN(4mid) for the first block of a stage],
   * with BN(c) = 4c (gamma, beta, moving mean, moving variance), no conv biases (BN follows every conv).
   */
  function resnetFormula(base = 64, blocks = [3, 4, 6, 3]): { total: number; movingStats: number } {
    let total = 7 * 7 * 3 * base + 4 * base;
    let movingStats = 2 * base;
    let channels = base;
    blocks.forEach((count, s) => {
      const mid = base * 2 ** s;
      const out = 4 * mid;
      for (let b = 0; b < count; b++) {
        const cin = b === 0 ? channels : out;
        total += cin * mid + 9 * mid * mid + mid * out + 4 * (mid + mid + out);
        movingStats += 2 * (mid + mid + out);
        if (b === 0) {
          total += cin * out + 4 * out;
          movingStats += 2 * out;
        }
      }
      channels = out;
    });
    return { total, movingStats };
  }

  it('ResNet50: 23,561,152 parameters incl. BN moving statistics = 23,508,032 trainable (torchvision\'s count without fc) + 53,120', () => {
    const resnet = new ResNet50({ strideOn: '3x3' });
    const { total, movingStats } = resnetFormula();
    expect(total).toBe(23_561_152);
    expect(movingStats).toBe(53_120);
    expect(resnet.countParams()).toBe(total);
    expect(paramCount(resnet.trainableWeights)).toBe(23_508_032);
    expect(paramCount(resnet.nonTrainableWeights)).toBe(53_120);
    expect(resnet.outputChannels).toBe(2048);
    // The same formula holds for reduced configs.
    const small = new ResNet50({ baseWidth: 4, blocksPerStage: [1, 2, 1, 1], inputSize: 32 });
    expect(small.countParams()).toBe(resnetFormula(4, [1, 2, 1, 1]).total);
    resnet.dispose();
    small.dispose();
  });

  it('MobileNetV1 per width: stem 27*c0 + 4*c0, per block 9*cin + 4*cin + cin*cout + 4*cout (Keras: 3,228,864 at 1.0, 1,832,976 at 0.75)', () => {
    const formula = (width: number) => {
      const c0 = mobileNetChannels(32, width);
      let total = 27 * c0 + 4 * c0;
      let cin = c0;
      for (const [channels] of MOBILENET_V1_BLOCKS) {
        const cout = mobileNetChannels(channels, width);
        total += 9 * cin + 4 * cin + cin * cout + 4 * cout;
        cin = cout;
      }
      return total;
    };
    const counts: Record<number, number> = {};
    for (const width of [0.25, 0.5, 0.75, 1.0] as const) {
      const net = new MobileNetV1({ width });
      counts[width] = net.countParams();
      expect(counts[width]).toBe(formula(width));
      expect(net.outputChannels).toBe(1024 * width);
      net.dispose();
    }
    expect(counts[1.0]).toBe(3_228_864);
    expect(counts[0.75]).toBe(1_832_976);
    // With the 1000-class head (conv_preds 768x1000 + 1000): Keras' 2,601,976 ("2.6 M") for 0.75.
    const headed = new MobileNetV1({ width: 0.75, classifierClasses: 1000 });
    expect(headed.countParams()).toBe(2_601_976);
    headed.dispose();
  });

  it('multiply-adds at 224: ResNet50 4.09 G (stride on 3x3) / 3.86 G (on 1x1); MobileNet 0.75: 325 M, 1.0: 568 M', () => {
    const v15 = new ResNet50({ strideOn: '3x3' });
    const v1 = new ResNet50({ strideOn: '1x1' });
    expect(v15.multiplyAdds()).toBe(4_087_136_256);
    expect(v1.multiplyAdds()).toBe(3_855_925_248);
    const m75 = new MobileNetV1({ width: 0.75 });
    const m100 = new MobileNetV1({ width: 1.0 });
    expect(Math.round(m75.multiplyAdds() / 1e6)).toBe(325);
    expect(Math.round(m100.multiplyAdds() / 1e6)).toBe(568);
    [v15, v1, m75, m100].forEach((e) => e.dispose());
  });
});

describe('config validation', () => {
  beforeAll(() => useBackend('cpu'));

  const cases: [string, unknown, RegExp][] = [
    ['unknown type', { type: 'vgg16' }, /\$\.encoder\.type: unknown encoder type "vgg16"; expected one of: "resnet50", "mobilenet-v1"/],
    ['input size', { type: 'resnet50', inputSize: 100 }, /\$\.encoder\.inputSize: expected a positive multiple of 32, found 100/],
    ['grid', { type: 'resnet50', grid: 5 }, /\$\.encoder\.grid: grid 5 cannot be reached from the native 7x7 grid at input 224/],
    ['grid kind', { type: 'resnet50', grid: 'big' }, /\$\.encoder\.grid: expected 'native' or a positive integer/],
    ['freeze', { type: 'mobilenet-v1', width: 1, freeze: 'stage2' }, /\$\.encoder\.freeze: expected one of 'none', 'stem-stage1', 'all'/],
    ['trainableFrom', { type: 'mobilenet-v1', width: 1, trainableFrom: 0 }, /\$\.encoder\.trainableFrom: expected a block number \(a positive integer\), found 0/],
    ['trainableFrom range', { type: 'mobilenet-v1', width: 1, trainableFrom: 14 }, /\$\.encoder\.trainableFrom: this backbone has 13 blocks \(1\.\.13\), found 14/],
    ['trainableFrom range (resnet)', { type: 'resnet50', blocksPerStage: [1, 1, 1, 1], trainableFrom: 5 }, /\$\.encoder\.trainableFrom: this backbone has 4 blocks/],
    ['trainableFrom with freeze', { type: 'mobilenet-v1', width: 1, freeze: 'all', trainableFrom: 12 }, /\$\.encoder\.trainableFrom: freezes the blocks before it itself: it needs freeze 'none', found "all"/],
    ['width', { type: 'mobilenet-v1', width: 0.3 }, /\$\.encoder\.width: expected one of 0\.25, 0\.5, 0\.75, 1, found 0\.3/],
    ['stride', { type: 'resnet50', strideOn: '7x7' }, /\$\.encoder\.strideOn: expected '1x1' or '3x3'/],
    ['blocks', { type: 'resnet50', blocksPerStage: [3, 4, 6] }, /\$\.encoder\.blocksPerStage: expected four positive integers/],
    ['normalization', { type: 'resnet50', normalization: 'zscore' }, /\$\.encoder\.normalization: expected one of/],
  ];
  for (const [name, config, message] of cases) {
    it(`rejects a bad ${name} with a ConfigError naming the JSON path`, () => {
      let error: unknown;
      try {
        createEncoder(config as EncoderConfig);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect(S2CPNetError.isInstance(error)).toBe(true);
      expect((error as Error).message).toMatch(message);
    });
  }

  it('uses the given JSON path, and a user-extended factory map', () => {
    expect(() => createEncoder({ type: 'resnet50', inputSize: 31 }, { jsonPath: '$.model.backbone' })).toThrow(/\$\.model\.backbone\.inputSize/);
    let called = 0;
    const factories = {
      ...defaultEncoders,
      'my-net': (config: { type: 'my-net'; width: number }) => {
        called++;
        return new MobileNetV1({ width: 0.25, inputSize: 32, seed: config.width });
      },
    };
    const encoder = createEncoder({ type: 'my-net', width: 3 }, { factories });
    expect(called).toBe(1);
    expect(encoder.seed).toBe(3);
    expect(() => createEncoder({ type: 'nope' }, { factories })).toThrow(/"resnet50", "mobilenet-v1", "my-net"/);
    encoder.dispose();
  });
});
