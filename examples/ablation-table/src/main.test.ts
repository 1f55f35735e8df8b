import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@s2cpnet/cli';
import { PRESETS, PRESET_NAMES, buildS2CPNet } from '@s2cpnet/model';
import { COUNT_WITH, run, tinyPresetConfig } from './main';

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

describe('ablation-table example', () => {
  it('tabulates every preset (tiny sizes) with its switches, parameters and forward shapes', async () => {
    await initBackend({ backend: 'wasm' });
    const tensorsBefore = tf.memory().numTensors;
    const result = await run({ backend: 'wasm', size: 'tiny', forward: true, log: () => {} });
    const tensorsAfter = tf.memory().numTensors;
    expect(result.rows.map((r) => r.preset)).toEqual([...PRESET_NAMES]);

    const lines = result.table.split('\n');
    expect(lines).toHaveLength(2 + PRESET_NAMES.length);
    expect(lines[0]).toMatch(/^preset +masks +SSFE +fusion +noun task +decoder +parameters/);

    for (const [i, row] of result.rows.entries()) {
      const p = PRESETS[row.preset];
      expect([row.masks, row.fusion, row.nounTask, row.decoder]).toEqual([p.masks, p.fusion, p.categoryTask, p.captionDecoder]);
      expect(row.ssfe).toBe(p.semanticEnhancer && p.spatialEnhancer ? 'both' : p.semanticEnhancer ? 'semantic' : p.spatialEnhancer ? 'spatial' : '-');
      expect(lines[i + 2]).toMatch(new RegExp(`^${row.preset} +${row.masks ? 'yes' : '-'} +${row.ssfe} +${row.fusion} .* ${row.parameters.toLocaleString('en-US')} `));

      // the count is the model's, and the model owns exactly the weights of its parts
      const rebuilt = buildS2CPNet(tinyPresetConfig(row.preset), COUNT_WITH);
      expect(row.parameters).toBe(rebuilt.countParams());
      rebuilt.dispose();
      expect(sum(Object.values(row.components))).toBe(row.parameters);
      expect(row.components.semanticEnhancer > 0).toBe(p.semanticEnhancer);
      expect(row.components.spatialEnhancer > 0).toBe(p.spatialEnhancer);
      expect(row.components.categoryHead > 0).toBe(p.categoryTask);

      // memory width: d for single-view and add, 2d for concat and CVFF (the two views side by side)
      const width = p.fusion === 'single-view' || p.fusion === 'add' ? 32 : 64;
      expect(row.forward?.memory).toEqual([2, 4, width]);
      expect(row.forward?.captionLogits).toEqual([2, 5, COUNT_WITH.vocabSize]);
      expect(row.forward?.categoryLogits).toEqual(p.categoryTask ? [2, COUNT_WITH.numClasses] : null);
    }
    const byName = Object.fromEntries(result.rows.map((r) => [r.preset, r]));
    // the same backbone serves every ResNet preset; Model4-B's spatial enhancer narrows the mask view before CVFF
    for (const name of PRESET_NAMES.filter((n) => n !== 'lite')) expect(byName[name]!.components.encoder).toBe(byName['baseline1']!.components.encoder);
    expect(byName['model4b']!.components.fusion).toBeLessThan(byName['model3']!.components.fusion);
    expect(byName['model3']!.parameters - byName['model2']!.parameters).toBe(byName['model3']!.components.categoryHead);
    // every model built (and run) was disposed with everything it allocated
    expect(tensorsAfter - tensorsBefore).toBe(0);
  });

  it('counts the paper-sized backbones: ResNet50 and MobileNetV1-0.75', async () => {
    const result = await run({ backend: 'wasm', size: 'paper', presets: ['baseline1', 'lite'], log: () => {} });
    const [baseline1, lite] = result.rows;
    // ResNet50 without its classifier: 23,508,032 weights (torchvision) + 53,120 batch-norm moving means and variances
    expect(baseline1!.components.encoder).toBe(23_508_032 + 53_120);
    // Keras' MobileNet alpha 0.75 without its top, moving statistics included
    expect(lite!.components.encoder).toBe(1_832_976);
    expect(baseline1!.parameters).toBeGreaterThan(30e6);
    expect(sum(Object.values(baseline1!.components))).toBe(baseline1!.parameters);
  });

  it('rejects an unknown preset, listing the valid ones', async () => {
    await expect(run({ presets: ['model5'], log: () => {} })).rejects.toThrow(/model5.*baseline1, baseline2/);
  });
});
