/**
 * The conformance suite every entry of the fusion factory map must pass (the map is iterated, so a new built-in
 * strategy is covered automatically), plus a user-defined strategy added to the map to show that extensions pass
 * the same contract.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  Linear,
  S2Layer,
  registerLayers,
  type FactoryMap,
  type ForwardOptions,
  type FusionStrategy,
  type S2LayerArgs,
} from '@s2cpnet/core';
import {
  disposeWeights,
  expectNoLeaks,
  loadWeights,
  randomizeWeights,
  randomTensor,
  rebuildFromConfig,
  saveWeights,
  testBackends,
  useBackend,
  weightGradients,
} from '@s2cpnet/core/testing';
import { createFusion, defaultFusions, registerFusionLayers, type FusionConfig, type FusionLayer } from './index';

/** A user-defined strategy: memory = Linear(V1) + sigmoid(Linear(V2 -> 1)) * Linear(V2). */
interface GatedSumConfig {
  type: 'gated-sum';
  imageChannels: number;
  maskChannels: number;
  dim: number;
  grid: number;
  seed?: number;
}

class GatedSumFusion extends S2Layer implements FusionStrategy {
  static readonly className = 'TestGatedSumFusion';
  readonly usesMaskView = true;
  readonly memoryWidth: number;
  readonly imageChannels: number;
  readonly maskChannels: number;
  readonly grid: number;
  readonly imageProjection: Linear;
  readonly maskProjection: Linear;
  readonly gate: Linear;

  constructor(args: Omit<GatedSumConfig, 'type'> & S2LayerArgs) {
    super(args);
    this.imageChannels = args.imageChannels;
    this.maskChannels = args.maskChannels;
    this.memoryWidth = args.dim;
    this.grid = args.grid;
    this.imageProjection = this.child('imageProjection', new Linear({ inputDim: args.imageChannels, units: args.dim, seed: this.childSeed('imageProjection') }));
    this.maskProjection = this.child('maskProjection', new Linear({ inputDim: args.maskChannels, units: args.dim, seed: this.childSeed('maskProjection') }));
    this.gate = this.child('gate', new Linear({ inputDim: args.maskChannels, units: 1, seed: this.childSeed('gate') }));
  }

  override build(): void {
    this.buildChild(this.imageProjection, [null, this.imageChannels]);
    this.buildChild(this.maskProjection, [null, this.maskChannels]);
    this.buildChild(this.gate, [null, this.maskChannels]);
    this.built = true;
  }

  fuse(imageTokens: tf.Tensor3D, maskTokens: tf.Tensor3D | null, _options?: ForwardOptions): tf.Tensor3D {
    this.ensureBuilt([null, this.imageChannels]);
    if (!maskTokens) throw new Error('GatedSumFusion needs mask tokens');
    return tf.tidy(() => {
      const gate = tf.sigmoid(this.gate.forward(maskTokens));
      return tf.add(this.imageProjection.forward(imageTokens), tf.mul(gate, this.maskProjection.forward(maskTokens))) as tf.Tensor3D;
    });
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const [image, mask] = inputs as tf.Tensor3D[];
    return this.fuse(image!, mask ?? null, kwargs as ForwardOptions);
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const first = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    return [first[0] ?? null, this.grid * this.grid, this.memoryWidth];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      imageChannels: this.imageChannels,
      maskChannels: this.maskChannels,
      dim: this.memoryWidth,
      grid: this.grid,
      seed: this.seed,
    };
  }
}

type ExtendedConfig = FusionConfig | GatedSumConfig;

const extendedFusions: FactoryMap<ExtendedConfig, FusionLayer> = {
  ...defaultFusions,
  'gated-sum': ({ type: _type, ...args }) => new GatedSumFusion(args),
};

const SIZES = { imageChannels: 6, maskChannels: 5, dim: 8, grid: 2, heads: 2, units: 2, ffnMultiplier: 2 };
const BATCH = 2;
const TOKENS = SIZES.grid * SIZES.grid;

const configFor = (type: string, seed: number): ExtendedConfig => ({ type, ...SIZES, seed }) as ExtendedConfig;

/** Runs the fusion and returns plain values (no tensor escapes). */
function memoryValues(fusion: FusionLayer, image: tf.Tensor3D, mask: tf.Tensor3D, options?: ForwardOptions): number[] {
  const memory = fusion.fuse(image, fusion.usesMaskView ? mask : null, options);
  const values = Array.from(memory.dataSync());
  memory.dispose();
  return values;
}

/** Creates weights (lazily made on first use) so that later measurements see only the forward pass. */
function built<T extends FusionLayer>(fusion: T): T {
  const [x, m] = [tf.zeros([1, TOKENS, SIZES.imageChannels]) as tf.Tensor3D, tf.zeros([1, TOKENS, SIZES.maskChannels]) as tf.Tensor3D];
  memoryValues(fusion, x, m);
  tf.dispose([x, m]);
  return fusion;
}

const create = (type: string, seed: number): FusionLayer => built(createFusion(configFor(type, seed), extendedFusions));

const strategyNames = Object.keys(extendedFusions);

describe('the factory map under test', () => {
  it('holds every built-in strategy and the user-defined one', () => {
    expect(strategyNames).toEqual([...Object.keys(defaultFusions), 'gated-sum']);
    expect(Object.keys(defaultFusions).sort()).toEqual(['add', 'concat', 'cvff', 'cvff-reference', 'single-view']);
  });
});

