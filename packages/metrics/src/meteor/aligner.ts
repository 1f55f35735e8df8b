/**
 * Meteor 1.5's word aligner (`edu.cmu.meteor.aligner.Aligner` and its matchers), reproduced step by step.
 *
 * Every module (exact, stem, synonym, paraphrase) first proposes matches; each proposal is filed under the
 * reference position it starts at, in module order and then candidate order. A proposal that is the only one
 * covering each of its words is fixed. A left-to-right beam search (width 40) then chooses among the rest,
 * preferring more weighted matches, then fewer chunks, then a smaller total distance between matched positions.
 *
 * The beam bounds the search as in Meteor: at each reference position only the 40 best paths (a stable sort, ties
 * kept in the order they were made) go on. Meteor first builds every extension of those 40 paths, each a copy of
 * per-word arrays, and sorts them all; with a long caption that is 40 x (matches at the position) copies of
 * caption-length arrays per position, which is what exhausted the heap on a 20,000-word caption. Here an extension
 * is only a few numbers until it is among the 40 best, so each position builds at most 40 paths: the same 40
 * paths in the same order as Meteor's sort, so the same alignment.
 *
 * Three details of the Java code change results and are kept on purpose:
 * - words are compared by Java `String.hashCode()`, not by string equality;
 * - the search's weighted match counts are Java `int`s, so `count += length * 0.5` truncates: a one-word stem or
 *   synonym match adds nothing to the score the beam ranks by (exact matches add 1 per word);
 * - when a path is extended by a match, the distance is added to the path being extended *from* (later
 *   alternatives and the "skip" path inherit it), not to the new path.
 */
import { javaStringHash } from '../text.js';
import type { ParaphraseTable } from './paraphrase.js';
import type { SnowballEnglishStemmer } from './stemmer.js';
import type { SynonymDictionary } from './synonyms.js';

/** Meteor's module ids, which are also the indexes into per-module statistics. */
export const MODULE_EXACT = 0;
export const MODULE_STEM = 1;
export const MODULE_SYNONYM = 2;
export const MODULE_PARAPHRASE = 3;
export const MODULE_COUNT = 4;

/** Weights the beam search ranks partial alignments with (Meteor's evaluation setting), by module. */
const SEARCH_WEIGHTS = [1.0, 0.5, 0.5, 0.5];
/** Meteor's `DEFAULT_BEAM_SIZE`. */
export const BEAM_SIZE = 40;

/** One aligned span: `length` reference words from `start` and `matchLength` candidate words from `matchStart`. */
export interface Match {
  module: number;
  start: number;
  length: number;
  matchStart: number;
  matchLength: number;
}

/** The resources the modules need. A missing resource disables its module (it proposes nothing). */
export interface AlignerResources {
  stemmer?: SnowballEnglishStemmer | undefined;
  synonyms?: SynonymDictionary | undefined;
  paraphrases?: ParaphraseTable | undefined;
  functionWords: ReadonlySet<string>;
}

/** The result of aligning a candidate (line 1) with one reference (line 2). */
export interface Alignment {
  candidateWords: readonly string[];
  referenceWords: readonly string[];
  /** Chosen match per reference start position (null where no match starts). */
  matches: readonly (Match | null)[];
  candidateFunctionWords: number;
  referenceFunctionWords: number;
  /** Per module: matched candidate content words, reference content words, candidate function, reference function. */
  candidateContentMatches: number[];
  referenceContentMatches: number[];
  candidateFunctionMatches: number[];
  referenceFunctionMatches: number[];
  candidateMatches: number;
  referenceMatches: number;
  chunks: number;
}

/** A match the search chose (not a fixed one), in a list shared between paths that chose the same prefix. */
interface ChosenMatch {
  match: Match;
  previous: ChosenMatch | null;
}

/**
 * One path of the beam search. Meteor copies whole arrays per path; here the matches fixed before the search
 * live in one shared array (`SearchStage.fixed`), the matches a path chose form a linked list, and only the
 * candidate-side "used" flags are copied. The reference side needs no per-path copy: a reference word at or
 * after the path's position can only be taken by a fixed match.
 */
export interface PartialAlignment {
  chosen: ChosenMatch | null;
  matches1: number;
  matches2: number;
  chunks: number;
  idx: number;
  lastMatchEnd: number;
  distance: number;
  /** 1 where a candidate word is taken (by a fixed match or one this path chose). */
  line1Used: Uint8Array;
}

