import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { prepareDataset, writeSyntheticAerialSet } from '@s2cpnet/data';
import { presetConfig } from '../config';
import type { S2CPNetConfig } from '../config';
import type { PresetName } from '../presets';

/** A preset's switches at tiny sizes (64 px input, reduced ResNet, d 32) for fast tests. */
export function tinyConfig(preset: PresetName = 's2cpnet', seed = 3): S2CPNetConfig {
  const config = presetConfig(preset);
  return {
    ...config,
    encoder: { type: 'resnet50', inputSize: 64, grid: 'native', blocksPerStage: [1, 1, 1, 1], baseWidth: 4, freeze: 'none' },
    spatialEnhancer: config.spatialEnhancer ? { outputChannels: 32 } : null,
    fusion: { ...config.fusion, dim: 32, heads: 4, units: 1 },
    categoryHead: config.categoryHead ? { type: 'multi-label', dim: 32, numHeads: 4 } : null,
    captionDecoder: { ...config.captionDecoder, dim: 32, numLayers: 1, numHeads: 4 },
    seed,
  };
}

/** Writes and prepares a small synthetic set in a temp folder; returns the prepared folder. */
export async function tinyPreparedDataset(count = 40): Promise<{ root: string; prepared: string }> {
  const root = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-model-test-'));
  const set = await writeSyntheticAerialSet(path.join(root, 'synthetic'), { seed: 5, count, size: 64 });
  const prepared = path.join(root, 'prepared');
  await prepareDataset({ annotations: set.datasetFile, imagesDir: set.imagesDir, masksDir: set.masksDir, outDir: prepared, size: 64, minWordFreq: 1, minNounFreq: 1 });
  return { root, prepared };
}
