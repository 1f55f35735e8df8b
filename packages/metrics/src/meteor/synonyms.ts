/**
 * Meteor's synonym module data: WordNet 3.0 words to synset ids, plus WordNet's irregular forms and Meteor's own
 * copy of WordNet's `morphy` suffix rules.
 *
 * Meteor 1.5 reads `english.synsets` (each lemma with the byte offsets of its synsets in the four `data.*`
 * files) and `english.exceptions` (the `*.exc` files inverted). Both are exactly derivable from WordNet 3.0:
 * the synsets from the `index.noun/verb/adj/adv` files, the exceptions from the `*.exc` files. This package ships
 * them, built by `scripts/build-wordnet.mjs`, in `data/wordnet-3.0-synsets.txt.gz` and
 * `data/wordnet-3.0-exceptions.txt.gz` (WordNet 3.0 licence in `data/WORDNET-LICENSE`); a test checks them against
 * the files Meteor 1.5 itself ships: identical, word for word. The version matters: Meteor keys synsets by offset
 * alone, without the part of speech, so offsets that coincide across parts of speech make unrelated words
 * "synonyms" (`parking`/`green`, `bridge`/`spans`), and WordNet 3.1 has different offsets.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

import { MetricsInputError } from '../errors.js';

const PARTS_OF_SPEECH = ['noun', 'verb', 'adj', 'adv'] as const;

/** Suffix rules of WordNet 3.0 morphy in Meteor's order: nouns, verbs, adjectives. */
const MORPH_SUFFIXES = ['s', 'ses', 'xes', 'zes', 'ches', 'shes', 'men', 'ies', 's', 'ies', 'es', 'es', 'ed', 'ed', 'ing', 'ing', 'er', 'est', 'er', 'est'];
const MORPH_ENDINGS = ['', 's', 'x', 'z', 'ch', 'sh', 'man', 'y', '', 'y', 'e', '', 'e', '', 'e', '', '', '', 'e', 'e'];

const EMPTY: readonly number[] = [];

/** The data files this package ships in its `data/` folder (see `scripts/build-wordnet.mjs`). */
const SHIPPED_SYNSETS_FILE = 'wordnet-3.0-synsets.txt.gz';
const SHIPPED_EXCEPTIONS_FILE = 'wordnet-3.0-exceptions.txt.gz';

/** Where the WordNet files are read from. Both default to the WordNet 3.0 data shipped with this package. */
export interface WordNetSource {
  /** Directory with WordNet 3.0 `index.noun`, `index.verb`, `index.adj`, `index.adv`. */
  indexDirectory?: string;
  /** Directory with WordNet 3.0 `noun.exc`, `verb.exc`, `adj.exc`, `adv.exc`. */
  exceptionDirectory?: string;
}

/** Lemma -> synset offsets and irregular form -> base forms, as Meteor's SynonymDictionary holds them. */
export class SynonymDictionary {
  private readonly wordToSynsets: Map<string, readonly number[]>;
  private readonly formToBases: Map<string, readonly string[]>;
  private readonly cache = new Map<string, ReadonlySet<number>>();

  constructor(wordToSynsets: Map<string, readonly number[]>, formToBases: Map<string, readonly string[]>) {
    this.wordToSynsets = wordToSynsets;
    this.formToBases = formToBases;
  }

  /** Number of lemmas known. */
  get size(): number {
    return this.wordToSynsets.size;
  }

  /** Synset offsets of the word itself. */
  synsets(word: string): readonly number[] {
    return this.wordToSynsets.get(word) ?? EMPTY;
  }

  /** The irregular base forms WordNet lists for a word (`is` -> `be`, ...), if any. */
  irregularBases(word: string): readonly string[] | undefined {
    return this.formToBases.get(word);
  }

  /** Synset offsets of the word's base forms: its irregular bases if it has any, else its morphy base. */
  stemSynsets(word: string): readonly number[] {
    const bases = this.formToBases.get(word);
    if (bases !== undefined) return bases.flatMap((base) => this.synsets(base));
    return this.synsets(this.morph(word));
  }

  /** Everything the synonym module compares for a word: its own synsets and those of its base form. */
  matchSet(word: string): ReadonlySet<number> {
    let set = this.cache.get(word);
    if (set === undefined) {
      set = new Set([...this.synsets(word), ...this.stemSynsets(word)]);
      this.cache.set(word, set);
    }
    return set;
  }

  /**
   * Meteor's morphy: the first suffix rule whose base form is a WordNet lemma. A word ending in `ss` or of at
   * most two characters is its own base; a word no rule applies to has none (the empty string).
   */
  morph(word: string): string {
    if (word.endsWith('ss') || word.length <= 2) return word;
    for (let i = 0; i < MORPH_SUFFIXES.length; i++) {
      const suffix = MORPH_SUFFIXES[i]!;
      if (word.endsWith(suffix)) {
        const base = word.slice(0, word.length - suffix.length) + MORPH_ENDINGS[i]!;
        if (this.wordToSynsets.has(base)) return base;
      }
    }
    return '';
  }
}

let defaultDictionary: SynonymDictionary | undefined;

/** The WordNet 3.0 synonym dictionary shipped with this package, loaded once per process. */
export function loadDefaultSynonymDictionary(): SynonymDictionary {
  defaultDictionary ??= loadSynonymDictionary();
  return defaultDictionary;
}

