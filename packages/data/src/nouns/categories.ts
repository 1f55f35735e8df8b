import { ConfigError } from '@s2cpnet/core';
import type { CaptionDataset } from '../dataset/types';
import { NOUN_TAGGER, NounExtractor } from './extractor';
import { DEFAULT_NOUN_STOP_LIST } from './lexicon';

/** Default from the spec: nouns seen fewer than 5 times in TRAIN are dropped. */
export const DEFAULT_MIN_NOUN_FREQ = 5;

/**
 * Versions of the rules that turn caption nouns into target classes. `v1` (the first release): every common noun as
 * written, singular and plural apart. `v2` (default): plurals merged into their singular ("runways" -> "runway") and
 * layout words used as layout left out ("arranged in lines", "divided into rectangles"; see `layoutUse`).
 */
export type NounRules = 'v1' | 'v2';
export const DEFAULT_NOUN_RULES: NounRules = 'v2';
const NOUN_RULES: Record<NounRules, { mergePlurals: boolean; layoutRules: boolean }> = {
  v1: { mergePlurals: false, layoutRules: false },
  v2: { mergePlurals: true, layoutRules: true },
};

export interface CategoryLabelSettings {
  /** A noun becomes a class when it occurs in at least this many TRAIN captions. */
  minNounFreq: number;
  /** Nouns never used as classes. */
  stopList: readonly string[];
  /** Whether plurals were merged into their singular. */
  mergePlurals: boolean;
  /** Whether layout words used as layout were left out (false in files written before noun rules v2). */
  layoutRules: boolean;
  /** The noun rules these settings are (`v1` for files written before they were versioned), or 'custom'. */
  rules: NounRules | 'custom';
  /** Tagger that found the nouns. */
  tagger: string;
}

/** The saved form of noun classes and per-image labels (`nouns.json`). */
export interface CategoryLabelsJson {
  format: 's2cpnet-nouns';
  version: 1;
  settings: CategoryLabelSettings;
  /** The K noun classes, by class index (descending train count, then alphabetical). */
  classes: string[];
  /** Number of TRAIN captions each class occurs in, aligned with `classes`. */
  trainCounts: number[];
  /** Image id -> its target nouns (class names), in class order. */
  images: Record<string, string[]>;
}

/**
 * The multi-target classification labels (spec section 1): the noun classes (K of them) and, per image, the union
 * of the class nouns of its captions.
 *
 * @example
 * ```ts
 * const labels = buildCategoryLabels(dataset);
 * labels.classes;                  // ['plants', 'cars', 'area', ...]
 * labels.multiHot('1.jpg');        // Float32Array(K) with 1 at the image's nouns
 * ```
 */
export class CategoryLabels {
  readonly classes: readonly string[];
  readonly trainCounts: readonly number[];
  readonly settings: CategoryLabelSettings;
  private readonly imageNouns: Map<string, readonly string[]>;
  private readonly index: Map<string, number>;

  constructor(classes: string[], trainCounts: number[], imageNouns: Map<string, readonly string[]>, settings: CategoryLabelSettings) {
    this.classes = classes;
    this.trainCounts = trainCounts;
    this.imageNouns = imageNouns;
    this.settings = settings;
    this.index = new Map(classes.map((noun, i) => [noun, i]));
  }

  /** Number of classes (K). */
  get size(): number {
    return this.classes.length;
  }

  classIndex(noun: string): number | undefined {
    return this.index.get(noun);
  }

  /** Target nouns of an image (empty when it has none or is unknown). */
  nounsOf(imageId: string): readonly string[] {
    return this.imageNouns.get(imageId) ?? [];
  }

  hasImage(imageId: string): boolean {
    return this.imageNouns.has(imageId);
  }

  /** Multi-hot target of an image, written into `out` at `offset` when given. */
  multiHot(imageId: string, out?: Float32Array, offset = 0): Float32Array {
    const target = out ?? new Float32Array(this.classes.length);
    if (offset < 0 || offset + this.classes.length > target.length) {
      throw new RangeError(`CategoryLabels.multiHot: ${this.classes.length} classes do not fit in ${target.length} at offset ${offset}`);
    }
    target.fill(0, offset, offset + this.classes.length);
    for (const noun of this.nounsOf(imageId)) target[offset + this.index.get(noun)!] = 1;
    return target;
  }

  toJSON(): CategoryLabelsJson {
    return {
      format: 's2cpnet-nouns',
      version: 1,
      settings: { ...this.settings, stopList: [...this.settings.stopList] },
      classes: [...this.classes],
      trainCounts: [...this.trainCounts],
      images: Object.fromEntries([...this.imageNouns].map(([id, nouns]) => [id, [...nouns]])),
    };
  }