/** What every path shares: the proposals and the fixed matches. */
export interface SearchStage {
  proposals: readonly Match[][];
  fixed: readonly (Match | null)[];
  /** Reference words covered by fixed matches. */
  fixedLine2Used: readonly boolean[];
}

/** A copy of `path` that also takes `match` (the caller updates the counts, as Meteor's `new PartialAlignment(path)`). */
export function extendPath(path: PartialAlignment, match: Match): PartialAlignment {
  const line1Used = path.line1Used.slice();
  for (let k = 0; k < match.matchLength; k++) line1Used[match.matchStart + k] = 1;
  return {
    chosen: { match, previous: path.chosen },
    matches1: path.matches1,
    matches2: path.matches2,
    chunks: path.chunks,
    idx: path.idx,
    lastMatchEnd: path.lastMatchEnd,
    distance: path.distance,
    line1Used,
  };
}

/** What the comparison of two paths reads. */
interface PathRank {
  matches1: number;
  matches2: number;
  chunks: number;
  distance: number;
}

/** Meteor's PARTIAL_COMPARE_TOTAL: more weighted matches, then fewer chunks, then less distance. */
export function comparePaths(x: PathRank, y: PathRank): number {
  const matchDiff = y.matches1 + y.matches2 - (x.matches1 + x.matches2);
  if (matchDiff > 0) return 1;
  if (matchDiff < 0) return -1;
  const chunkDiff = x.chunks - y.chunks;
  if (chunkDiff !== 0) return chunkDiff;
  return x.distance - y.distance;
}

/** Whether any word of a proposal starting at the path's position is taken already. */
export function isUsed(stage: SearchStage, path: PartialAlignment, match: Match): boolean {
  for (let k = 0; k < match.length; k++) if (stage.fixedLine2Used[match.start + k]) return true;
  for (let k = 0; k < match.matchLength; k++) if (path.line1Used[match.matchStart + k] === 1) return true;
  return false;
}

/** A weighted match count after adding `length` words of a module, truncated as Java's `int += double` does. */
function addWeighted(count: number, length: number, module: number): number {
  return Math.trunc(count + length * SEARCH_WEIGHTS[module]!);
}

/** Add a match's weighted size to a path. */
export function addMatchWeight(path: PartialAlignment, match: Match): void {
  path.matches1 = addWeighted(path.matches1, match.matchLength, match.module);
  path.matches2 = addWeighted(path.matches2, match.length, match.module);
}

/** Facts about each distinct word, computed once: Java hash, stem hash, synsets, function-word flag. */
class WordTable {
  private readonly ids = new Map<string, number>();
  readonly words: string[] = [];
  readonly hashes: number[] = [];
  readonly isFunction: boolean[] = [];
  private readonly stemHashes: number[] = [];
  private readonly synsets: (Int32Array | undefined)[] = [];
  private readonly functionWords: ReadonlySet<string>;

  constructor(functionWords: ReadonlySet<string>) {
    this.functionWords = functionWords;
  }

  intern(word: string): number {
    let id = this.ids.get(word);
    if (id === undefined) {
      id = this.words.length;
      this.ids.set(word, id);
      this.words.push(word);
      this.hashes.push(javaStringHash(word));
      this.isFunction.push(this.functionWords.has(word.toLowerCase()));
      this.stemHashes.push(Number.NaN);
      this.synsets.push(undefined);
    }
    return id;
  }

  stemHash(id: number, stemmer: SnowballEnglishStemmer): number {
    let hash = this.stemHashes[id]!;
    if (Number.isNaN(hash)) {
      hash = javaStringHash(stemmer.stem(this.words[id]!));
      this.stemHashes[id] = hash;
    }
    return hash;
  }

  /** The word's synsets and its base form's, sorted, for a merge-style intersection test. */
  synsetList(id: number, dictionary: SynonymDictionary): Int32Array {
    let list = this.synsets[id];
    if (list === undefined) {
      list = Int32Array.from(dictionary.matchSet(this.words[id]!)).sort();
      this.synsets[id] = list;
    }
    return list;
  }
}

function sortedListsIntersect(a: Int32Array, b: Int32Array): boolean {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    if (x === y) return true;
    if (x < y) i++;
    else j++;
  }
  return false;
}

