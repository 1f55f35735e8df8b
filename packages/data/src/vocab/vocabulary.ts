import { ConfigError } from '@s2cpnet/core';
import type { CaptionDataset } from '../dataset/types';

/** Reserved tokens and their fixed ids. `<pad>` is 0 so zero-filled buffers are padding. */
export const PAD_TOKEN = '<pad>';
export const START_TOKEN = '<start>';
export const END_TOKEN = '<end>';
export const UNKNOWN_TOKEN = '<unk>';
export const SPECIAL_TOKENS: readonly string[] = [PAD_TOKEN, START_TOKEN, END_TOKEN, UNKNOWN_TOKEN];

/** Defaults from the spec (section 1). */
export const DEFAULT_MIN_WORD_FREQ = 5;
export const DEFAULT_MAX_CAPTION_WORDS = 25;

export interface VocabularySettings {
  /** Words seen fewer times than this in the TRAIN split become `<unk>`. */
  minWordFreq: number;
  /** Captions longer than this many words are cut for training. */
  maxCaptionWords: number;
}

/** The saved form of a vocabulary (`vocabulary.json`). */
export interface VocabularyJson {
  format: 's2cpnet-vocabulary';
  version: 1;
  settings: VocabularySettings & { lowerCase: true; countedOn: 'train' };
  /** Every word by id: `words[0]` is `<pad>`, then `<start>`, `<end>`, `<unk>`, then the kept words. */
  words: string[];
  /** TRAIN-split count of each word, aligned with `words` (0 for the special tokens). */
  trainCounts: number[];
}

/**
 * Caption vocabulary: lower-cased tokens seen at least `minWordFreq` times in the TRAIN split (never val or
 * test, so evaluation words cannot leak in), plus `<pad>`=0, `<start>`, `<end>`, `<unk>`. Words are ordered by
 * descending train count, then alphabetically, so the same data always gives the same ids.
 *
 * @example
 * ```ts
 * const vocabulary = Vocabulary.build(dataset, { minWordFreq: 5 });
 * const ids = vocabulary.encodeCaption(['a', 'white', 'airplane'], 27); // Int32Array [<start>, ..., <end>, <pad>...]
 * vocabulary.decode(ids); // ['a', 'white', 'airplane']
 * ```
 */
export class Vocabulary {
  static readonly padId = 0;
  static readonly startId = 1;
  static readonly endId = 2;
  static readonly unknownId = 3;

  readonly padId = Vocabulary.padId;
  readonly startId = Vocabulary.startId;
  readonly endId = Vocabulary.endId;
  readonly unknownId = Vocabulary.unknownId;
  readonly settings: VocabularySettings;
  private readonly words: readonly string[];
  private readonly counts: readonly number[];
  private readonly ids: Map<string, number>;

  private constructor(words: string[], counts: number[], settings: VocabularySettings) {
    this.words = words;
    this.counts = counts;
    this.settings = settings;
    this.ids = new Map(words.map((word, id) => [word, id]));
  }

  /** Counts words over the TRAIN captions, each cut to `maxCaptionWords` words, and keeps the frequent ones. */
  static build(dataset: Pick<CaptionDataset, 'images'>, options: Partial<VocabularySettings> = {}): Vocabulary {
    const settings = checkSettings({
      minWordFreq: options.minWordFreq ?? DEFAULT_MIN_WORD_FREQ,
      maxCaptionWords: options.maxCaptionWords ?? DEFAULT_MAX_CAPTION_WORDS,
    });
    const counts = new Map<string, number>();
    for (const image of dataset.images) {
      if (image.split !== 'train') continue;
      for (const caption of image.captions) {
        // Training sees only the first maxCaptionWords words (encodeCaption cuts the rest): count only those.
        for (const token of caption.tokens.slice(0, settings.maxCaptionWords)) counts.set(token, (counts.get(token) ?? 0) + 1);
      }
    }
    const kept = [...counts]
      .filter(([word, count]) => count >= settings.minWordFreq && !SPECIAL_TOKENS.includes(word))
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return new Vocabulary(
      [...SPECIAL_TOKENS, ...kept.map(([word]) => word)],
      [0, 0, 0, 0, ...kept.map(([, count]) => count)],
      settings,
    );
  }

  /** Reads a saved vocabulary; `file` names the source in errors. */
  static fromJSON(json: unknown, file?: string): Vocabulary {
    const fail = (jsonPath: string, message: string): never => {
      throw new ConfigError(jsonPath, message, file ? { file } : undefined);
    };
    if (typeof json !== 'object' || json === null) return fail('$', 'expected a vocabulary object');
    const value = json as Partial<VocabularyJson>;
    if (value.format !== 's2cpnet-vocabulary') fail('$.format', `expected "s2cpnet-vocabulary", found ${JSON.stringify(value.format)}`);
    if (value.version !== 1) fail('$.version', `expected 1, found ${JSON.stringify(value.version)}`);
    const settings = value.settings;
    if (typeof settings !== 'object' || settings === null) return fail('$.settings', 'expected an object');
    checkSettings(settings, file);
    const words = value.words;
    if (!Array.isArray(words) || !words.every((w) => typeof w === 'string' && w.length > 0)) {
      return fail('$.words', 'expected an array of non-empty strings');
    }
    SPECIAL_TOKENS.forEach((token, id) => {
      if (words[id] !== token) fail(`$.words[${id}]`, `expected ${JSON.stringify(token)}, found ${JSON.stringify(words[id])}`);
    });
    if (new Set(words).size !== words.length) fail('$.words', 'contains a word twice');
    const counts = value.trainCounts ?? words.map(() => 0);
    if (!Array.isArray(counts) || counts.length !== words.length || !counts.every((c) => Number.isInteger(c) && c >= 0)) {
      fail('$.trainCounts', `expected ${words.length} non-negative integers (one per word)`);
    }
    return new Vocabulary([...words], [...counts], { minWordFreq: settings.minWordFreq, maxCaptionWords: settings.maxCaptionWords });
  }

