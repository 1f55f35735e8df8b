import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@s2cpnet/cli';
import { ConfigError } from '@s2cpnet/core';
import { createFusion } from '@s2cpnet/fusion';
import { loadCheckpoint } from '@s2cpnet/model';
import { FUSION_TYPES, fusions, run } from './main';
import { GatedSumFusion } from './gated-sum-fusion';

// The tiny ResNet50 (base width 8, one block per stage) ends in 8 * 8 * 4 = 256 channels on a 2x2 grid at 64 px.
const CHANNELS = 256;
const GRID = 2;
const DIM = 32;

describe('swap-fusion example', () => {
  it('builds and trains the same model with cvff, add, concat and the user-defined gated-sum', async () => {
    await initBackend({ backend: 'wasm' });
    const lines: string[] = [];
    const workDir = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-swap-fusion-test-'));
    onTestFinished(() => rmSync(workDir, { recursive: true, force: true }));
    const result = await run({ backend: 'wasm', images: 40, epochs: 2, batchSize: 8, dim: DIM, workDir, log: (l) => lines.push(l) });

    expect(result.runs.map((r) => r.fusion)).toEqual([...FUSION_TYPES]);
    const byFusion = Object.fromEntries(result.runs.map((r) => [r.fusion, r]));
    const linear = (inputs: number, outputs: number) => (inputs + 1) * outputs;
    const positions = GRID * DIM; // a row table and a column table, each G x d/2
    expect(byFusion['add']!.fusionParameters).toBe(linear(CHANNELS, DIM) * 2 + positions);
    expect(byFusion['concat']!.fusionParameters).toBe(linear(CHANNELS, DIM) * 2 + positions);
    expect(byFusion['gated-sum']!.fusionParameters).toBe(linear(CHANNELS, DIM) * 2 + linear(2 * DIM, DIM) + positions);
    expect(byFusion['cvff']!.fusionParameters).toBeGreaterThan(byFusion['concat']!.fusionParameters);
    // add and gated-sum give the decoder the same memory width, so the rest of the model is the same size
    expect(byFusion['gated-sum']!.parameters - byFusion['gated-sum']!.fusionParameters).toBe(byFusion['add']!.parameters - byFusion['add']!.fusionParameters);

    // memory [B, G*G, width]: add and gated-sum keep d, concat and cvff put the two views side by side (2d)
    expect(byFusion['add']!.memoryShape).toEqual([2, GRID * GRID, DIM]);
    expect(byFusion['gated-sum']!.memoryShape).toEqual([2, GRID * GRID, DIM]);
    expect(byFusion['concat']!.memoryShape).toEqual([2, GRID * GRID, 2 * DIM]);
    expect(byFusion['cvff']!.memoryShape).toEqual([2, GRID * GRID, 2 * DIM]);

    for (const r of result.runs) {
      // 32 training images in batches of 8, two epochs
      expect(r.stepLosses).toHaveLength(8);
      expect(r.epochLosses).toHaveLength(2);
      expect(r.stepLosses.every(Number.isFinite)).toBe(true);
      expect(r.epochLosses[1]!).toBeLessThan(r.epochLosses[0]!);
      expect(r.stepLosses[r.stepLosses.length - 1]!).toBeLessThan(r.stepLosses[0]! - 0.3);
    }
    expect(result.table.split('\n')).toHaveLength(1 + FUSION_TYPES.length);
    for (const r of result.runs) expect(result.table).toMatch(new RegExp(`^${r.fusion} +${r.parameters.toLocaleString('en-US')} `, 'm'));
    expect(lines.join('\n')).toContain(result.table);

    // the saved gated-sum checkpoint loads with the extended map, and names the known types without it
    const checkpoint = path.join(workDir, 'runs', 'gated-sum', 'best');
    const loaded = await loadCheckpoint(checkpoint, { factories: { fusion: fusions } });
    expect(loaded.model.fusion).toBeInstanceOf(GatedSumFusion);
    expect(loaded.model.countParams()).toBe(byFusion['gated-sum']!.parameters);
    loaded.model.dispose();
    await expect(loadCheckpoint(checkpoint)).rejects.toThrow(/gated-sum.*cvff/s);
  });

  it('gated-sum, created through the extended factory map, computes M = g*a + (1-g)*b + P', async () => {
    await initBackend({ backend: 'wasm' });
    const fusion = createFusion({ type: 'gated-sum', imageChannels: 6, maskChannels: 4, dim: 8, grid: 2, seed: 3, dropout: 0 } as never, fusions as never);
    expect(fusion).toBeInstanceOf(GatedSumFusion);
    expect(fusion.usesMaskView).toBe(true);
    expect(fusion.memoryWidth).toBe(8);
    (fusion as GatedSumFusion).ensureBuilt([null, 4, 6]);
    expect(fusion.countParams()).toBe(7 * 8 + 5 * 8 + 17 * 8 + 2 * 8);
    const tensorsBefore = tf.memory().numTensors;
    const image = tf.randomNormal([3, 4, 6], 0, 1, 'float32', 1) as tf.Tensor3D;
    const mask = tf.randomNormal([3, 4, 4], 0, 1, 'float32', 2) as tf.Tensor3D;
    const memory = fusion.fuse(image, mask);
    expect(memory.shape).toEqual([3, 4, 8]);
    // recompute M = b + g * (a - b) + P from the layer's own parts
    const gated = fusion as GatedSumFusion;
    const expected = tf.tidy(() => {
      const a = gated.imageProjection.forward(image);
      const b = gated.maskProjection.forward(mask);
      const g = tf.sigmoid(gated.gate.forward(tf.concat([a, b], -1)));
      return tf.add(tf.add(tf.mul(g, a), tf.mul(tf.sub(1, g), b)), gated.positions.forward());
    });
    const difference = tf.tidy(() => tf.max(tf.abs(tf.sub(memory, expected))).dataSync()[0]!);
    expect(difference).toBeLessThan(1e-5);
    expect(() => fusion.fuse(image, null)).toThrow(/maskTokens/);
    tf.dispose([image, mask, memory, expected]);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    fusion.dispose();
  });

  it('rejects an odd model width with the JSON path', () => {
    expect(() => new GatedSumFusion({ imageChannels: 4, maskChannels: 4, dim: 7, grid: 2 })).toThrow(ConfigError);
    expect(() => new GatedSumFusion({ imageChannels: 4, maskChannels: 4, dim: 7, grid: 2 })).toThrow(/\$\.fusion\.dim/);
  });
});