  static fromJSON(json: unknown, file?: string): CategoryLabels {
    const where = file ? { file } : undefined;
    const fail = (jsonPath: string, message: string): never => {
      throw new ConfigError(jsonPath, message, where);
    };
    if (typeof json !== 'object' || json === null) return fail('$', 'expected a noun-labels object');
    const value = json as Partial<CategoryLabelsJson>;
    if (value.format !== 's2cpnet-nouns') fail('$.format', `expected "s2cpnet-nouns", found ${JSON.stringify(value.format)}`);
    if (value.version !== 1) fail('$.version', `expected 1, found ${JSON.stringify(value.version)}`);
    const { classes, trainCounts, images, settings } = value;
    if (!Array.isArray(classes) || !classes.every((c) => typeof c === 'string')) return fail('$.classes', 'expected an array of strings');
    if (new Set(classes).size !== classes.length) fail('$.classes', 'contains a class twice');
    if (!Array.isArray(trainCounts) || trainCounts.length !== classes.length) fail('$.trainCounts', `expected ${classes.length} counts`);
    if (typeof settings !== 'object' || settings === null) return fail('$.settings', 'expected an object');
    if (typeof images !== 'object' || images === null || Array.isArray(images)) return fail('$.images', 'expected an object of image id -> nouns');
    const known = new Set(classes);
    const imageNouns = new Map<string, readonly string[]>();
    for (const [id, nouns] of Object.entries(images)) {
      const at = `$.images[${JSON.stringify(id)}]`;
      if (!Array.isArray(nouns)) fail(at, 'expected an array of class names');
      nouns.forEach((noun, i) => {
        if (!known.has(noun)) fail(`${at}[${i}]`, `${JSON.stringify(noun)} is not one of the classes`);
      });
      imageNouns.set(id, [...nouns]);
    }
    return new CategoryLabels([...classes], [...trainCounts!], imageNouns, {
      minNounFreq: settings.minNounFreq,
      stopList: [...(settings.stopList ?? [])],
      mergePlurals: Boolean(settings.mergePlurals),
      layoutRules: Boolean(settings.layoutRules),
      rules: nounRulesOf(settings, fail),
      tagger: String(settings.tagger ?? ''),
    });
  }
}

/** The `rules` of saved settings; files written before the rules were versioned are v1 (or custom, with merged plurals). */
function nounRulesOf(settings: Partial<CategoryLabelSettings>, fail: (jsonPath: string, message: string) => never): NounRules | 'custom' {
  if (settings.rules === undefined) return settings.mergePlurals || settings.layoutRules ? 'custom' : 'v1';
  if (settings.rules === 'v1' || settings.rules === 'v2' || settings.rules === 'custom') return settings.rules;
  return fail('$.settings.rules', `expected "v1", "v2" or "custom", found ${JSON.stringify(settings.rules)}`);
}

export interface BuildCategoryLabelsOptions {
  minNounFreq?: number;
  stopList?: readonly string[];
  /** Which rules make classes of nouns (default `v2`); ignored when `extractor` is given. */
  rules?: NounRules;
  /** A configured extractor (its `mergePlurals` and `layoutRules` are then the rules: 'custom' unless they match one). */
  extractor?: NounExtractor;
}

/**
 * Tags every caption, counts nouns over the TRAIN captions (a noun counts once per caption), keeps nouns seen in at
 * least `minNounFreq` of them that are not on the stop-list, not a single character and not a number, and labels
 * every image (all splits) with the kept nouns of its captions.
 */
export function buildCategoryLabels(
  dataset: Pick<CaptionDataset, 'images'>,
  options: BuildCategoryLabelsOptions = {},
): CategoryLabels {
  const minNounFreq = options.minNounFreq ?? DEFAULT_MIN_NOUN_FREQ;
  if (!Number.isInteger(minNounFreq) || minNounFreq < 1) {
    throw new ConfigError('$.minNounFreq', `expected an integer >= 1, found ${JSON.stringify(minNounFreq)}`);
  }
  const stopList = options.stopList ?? DEFAULT_NOUN_STOP_LIST;
  const stop = new Set(stopList.map((word) => word.toLowerCase()));
  const rules = options.rules ?? DEFAULT_NOUN_RULES;
  if (!(rules in NOUN_RULES)) throw new ConfigError('$.nounRules', `expected ${Object.keys(NOUN_RULES).join(' or ')}, found ${JSON.stringify(rules)}`);
  const extractor = options.extractor ?? new NounExtractor(NOUN_RULES[rules]);
  const matching = (Object.keys(NOUN_RULES) as NounRules[]).find(
    (name) => NOUN_RULES[name].mergePlurals === extractor.mergePlurals && NOUN_RULES[name].layoutRules === extractor.layoutRules,
  );
  const perImage = new Map<string, string[][]>();
  const counts = new Map<string, number>();
  for (const image of dataset.images) {
    const nounsPerCaption = image.captions.map((caption) => extractor.nounsOf(caption.tokens, stop));
    perImage.set(image.id, nounsPerCaption);
    if (image.split !== 'train') continue;
    for (const nouns of nounsPerCaption) for (const noun of nouns) counts.set(noun, (counts.get(noun) ?? 0) + 1);
  }
  const kept = [...counts]
    .filter(([noun, count]) => count >= minNounFreq && !stop.has(noun) && noun.length > 1 && !/\d/.test(noun))
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const classes = kept.map(([noun]) => noun);
  const classIndex = new Map(classes.map((noun, i) => [noun, i]));
  const imageNouns = new Map<string, readonly string[]>();
  for (const [id, nounsPerCaption] of perImage) {
    const set = new Set<string>();
    for (const nouns of nounsPerCaption) for (const noun of nouns) if (classIndex.has(noun)) set.add(noun);
    imageNouns.set(id, [...set].sort((a, b) => classIndex.get(a)! - classIndex.get(b)!));
  }
  return new CategoryLabels(classes, kept.map(([, count]) => count), imageNouns, {
    minNounFreq,
    stopList: [...stopList],
    mergePlurals: extractor.mergePlurals,
    layoutRules: extractor.layoutRules,
    rules: options.extractor ? (matching ?? 'custom') : rules,
    tagger: NOUN_TAGGER,
  });
}