/** Meteor's aligner for one language configuration. Reuse one instance: it caches per-word work. */
export class MeteorAligner {
  private readonly resources: AlignerResources;
  private readonly table: WordTable;
  /** Synonym answers: `synonymPairs[candidate word id]` maps reference word ids to the answer. */
  private readonly synonymPairs: (Map<number, boolean> | undefined)[] = [];

  constructor(resources: AlignerResources) {
    this.resources = resources;
    this.table = new WordTable(resources.functionWords);
  }

  /** Word ids for a list of words (ids are private to this aligner). */
  wordIds(words: readonly string[]): number[] {
    return words.map((word) => this.table.intern(word));
  }

  /** Align candidate words (line 1) with reference words (line 2). */
  align(candidateWords: readonly string[], referenceWords: readonly string[]): Alignment {
    return this.alignIds(this.wordIds(candidateWords), this.wordIds(referenceWords));
  }

  /** Align word ids from `wordIds`: the candidate (line 1) with a reference (line 2). */
  alignIds(ids1: readonly number[], ids2: readonly number[]): Alignment {
    const table = this.table;
    const n1 = ids1.length;
    const n2 = ids2.length;
    const hashes1 = ids1.map((id) => table.hashes[id]!);
    const hashes2 = ids2.map((id) => table.hashes[id]!);
    const proposals: Match[][] = [];
    for (let j = 0; j < n2; j++) proposals.push([]);
    const coverage1 = new Int32Array(n1);
    const coverage2 = new Int32Array(n2);
    const propose = (match: Match): void => {
      proposals[match.start]!.push(match);
      for (let k = 0; k < match.matchLength; k++) coverage1[match.matchStart + k]!++;
      for (let k = 0; k < match.length; k++) coverage2[match.start + k]!++;
    };

    // Identical sentences only need exact matches; Meteor skips the other modules to avoid beam-search errors.
    let identical = n1 === n2;
    for (let i = 0; identical && i < n1; i++) if (hashes1[i] !== hashes2[i]) identical = false;

    // Exact: equal words (by hash).
    for (let j = 0; j < n2; j++) {
      for (let i = 0; i < n1; i++) {
        if (hashes1[i] === hashes2[j]) {
          propose({ module: MODULE_EXACT, start: j, length: 1, matchStart: i, matchLength: 1 });
        }
      }
    }
    if (!identical) {
      const { stemmer, synonyms, paraphrases } = this.resources;
      if (stemmer) {
        // Stem: different words with the same stem.
        const stems1 = ids1.map((id) => table.stemHash(id, stemmer));
        const stems2 = ids2.map((id) => table.stemHash(id, stemmer));
        for (let j = 0; j < n2; j++) {
          for (let i = 0; i < n1; i++) {
            if (stems1[i] === stems2[j] && hashes1[i] !== hashes2[j]) {
              propose({ module: MODULE_STEM, start: j, length: 1, matchStart: i, matchLength: 1 });
            }
          }
        }
      }
      if (synonyms) {
        // Synonym: different words sharing a synset.
        for (let j = 0; j < n2; j++) {
          for (let i = 0; i < n1; i++) {
            if (hashes1[i] !== hashes2[j] && this.areSynonyms(ids1[i]!, ids2[j]!, synonyms)) {
              propose({ module: MODULE_SYNONYM, start: j, length: 1, matchStart: i, matchLength: 1 });
            }
          }
        }
      }
      if (paraphrases) {
        const words1 = ids1.map((id) => table.words[id]!);
        const words2 = ids2.map((id) => table.words[id]!);
        paraphrases.propose(words1, words2, propose);
      }
    }

    // A proposal that is the only one covering each of its words is certain.
    const fixed = new Array<Match | null>(n2).fill(null);
    const fixedLine2Used = new Array<boolean>(n2).fill(false);
    const line1Used = new Uint8Array(n1);
    for (let j = 0; j < n2; j++) {
      const atJ = proposals[j]!;
      if (atJ.length !== 1) continue;
      const match = atJ[0]!;
      let overlap = false;
      for (let k = 0; k < match.length; k++) if (coverage2[j + k] !== 1) overlap = true;
      for (let k = 0; k < match.matchLength; k++) if (coverage1[match.matchStart + k] !== 1) overlap = true;
      if (!overlap) {
        fixed[j] = match;
        for (let k = 0; k < match.length; k++) fixedLine2Used[j + k] = true;
        for (let k = 0; k < match.matchLength; k++) line1Used[match.matchStart + k] = 1;
      }
    }
    const start: PartialAlignment = {
      chosen: null,
      matches1: 0,
      matches2: 0,
      chunks: 0,
      idx: 0,
      lastMatchEnd: -1,
      distance: 0,
      line1Used,
    };
    const stage: SearchStage = { proposals, fixed, fixedLine2Used };
    const best = this.search(stage, start);
    const matches = fixed.slice();
    for (let node = best.chosen; node !== null; node = node.previous) matches[node.match.start] = node.match;
    return this.summarise(ids1, ids2, matches);
  }

