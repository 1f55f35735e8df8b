import { ConfigError } from '@s2cpnet/core';
import { FelzenszwalbSegmenter } from './felzenszwalb';
import type { MaskProvider } from './provider';
import { TargetSegmenter } from './targets';

/**
 * Versions of the built-in segmenter. `v1`: Felzenszwalb segments on RGB, every pixel in a segment, drawn in mean
 * colours (`FelzenszwalbSegmenter`). `v2`: targets on a background, shadow-robust weights, a plain background
 * (`TargetSegmenter`). `prepare` records the version in its manifest and training carries it into checkpoints, so
 * captioning computes masks with the version the model was trained on; absent means v1 (written before versions).
 */
export type MasksVersion = 'v1' | 'v2';

export const MASKS_VERSIONS: readonly MasksVersion[] = Object.freeze(['v1', 'v2']);

/** The built-in segmenter's default version: v1 until the v1/v2 caption ablation says otherwise. */
export const DEFAULT_MASKS_VERSION: MasksVersion = 'v1';

export function isMasksVersion(value: unknown): value is MasksVersion {
  return value === 'v1' || value === 'v2';
}

/** Checks a version given at the edge (a flag, a JSON field), naming where it came from. */
export function parseMasksVersion(value: unknown, where = 'masksVersion'): MasksVersion {
  if (value === undefined || value === null) return DEFAULT_MASKS_VERSION;
  if (!isMasksVersion(value)) throw new ConfigError(where, `expected one of ${MASKS_VERSIONS.join(', ')}, found ${JSON.stringify(value)}`);
  return value;
}

/**
 * The built-in segmenter of a version, with its default settings (the ones `prepare` uses).
 *
 * @example
 * ```ts
 * const provider = createBuiltInSegmenter(manifest.settings.masks.version ?? 'v1');
 * ```
 */
export function createBuiltInSegmenter(version: MasksVersion = DEFAULT_MASKS_VERSION): FelzenszwalbSegmenter | TargetSegmenter {
  const checked = parseMasksVersion(version);
  return checked === 'v2' ? new TargetSegmenter() : new FelzenszwalbSegmenter();
}

/** The version of a built-in segmenter, or undefined for other providers (folders, SAM, user code). */
export function builtInMasksVersion(provider: MaskProvider): MasksVersion | undefined {
  if (provider instanceof TargetSegmenter) return 'v2';
  if (provider instanceof FelzenszwalbSegmenter) return 'v1';
  return undefined;
}
