// A tiny random S²CPNet checkpoint for tests of the packages that load checkpoints (test-only: *.test-util.ts files
// are not published). Needs a tfjs backend set up.
import { Vocabulary } from '@s2cpnet/data';
import { presetConfig } from './config';
import { buildS2CPNet } from './s2cpnet';
import { saveCheckpoint } from './checkpoint';

/** The s2cpnet preset at toy sizes (64 px input, one block per stage, width 32): milliseconds per image on the cpu backend. */
export function tinyConfig(seed?: number): ReturnType<typeof presetConfig> {
  const c = presetConfig('s2cpnet');
  return {
    ...c,
    name: 'tiny',
    ...(seed === undefined ? {} : { seed }),
    encoder: { type: 'resnet50' as const, inputSize: 64, grid: 'native' as const, blocksPerStage: [1, 1, 1, 1], baseWidth: 4, freeze: 'none' as const },
    spatialEnhancer: { outputChannels: 32 },
    fusion: { ...c.fusion, dim: 32, heads: 4, units: 1 },
    categoryHead: { type: 'multi-label' as const, dim: 32, numHeads: 4 },
    captionDecoder: { ...c.captionDecoder, dim: 32, numLayers: 1, numHeads: 4 },
  } as ReturnType<typeof presetConfig>;
}

/**
 * Saves a tiny random checkpoint whose vocabulary is `words` and whose noun classes are `classNames`, recording
 * computed masks at `workingSize`. Another `seed` gives other weights.
 */
export async function saveTinyCheckpoint(
  dir: string,
  options: { seed?: number; words?: readonly string[]; classNames?: string[]; workingSize?: number } = {},
): Promise<void> {
  const words = options.words ?? 'a road river tree house car green field many some beside'.split(' ');
  const classNames = options.classNames ?? ['road', 'river', 'tree'];
  const vocabulary = Vocabulary.build({ images: [{ id: '1', file: '1', split: 'train', jsonPath: '$', captions: [{ raw: '', tokens: [...words] }] }] }, { minWordFreq: 1 });
  const model = buildS2CPNet(tinyConfig(options.seed), { vocabSize: vocabulary.size, numClasses: classNames.length });
  try {
    await saveCheckpoint(dir, { model, vocabulary, classNames, masks: { provider: 'felzenszwalb', precomputed: false, workingSize: options.workingSize ?? 64 } });
  } finally {
    model.dispose();
  }
}