/**
 * Load a synonym dictionary: by default the WordNet 3.0 data shipped with this package, or WordNet 3.0 index and
 * exception files from the directories given.
 */
export function loadSynonymDictionary(source: WordNetSource = {}): SynonymDictionary {
  const wordToSynsets = new Map<string, number[]>();
  if (source.indexDirectory === undefined) {
    readShippedFile(SHIPPED_SYNSETS_FILE, (key, values, file) => {
      const offsets = values.map((value) => parseInt(value, 10));
      if (offsets.length === 0 || offsets.some((offset) => !Number.isInteger(offset))) {
        throw new MetricsInputError(`malformed synonym data line for ${JSON.stringify(key)}`, { file });
      }
      wordToSynsets.set(key, offsets);
    });
  } else {
    for (const pos of PARTS_OF_SPEECH) readIndexFile(join(source.indexDirectory, `index.${pos}`), wordToSynsets);
  }
  const formToBases = new Map<string, string[]>();
  if (source.exceptionDirectory === undefined) {
    readShippedFile(SHIPPED_EXCEPTIONS_FILE, (key, values, file) => {
      if (values.length === 0) throw new MetricsInputError(`malformed exception data line for ${JSON.stringify(key)}`, { file });
      formToBases.set(key, values);
    });
  } else {
    for (const pos of PARTS_OF_SPEECH) readExceptionFile(join(source.exceptionDirectory, `${pos}.exc`), formToBases);
  }
  return new SynonymDictionary(wordToSynsets, formToBases);
}

/** Read one of the shipped gzipped files: `key value value ...` per line. */
function readShippedFile(name: string, onLine: (key: string, values: string[], file: string) => void): void {
  const file = join(shippedDataDirectory(), name);
  let text: string;
  try {
    text = gunzipSync(readFileSync(file)).toString('latin1');
  } catch (error) {
    throw new MetricsInputError(`cannot read the WordNet data shipped with @s2cpnet/metrics (${(error as Error).message})`, { file }, { cause: error });
  }
  let lineStart = 0;
  while (lineStart < text.length) {
    let lineEnd = text.indexOf('\n', lineStart);
    if (lineEnd === -1) lineEnd = text.length;
    if (lineEnd > lineStart) {
      const fields = text.slice(lineStart, lineEnd).split(' ');
      onLine(fields[0]!, fields.slice(1), file);
    }
    lineStart = lineEnd + 1;
  }
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'latin1');
  } catch (error) {
    throw new MetricsInputError(`cannot read WordNet data (${(error as Error).message})`, { file }, { cause: error });
  }
}

/** `lemma pos synset_cnt p_cnt [ptr...] sense_cnt tagsense_cnt offset...`; licence lines start with spaces. */
function readIndexFile(file: string, wordToSynsets: Map<string, number[]>): void {
  const text = readText(file);
  let lineStart = 0;
  while (lineStart < text.length) {
    let lineEnd = text.indexOf('\n', lineStart);
    if (lineEnd === -1) lineEnd = text.length;
    if (text.charCodeAt(lineStart) !== 32 && lineEnd > lineStart) {
      const fields = text.slice(lineStart, lineEnd).trim().split(' ');
      const lemma = fields[0]!;
      const synsetCount = Number(fields[2]);
      const pointerCount = Number(fields[3]);
      const firstOffset = 4 + pointerCount + 2;
      if (!Number.isInteger(synsetCount) || !Number.isInteger(pointerCount) || fields.length < firstOffset + synsetCount) {
        throw new MetricsInputError(`malformed WordNet index line: ${text.slice(lineStart, lineEnd)}`, { file });
      }
      let offsets = wordToSynsets.get(lemma);
      if (offsets === undefined) {
        offsets = [];
        wordToSynsets.set(lemma, offsets);
      }
      for (let i = 0; i < synsetCount; i++) offsets.push(parseInt(fields[firstOffset + i]!, 10));
    }
    lineStart = lineEnd + 1;
  }
}

/** `inflected base1 base2 ...` per line. */
function readExceptionFile(file: string, formToBases: Map<string, string[]>): void {
  for (const line of readText(file).split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 2 || fields[0] === '') continue;
    const form = fields[0]!;
    let bases = formToBases.get(form);
    if (bases === undefined) {
      bases = [];
      formToBases.set(form, bases);
    }
    bases.push(...fields.slice(1));
  }
}

/**
 * This package's `data/` folder, found from this module's own file: `src/meteor/` in the sources, `dist/` when
 * built (the CJS build gets `import.meta.url` from tsup's shim). Walks up to the folder of the package.json
 * named `@s2cpnet/metrics`, so it works wherever the package is installed.
 */
function shippedDataDirectory(): string {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let directory = start, depth = 0; depth < 6; depth++) {
    const manifest = join(directory, 'package.json');
    if (existsSync(manifest) && isThisPackage(manifest)) return join(directory, 'data');
    const parent = dirname(directory);
    if (parent === directory) break;
    directory = parent;
  }
  throw new MetricsInputError(
    `cannot find the data folder of @s2cpnet/metrics above ${start}; pass WordNet 3.0 directories (WordNetSource) instead`,
  );
}

function isThisPackage(manifest: string): boolean {
  try {
    return (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === '@s2cpnet/metrics';
  } catch {
    return false;
  }
}
