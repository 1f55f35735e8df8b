/**
 * Access to the COCO caption toolkit's golden outputs in the project's shared folder (tests only).
 *
 * The folder is found by the repository's one helper (`scripts/shared-dir.ts`): `S2CPNET_SHARED_DIR`, else `shared/`
 * beside the repository. Tests that need it are skipped when it is absent, except in CI, where that is an error.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { sharedPath } from '../../../../scripts/shared-dir';

import type { CaptionItem } from '../types.js';

/** The golden data directory, or undefined when the shared folder is absent. */
export const GOLDEN_DIR = sharedPath('testdata/coco-caption-golden');
/** Meteor 1.5's own English resource files, or undefined when absent. */
export const METEOR_RESOURCES_DIR = sharedPath('testdata/meteor-resources');

export interface GoldenCase {
  image_id: string;
  candidate_raw: string;
  references_raw: string[];
  candidate: string;
  references: string[];
  tags: string[];
}

export interface GoldenImageScores {
  image_id: string;
  Bleu_1: number;
  Bleu_2: number;
  Bleu_3: number;
  Bleu_4: number;
  METEOR_no_paraphrase: number;
  meteor_stats_no_paraphrase: string;
  ROUGE_L: number;
  CIDEr: number;
}

export interface GoldenScores {
  subset: string;
  n_images: number;
  corpus: {
    Bleu_1: number;
    Bleu_2: number;
    Bleu_3: number;
    Bleu_4: number;
    METEOR_no_paraphrase: number;
    ROUGE_L: number;
    CIDEr: number;
    Sm_with_METEOR_no_paraphrase: number;
  };
  per_image: GoldenImageScores[];
}

export const GOLDEN_SUBSETS = ['all', 'random_50', 'edge_cases_only', 'single_image', 'two_images'] as const;

export function readGoldenJson<T>(name: string): T {
  if (GOLDEN_DIR === undefined) throw new Error('the golden data folder is absent');
  return JSON.parse(readFileSync(join(GOLDEN_DIR, name), 'utf8')) as T;
}

export function goldenInputs(): { cases: GoldenCase[]; subsets: Record<string, string[]> } {
  return readGoldenJson('inputs.json');
}

export function goldenScores(subset: string): GoldenScores {
  return readGoldenJson(`scores_${subset}.json`);
}

/** The items of a subset, tokenized (`raw` false: the toolkit's tokenized text) or raw. */
export function goldenItems(subset: string, raw = false): CaptionItem[] {
  const inputs = goldenInputs();
  const byId = new Map(inputs.cases.map((entry) => [entry.image_id, entry]));
  return inputs.subsets[subset]!.map((imageId) => {
    const entry = byId.get(imageId)!;
    return raw
      ? { imageId, candidate: entry.candidate_raw, references: entry.references_raw }
      : { imageId, candidate: entry.candidate, references: entry.references };
  });
}