  /** The beam search (a seam for tests, which compare it with a direct transcription of Meteor's). */
  protected search(stage: SearchStage, start: PartialAlignment): PartialAlignment {
    return resolve(stage, start);
  }

  private areSynonyms(id1: number, id2: number, dictionary: SynonymDictionary): boolean {
    let answers = this.synonymPairs[id1];
    if (answers === undefined) {
      answers = new Map();
      this.synonymPairs[id1] = answers;
    }
    let answer = answers.get(id2);
    if (answer === undefined) {
      const list1 = this.table.synsetList(id1, dictionary);
      const list2 = this.table.synsetList(id2, dictionary);
      answer = list1.length > 0 && list2.length > 0 && sortedListsIntersect(list1, list2);
      answers.set(id2, answer);
    }
    return answer;
  }

  private summarise(ids1: readonly number[], ids2: readonly number[], matches: readonly (Match | null)[]): Alignment {
    const table = this.table;
    const candidateWords = ids1.map((id) => table.words[id]!);
    const referenceWords = ids2.map((id) => table.words[id]!);
    const isFunction1 = ids1.map((id) => table.isFunction[id]!);
    const isFunction2 = ids2.map((id) => table.isFunction[id]!);
    const candidateContentMatches = new Array<number>(MODULE_COUNT).fill(0);
    const referenceContentMatches = new Array<number>(MODULE_COUNT).fill(0);
    const candidateFunctionMatches = new Array<number>(MODULE_COUNT).fill(0);
    const referenceFunctionMatches = new Array<number>(MODULE_COUNT).fill(0);
    for (const match of matches) {
      if (match === null) continue;
      for (let k = 0; k < match.matchLength; k++) {
        if (isFunction1[match.matchStart + k]) candidateFunctionMatches[match.module]!++;
        else candidateContentMatches[match.module]!++;
      }
      for (let k = 0; k < match.length; k++) {
        if (isFunction2[match.start + k]) referenceFunctionMatches[match.module]!++;
        else referenceContentMatches[match.module]!++;
      }
    }

    // Chunks: a gap in the reference or a jump in the candidate ends a chunk.
    let candidateMatches = 0;
    let referenceMatches = 0;
    let chunks = 0;
    let lastMatchEnd = -1;
    for (let idx = 0; idx < matches.length; ) {
      const match = matches[idx];
      if (match === null || match === undefined) {
        if (lastMatchEnd !== -1) {
          chunks++;
          lastMatchEnd = -1;
        }
        idx++;
      } else {
        candidateMatches += match.matchLength;
        referenceMatches += match.length;
        if (lastMatchEnd !== -1 && match.matchStart !== lastMatchEnd) chunks++;
        idx = match.start + match.length;
        lastMatchEnd = match.matchStart + match.matchLength;
      }
    }
    if (lastMatchEnd !== -1) chunks++;

    return {
      candidateWords,
      referenceWords,
      matches,
      candidateFunctionWords: isFunction1.filter(Boolean).length,
      referenceFunctionWords: isFunction2.filter(Boolean).length,
      candidateContentMatches,
      referenceContentMatches,
      candidateFunctionMatches,
      referenceFunctionMatches,
      candidateMatches,
      referenceMatches,
      chunks,
    };
  }
}

/**
 * A path a search step may keep: an existing path carried on (`extension` null), or `parent` extended by
 * `extension`, which is built (`materialise`) only once it is among the beam's best.
 */
interface BeamEntry extends PathRank {
  parent: PartialAlignment;
  extension: Match | null;
}

