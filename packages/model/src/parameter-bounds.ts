import { captionDecoderParameterCount, defaultCaptionDecoders } from '@s2cpnet/caption-decoder';
import { defaultCategoryHeads, multiLabelParameterCount, nextNounParameterCount } from '@s2cpnet/category-decoder';
import { defaultEncoders } from '@s2cpnet/encoder';
import { defaultFusions } from '@s2cpnet/fusion';
import type { S2CPNetConfig } from './config';
import type { ComponentFactories } from './s2cpnet';

/** A lower bound of the parameters of one component, by the JSON path of its config. */
export interface ParameterLowerBound {
  jsonPath: string;
  parameters: number;
}

const positive = (value: unknown, fallback: number): number => (value === undefined ? fallback : typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : NaN);

/** True when `type` is built by the toolkit's own factory (not a user's, whose sizes mean what it likes). */
function builtIn(map: Record<string, unknown> | undefined, defaults: Record<string, unknown>, type: string): boolean {
  return Object.prototype.hasOwnProperty.call(defaults, type) && (map === undefined || map[type] === defaults[type]);
}

/**
 * Lower bounds of the parameter counts of the built-in components a config names, computed from its sizes alone
 * (nothing is built). Each bound counts only weights that component surely has (the memory it reads is taken as
 * 1 wide, a ResNet only by its 3x3 and expanding 1x1 convs), so a model built from the config has at least the
 * sum. Loading compares it with the weights a checkpoint holds before building anything: a config tampered to
 * huge sizes is refused instead of allocated. Components of user factories and invalid sizes count 0.
 */
export function minimumParameterCounts(
  config: S2CPNetConfig,
  sizes: { vocabSize: number; numClasses: number; factories?: ComponentFactories },
): ParameterLowerBound[] {
  const f = sizes.factories ?? {};
  const bounds: ParameterLowerBound[] = [];
  const add = (jsonPath: string, parameters: number) => bounds.push({ jsonPath, parameters: Number.isFinite(parameters) && parameters > 0 ? parameters : 0 });

  const encoder = config.encoder as Record<string, unknown> & { type: string };
  if (encoder.type === 'resnet50' && builtIn(f.encoder as Record<string, unknown> | undefined, defaultEncoders as Record<string, unknown>, 'resnet50')) {
    const width = positive(encoder.baseWidth, 64);
    const blocks = Array.isArray(encoder.blocksPerStage) ? (encoder.blocksPerStage as unknown[]) : [3, 4, 6, 3];
    // Per bottleneck: the 3x3 conv mid*mid*9 and the expanding 1x1 conv mid*4mid, mid = width * 2^stage.
    add('$.encoder', blocks.reduce<number>((sum, count, stage) => sum + positive(count, 0) * 13 * (width * 2 ** stage) ** 2, 0));
  }

  const fusion = config.fusion as Record<string, unknown> & { type: string; dim: number };
  if (builtIn(f.fusion, defaultFusions as Record<string, unknown>, fusion.type)) {
    const dim = positive(fusion.dim, NaN);
    // cvff: per unit at least one attention (its query and output projections, 2*d*d); all: a projection to d.
    add('$.fusion', fusion.type.startsWith('cvff') ? positive(fusion.units, 3) * 2 * dim * dim : dim);
  }

  const head = config.categoryHead as (Record<string, unknown> & { type: string }) | null;
  if (head && builtIn(f.categoryHead, defaultCategoryHeads as Record<string, unknown>, head.type)) {
    // As the model builds it: the sizes it fills in first, then the config's own fields over them.
    const filled = { numClasses: sizes.numClasses, memoryWidth: 1, ...head } as never;
    if (head.type === 'multi-label') add('$.categoryHead', multiLabelParameterCount(filled));
    else if (head.type === 'next-noun') add('$.categoryHead', nextNounParameterCount(filled));
  }

  const decoder = config.captionDecoder as Record<string, unknown> & { type: string };
  if (builtIn(f.captionDecoder, defaultCaptionDecoders as Record<string, unknown>, decoder.type)) {
    // 'plain' has the fewest layer norms of the built-in layer types.
    add('$.captionDecoder', captionDecoderParameterCount({ vocabSize: sizes.vocabSize, memoryWidth: 1, ...decoder, layerType: 'plain' } as never));
  }
  return bounds;
}
