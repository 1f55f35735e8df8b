/**
 * Fast n-gram counting for BLEU and CIDEr-D: every n-gram (orders 1..4) gets an integer id, so counts,
 * clipping and tf-idf weights live in typed arrays instead of maps keyed by joined strings.
 *
 * Within a sentence each order's n-grams are listed in order of first occurrence, which is the order the
 * toolkit's Python dictionaries iterate in; sums over them therefore run in the same order.
 */
import { splitPythonWhitespace } from './text.js';

export const MAX_ORDER = 4;

/**
 * The n-grams of one sentence. For order k (0-based: 0 = unigrams) the distinct ids, in first-occurrence order,
 * are `data[offsets[k] .. offsets[k + 1])` and their counts sit `distinct` entries later in `data`.
 */
export interface SentenceNgrams {
  /** Number of words. */
  length: number;
  /** Total number of distinct n-grams over all orders. */
  distinct: number;
  /** Start of each order's ids in `data`, plus the end (`distinct`). */
  offsets: readonly [number, number, number, number, number];
  /** Ids, then counts. */
  data: Int32Array;
}

/** All ids are below 2^26, so `ngramId * 2^26 + wordId` is an exact integer key for extending an n-gram. */
const WORD_ID_LIMIT = 2 ** 26;

/** Grows an Int32Array to hold at least `size` entries. */
export function ensureCapacity<T extends Int32Array | Float64Array>(array: T, size: number): T {
  if (array.length >= size) return array;
  const grown = new (array.constructor as new (length: number) => T)(Math.max(size, array.length * 2));
  grown.set(array);
  return grown;
}

/** Interns words and n-grams of orders 1..4 to dense integer ids. */
export class NgramIndex {
  private readonly wordIds = new Map<string, number>();
  /** (n-gram id, next word id) -> id of the n-gram one word longer. */
  private readonly extensions = new Map<number, number>();
  private readonly sentenceCache = new Map<string, SentenceNgrams>();
  private ngramCount = 0;
  /** Per n-gram id: the sentence serial that last saw it and its slot in that sentence's list. */
  private seenIn = new Int32Array(1024).fill(-1);
  private slotOf = new Int32Array(1024);
  private serial = 0;

  /** Number of distinct n-grams seen so far (all ids are below this). */
  get size(): number {
    return this.ngramCount;
  }

  private newNgramId(): number {
    const id = this.ngramCount++;
    if (id >= WORD_ID_LIMIT) throw new RangeError('too many distinct n-grams for the n-gram index');
    if (id >= this.seenIn.length) {
      const previous = this.seenIn.length;
      this.seenIn = ensureCapacity(this.seenIn, id + 1);
      this.seenIn.fill(-1, previous);
      this.slotOf = ensureCapacity(this.slotOf, id + 1);
    }
    return id;
  }

  private unigramId(word: string): number {
    let id = this.wordIds.get(word);
    if (id === undefined) {
      id = this.newNgramId();
      this.wordIds.set(word, id);
    }
    return id;
  }

  private extend(ngramId: number, wordId: number): number {
    const key = ngramId * WORD_ID_LIMIT + wordId;
    let id = this.extensions.get(key);
    if (id === undefined) {
      id = this.newNgramId();
      this.extensions.set(key, id);
    }
    return id;
  }

  /** The id of a word interned so far, or -1 (looks up without adding). */
  knownWord(word: string): number {
    return this.wordIds.get(word) ?? -1;
  }

  /** The id of n-gram `ngramId` extended by word `wordId`, if interned so far, or -1 (looks up without adding). */
  knownExtension(ngramId: number, wordId: number): number {
    return this.extensions.get(ngramId * WORD_ID_LIMIT + wordId) ?? -1;
  }

  /** The n-grams of a caption split on whitespace as Python's `str.split()` does; memoised per caption. */
  sentence(caption: string): SentenceNgrams {
    const cached = this.sentenceCache.get(caption);
    if (cached !== undefined) return cached;
    const words = splitPythonWhitespace(caption);
    const length = words.length;
    const wordIds = words.map((word) => this.unigramId(word));
    const serial = this.serial++;
    // Per order, distinct ids and counts collected in scratch lists, then packed into one typed array.
    const orderIds: number[][] = [[], [], [], []];
    const orderCounts: number[][] = [[], [], [], []];
    // Visiting start positions in order lists every order's n-grams by first occurrence.
    for (let start = 0; start < length; start++) {
      let id = wordIds[start]!;
      for (let k = 0; k < MAX_ORDER && start + k < length; k++) {
        if (k > 0) id = this.extend(id, wordIds[start + k]!);
        if (this.seenIn[id] === serial) {
          orderCounts[k]![this.slotOf[id]!]!++;
        } else {
          this.seenIn[id] = serial;
          this.slotOf[id] = orderIds[k]!.length;
          orderIds[k]!.push(id);
          orderCounts[k]!.push(1);
        }
      }
    }
    const offsets: [number, number, number, number, number] = [0, 0, 0, 0, 0];
    for (let k = 0; k < MAX_ORDER; k++) offsets[k + 1] = offsets[k]! + orderIds[k]!.length;
    const distinct = offsets[MAX_ORDER];
    const data = new Int32Array(2 * distinct);
    for (let k = 0; k < MAX_ORDER; k++) {
      const ids = orderIds[k]!;
      const counts = orderCounts[k]!;
      const base = offsets[k]!;
      for (let slot = 0; slot < ids.length; slot++) {
        data[base + slot] = ids[slot]!;
        data[distinct + base + slot] = counts[slot]!;
      }
    }
    const result: SentenceNgrams = { length, distinct, offsets, data };
    this.sentenceCache.set(caption, result);
    return result;
  }
}
