// Helpers the queue tests share (test-only: *.test-util.ts files are not published).
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { benchmarkImage, encodePng, Vocabulary } from '@s2cpnet/data';
import { buildS2CPNet, presetConfig, saveCheckpoint } from '@s2cpnet/model';

/** The s2cpnet preset at toy sizes (64 px, one block per stage, width 32): runs in milliseconds per image on the cpu backend. */
export function tinyConfig(seed = 1): ReturnType<typeof presetConfig> {
  const c = presetConfig('s2cpnet');
  return {
    ...c,
    name: 'tiny',
    seed,
    encoder: { type: 'resnet50' as const, inputSize: 64, grid: 'native' as const, blocksPerStage: [1, 1, 1, 1], baseWidth: 4, freeze: 'none' as const },
    spatialEnhancer: { outputChannels: 32 },
    fusion: { ...c.fusion, dim: 32, heads: 4, units: 1 },
    categoryHead: { type: 'multi-label' as const, dim: 32, numHeads: 4 },
    captionDecoder: { ...c.captionDecoder, dim: 32, numLayers: 1, numHeads: 4 },
  } as ReturnType<typeof presetConfig>;
}

/** Saves a tiny random checkpoint (needs a tfjs backend set up); another `seed` gives other weights. */
export async function saveTinyCheckpoint(dir: string, seed = 1): Promise<void> {
  const words = 'a road river tree house car green field many some beside'.split(' ');
  const vocabulary = Vocabulary.build({ images: [{ id: '1', file: '1', split: 'train', jsonPath: '$', captions: [{ raw: '', tokens: words }] }] }, { minWordFreq: 1 });
  const model = buildS2CPNet(tinyConfig(seed), { vocabSize: vocabulary.size, numClasses: 3 });
  try {
    await saveCheckpoint(dir, { model, vocabulary, classNames: ['road', 'river', 'tree'], masks: { provider: 'felzenszwalb', precomputed: false, workingSize: 64 } });
  } finally {
    model.dispose();
  }
}

/** Writes `count` distinct 64 px PNG scenes named img-00.png ... into `dir`; returns their paths. */
export function writeTinyImages(dir: string, count: number, size = 64): string[] {
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < count; i++) {
    const file = path.join(dir, `img-${String(i).padStart(2, '0')}.png`);
    writeFileSync(file, encodePng(benchmarkImage(size, 100 + i)));
    files.push(file);
  }
  return files;
}