for (const backend of testBackends()) {
  describe(`fusion conformance on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
      registerFusionLayers();
      registerLayers([GatedSumFusion]);
    });

    describe.each(strategyNames)('%s', (type) => {
      const image = () => randomTensor([BATCH, TOKENS, SIZES.imageChannels], 101) as tf.Tensor3D;
      const mask = () => randomTensor([BATCH, TOKENS, SIZES.maskChannels], 102) as tf.Tensor3D;

      it('returns memory of the declared shape, through fuse and through tfjs apply', () => {
        const [x, m] = [image(), mask()];
        const fusion = create(type, 1);
        expectNoLeaks(() => {
          const declared = fusion.computeOutputShape([x.shape, m.shape]) as number[];
          expect(declared).toEqual([BATCH, TOKENS, fusion.memoryWidth]);
          const memory = fusion.fuse(x, fusion.usesMaskView ? m : null);
          expect(memory.shape).toEqual(declared);
          const applied = fusion.apply([x, m]) as tf.Tensor;
          expect(applied.shape).toEqual(declared);
          expect(Array.from(applied.dataSync())).toEqual(Array.from(memory.dataSync()));
          tf.dispose([memory, applied]);
        });
        tf.dispose([x, m]);
        disposeWeights(fusion);
      });

      it('passes a gradient to every trainable weight (training mode)', () => {
        const [x, m] = [image(), mask()];
        const fusion = create(type, 2);
        const r = randomTensor([BATCH, TOKENS, fusion.memoryWidth], 103);
        expectNoLeaks(() => {
          const { gradientMax } = weightGradients(fusion, () => tf.mul(fusion.fuse(x, fusion.usesMaskView ? m : null, { training: true, dropoutSeed: 4 }), r));
          const paths = Object.keys(gradientMax);
          expect(paths.length).toBe(fusion.trainableWeights.length);
          expect(paths.length).toBeGreaterThan(0);
          for (const path of paths) expect(gradientMax[path], `gradient of ${path}`).toBeGreaterThan(0);
        });
        tf.dispose([x, m, r]);
        disposeWeights(fusion);
      });

      it('round-trips its config through JSON and the tfjs registry (same seed, same weights, same output)', () => {
        const [x, m] = [image(), mask()];
        const fusion = create(type, 3);
        const rebuilt = built(rebuildFromConfig(fusion));
        expect(rebuilt.getClassName()).toBe(fusion.getClassName());
        const { name: _a, ...config } = fusion.getConfig();
        const { name: _b, ...rebuiltConfig } = rebuilt.getConfig();
        expect(rebuiltConfig).toEqual(config);
        expectNoLeaks(() => expect(memoryValues(rebuilt, x, m)).toEqual(memoryValues(fusion, x, m)));
        expect(rebuilt.countParams()).toBe(fusion.countParams());
        tf.dispose([x, m]);
        disposeWeights(fusion);
        disposeWeights(rebuilt);
      });

      it('saves and loads its weights by path into a layer rebuilt from config', async () => {
        const [x, m] = [image(), mask()];
        const fusion = create(type, 4);
        randomizeWeights(fusion, 44); // so that a fresh layer from the same config differs until loaded
        const expected = memoryValues(fusion, x, m);
        const saved = await saveWeights(fusion);
        const rebuilt = built(rebuildFromConfig(fusion));
        expect(memoryValues(rebuilt, x, m)).not.toEqual(expected);
        expectNoLeaks(() => loadWeights(rebuilt, saved));
        expect(memoryValues(rebuilt, x, m)).toEqual(expected);
        tf.dispose([x, m]);
        disposeWeights(fusion);
        disposeWeights(rebuilt);
      });

      it('leaks no tensor in inference, training and gradient computation', () => {
        const [x, m] = [image(), mask()];
        const fusion = create(type, 5);
        expectNoLeaks(() => {
          memoryValues(fusion, x, m);
          memoryValues(fusion, x, m, { training: true, dropoutSeed: 1 });
          weightGradients(fusion, () => fusion.fuse(x, fusion.usesMaskView ? m : null, { training: true, dropoutSeed: 2 }));
        });
        tf.dispose([x, m]);
        disposeWeights(fusion);
      });

      it('is deterministic under its seed (weights and dropout)', () => {
        const [x, m] = [image(), mask()];
        const first = create(type, 6);
        const second = create(type, 6);
        const otherSeed = create(type, 7);
        expectNoLeaks(() => {
          expect(memoryValues(second, x, m)).toEqual(memoryValues(first, x, m));
          expect(memoryValues(otherSeed, x, m)).not.toEqual(memoryValues(first, x, m));
          const training = { training: true, dropoutSeed: 9 };
          expect(memoryValues(second, x, m, training)).toEqual(memoryValues(first, x, m, training));
          const dropoutRate = first.getConfig()['dropout'];
          if (typeof dropoutRate === 'number' && dropoutRate > 0) {
            expect(memoryValues(first, x, m, { training: true, dropoutSeed: 10 })).not.toEqual(memoryValues(first, x, m, training));
          }
        });
        tf.dispose([x, m]);
        for (const layer of [first, second, otherSeed]) disposeWeights(layer);
      });
    });
  });
}