/**
 * The best `BEAM_SIZE` entries of one search step, in the order a stable sort of all of them by `comparePaths`
 * gives (Java's `Collections.sort` is stable): entries are offered in the order Meteor adds them to its list,
 * and a later entry goes after every entry it ties with.
 */
class BeamTop {
  readonly entries: BeamEntry[] = [];

  /** Whether an entry with this rank would be kept (it must beat the worst kept entry once the beam is full). */
  admits(rank: PathRank): boolean {
    return this.entries.length < BEAM_SIZE || comparePaths(rank, this.entries[this.entries.length - 1]!) < 0;
  }

  offer(entry: BeamEntry): void {
    if (!this.admits(entry)) return;
    let position = this.entries.length;
    while (position > 0 && comparePaths(entry, this.entries[position - 1]!) < 0) position--;
    this.entries.splice(position, 0, entry);
    if (this.entries.length > BEAM_SIZE) this.entries.pop();
  }

  /** The kept entries as paths, best first. */
  paths(): PartialAlignment[] {
    return this.entries.map(materialise);
  }
}

function carried(path: PartialAlignment): BeamEntry {
  return { parent: path, extension: null, matches1: path.matches1, matches2: path.matches2, chunks: path.chunks, distance: path.distance };
}

function materialise(entry: BeamEntry): PartialAlignment {
  const match = entry.extension;
  if (match === null) return entry.parent;
  const path = extendPath(entry.parent, match);
  path.matches1 = entry.matches1;
  path.matches2 = entry.matches2;
  path.chunks = entry.chunks;
  path.distance = entry.distance;
  path.idx = match.start + match.length;
  path.lastMatchEnd = match.matchStart + match.matchLength;
  return path;
}

/**
 * Meteor's beam search over the proposals, left to right along the reference. Each step keeps what Meteor's next
 * step would take from its sorted list (the first `BEAM_SIZE`), built only for the paths kept.
 */
function resolve(stage: SearchStage, start: PartialAlignment): PartialAlignment {
  const { proposals, fixed, fixedLine2Used } = stage;
  let paths: PartialAlignment[] = [start];
  for (let current = 0; current <= proposals.length; current++) {
    const next = new BeamTop();
    for (const path of paths) {
      if (current === proposals.length) {
        if (path.lastMatchEnd !== -1) path.chunks++;
        next.offer(carried(path));
        continue;
      }

      // Meteor: "current word in use". Before the path's position that means inside a match taken earlier;
      // at it, only a fixed match can hold the word.
      if (current < path.idx) {
        next.offer(carried(path));
        continue;
      }
      if (fixedLine2Used[current]) {
        const match = fixed[path.idx];
        if (match !== null && match !== undefined) {
          // A fixed match starts here: count it now.
          addMatchWeight(path, match);
          if (path.lastMatchEnd !== -1 && match.matchStart !== path.lastMatchEnd) path.chunks++;
          path.idx = match.start + match.length;
          path.lastMatchEnd = match.matchStart + match.matchLength;
          path.distance += Math.abs(match.start - match.matchStart);
          next.offer(carried(path));
        }
        continue;
      }

      const rank: PathRank = { matches1: 0, matches2: 0, chunks: 0, distance: 0 };
      for (const match of proposals[current]!) {
        if (isUsed(stage, path, match)) continue;
        rank.matches1 = addWeighted(path.matches1, match.matchLength, match.module);
        rank.matches2 = addWeighted(path.matches2, match.length, match.module);
        rank.chunks = path.chunks + (path.lastMatchEnd !== -1 && match.matchStart !== path.lastMatchEnd ? 1 : 0);
        rank.distance = path.distance;
        // Meteor adds the distance to the path it extends from, not to the new one.
        path.distance += Math.abs(match.start - match.matchStart);
        if (next.admits(rank)) next.offer({ parent: path, extension: match, ...rank });
      }
      // Or leave this reference word unmatched.
      if (path.lastMatchEnd !== -1) {
        path.chunks++;
        path.lastMatchEnd = -1;
      }
      path.idx++;
      next.offer(carried(path));
    }
    const kept = next.paths();
    // Meteor: "unexpected conditions - skipping matches until possible to continue".
    paths = kept.length > 0 ? kept : [paths[0]!];
  }
  return paths[0]!;
}