  toJSON(): VocabularyJson {
    return {
      format: 's2cpnet-vocabulary',
      version: 1,
      settings: { ...this.settings, lowerCase: true, countedOn: 'train' },
      words: [...this.words],
      trainCounts: [...this.counts],
    };
  }

  /** Number of ids, special tokens included (V). */
  get size(): number {
    return this.words.length;
  }

  /** Id of a word (lower-cased), `<unk>` when unknown. */
  idOf(word: string): number {
    return this.ids.get(word.toLowerCase()) ?? Vocabulary.unknownId;
  }

  /** Word of an id; throws a RangeError for an id outside the vocabulary. */
  wordOf(id: number): string {
    const word = this.words[id];
    if (word === undefined) throw new RangeError(`Vocabulary.wordOf: id ${id} is outside 0..${this.words.length - 1}`);
    return word;
  }

  has(word: string): boolean {
    return this.ids.has(word.toLowerCase());
  }

  /** TRAIN count of a word (0 for unknown words and special tokens). */
  trainCount(word: string): number {
    const id = this.ids.get(word.toLowerCase());
    return id === undefined ? 0 : this.counts[id]!;
  }

  /** Ids of tokens, no `<start>`/`<end>`, no truncation. */
  encode(tokens: readonly string[]): number[] {
    return tokens.map((token) => this.idOf(token));
  }

  /**
   * A training row of `length` ids: `<start>`, the first `maxCaptionWords` tokens, `<end>`, then `<pad>`.
   * `length` defaults to `maxCaptionWords + 2`, the row that fits every caption after truncation.
   */
  encodeCaption(tokens: readonly string[], length = this.settings.maxCaptionWords + 2, out?: Int32Array, offset = 0): Int32Array {
    if (!Number.isInteger(length) || length < 2) throw new RangeError(`Vocabulary.encodeCaption: length must be an integer >= 2, found ${length}`);
    const row = out ?? new Int32Array(length);
    if (offset < 0 || offset + length > row.length) {
      throw new RangeError(`Vocabulary.encodeCaption: a row of ${length} does not fit in ${row.length} at offset ${offset}`);
    }
    const words = Math.min(tokens.length, this.settings.maxCaptionWords, length - 2);
    row[offset] = Vocabulary.startId;
    for (let i = 0; i < words; i++) row[offset + 1 + i] = this.idOf(tokens[i]!);
    row[offset + 1 + words] = Vocabulary.endId;
    row.fill(Vocabulary.padId, offset + 2 + words, offset + length);
    return row;
  }

  /** Words of ids: skips `<start>` and `<pad>`, stops at `<end>`. */
  decode(ids: ArrayLike<number>): string[] {
    const words: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id === Vocabulary.endId) break;
      if (id === Vocabulary.startId || id === Vocabulary.padId) continue;
      words.push(this.wordOf(id));
    }
    return words;
  }

  /** The kept words (without the special tokens), by id. */
  get wordList(): readonly string[] {
    return this.words.slice(SPECIAL_TOKENS.length);
  }
}

function checkSettings<T extends Partial<VocabularySettings>>(settings: T, file?: string): T & VocabularySettings {
  const where = file ? { file } : undefined;
  if (!Number.isInteger(settings.minWordFreq) || settings.minWordFreq! < 1) {
    throw new ConfigError('$.settings.minWordFreq', `expected an integer >= 1, found ${JSON.stringify(settings.minWordFreq)}`, where);
  }
  if (!Number.isInteger(settings.maxCaptionWords) || settings.maxCaptionWords! < 1) {
    throw new ConfigError('$.settings.maxCaptionWords', `expected an integer >= 1, found ${JSON.stringify(settings.maxCaptionWords)}`, where);
  }
  return settings as T & VocabularySettings;
}

/** Captions of `split` (all splits when omitted) with more than `maxCaptionWords` words: they are cut for training. */
export function countLongCaptions(
  dataset: Pick<CaptionDataset, 'images'>,
  maxCaptionWords = DEFAULT_MAX_CAPTION_WORDS,
  split?: 'train' | 'val' | 'test',
): { truncated: number; total: number; longest: number } {
  let truncated = 0;
  let total = 0;
  let longest = 0;
  for (const image of dataset.images) {
    if (split && image.split !== split) continue;
    for (const caption of image.captions) {
      total++;
      longest = Math.max(longest, caption.tokens.length);
      if (caption.tokens.length > maxCaptionWords) truncated++;
    }
  }
  return { truncated, total, longest };
}
