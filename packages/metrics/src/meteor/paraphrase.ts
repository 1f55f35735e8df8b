/**
 * Meteor's paraphrase module (`ParaphraseTransducer`, `ParaphraseMatcher`) for a user-supplied table.
 *
 * The table is Meteor's `paraphrase-en.gz` format: gzip (or plain) text in groups of three lines, a probability
 * (ignored, as Meteor ignores it), a reference phrase and a paraphrase. Phrases are stored in a word trie keyed
 * by the reference phrase. The matcher proposes, for each position of each sentence, every table phrase that
 * starts there whose paraphrase occurs in the other sentence.
 *
 * Meteor's official table is large; when the captions to score are known, pass their vocabulary so that only
 * entries whose words all occur in it are kept. Such a filter cannot change any match, since a phrase can only
 * match words that occur in the sentences.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

import { MetricsInputError } from '../errors.js';
import type { Match } from './aligner.js';
import { MODULE_PARAPHRASE } from './aligner.js';

interface TrieNode {
  next: Map<number, TrieNode>;
  /** Indexes of the paraphrases whose reference phrase ends at this node, in file order. */
  emit: number[];
}

function newNode(): TrieNode {
  return { next: new Map(), emit: [] };
}

/** A loaded paraphrase table. */
export class ParaphraseTable {
  private readonly vocabulary = new Map<string, number>();
  private readonly root = newNode();
  private readonly paraphrases: number[][] = [];

  /** Number of entries kept. */
  get size(): number {
    return this.paraphrases.length;
  }

  private wordId(word: string): number {
    let id = this.vocabulary.get(word);
    if (id === undefined) {
      id = this.vocabulary.size;
      this.vocabulary.set(word, id);
    }
    return id;
  }

  /** Add one entry: a reference phrase and its paraphrase, each a list of words. */
  add(referencePhrase: readonly string[], paraphrase: readonly string[]): void {
    // An empty side would match everywhere with zero width; Meteor's tables never contain one.
    if (referencePhrase.length === 0 || paraphrase.length === 0) return;
    const referenceIds = referencePhrase.map((word) => this.wordId(word));
    const paraphraseIds = paraphrase.map((word) => this.wordId(word));
    let node = this.root;
    for (const id of referenceIds) {
      let child = node.next.get(id);
      if (child === undefined) {
        child = newNode();
        node.next.set(id, child);
      }
      node = child;
    }
    node.emit.push(this.paraphrases.length);
    this.paraphrases.push(paraphraseIds);
  }

  private translate(words: readonly string[]): number[] {
    return words.map((word) => this.vocabulary.get(word) ?? -1);
  }

  /** (phrase length, paraphrase index) pairs of every table phrase starting at `startIndex`. */
  private pathsFrom(words: readonly number[], startIndex: number): [number, number][] {
    const paths: [number, number][] = [];
    let node: TrieNode | undefined = this.root;
    for (let i = 0; i < words.length - startIndex; i++) {
      node = node.next.get(words[startIndex + i]!);
      if (node === undefined) break;
      for (const index of node.emit) paths.push([i + 1, index]);
    }
    return paths;
  }

  /** Propose paraphrase matches between a candidate (line 1) and a reference (line 2), in Meteor's order. */
  propose(candidateWords: readonly string[], referenceWords: readonly string[], propose: (match: Match) => void): void {
    const line1 = this.translate(candidateWords);
    const line2 = this.translate(referenceWords);
    // Reference phrases starting in the reference whose paraphrase occurs in the candidate.
    for (let j = 0; j < line2.length; j++) {
      for (const [length, index] of this.pathsFrom(line2, j)) {
        const words = this.paraphrases[index]!;
        for (let i = 0; i < line1.length; i++) {
          if (occursAt(line1, i, words)) {
            propose({ module: MODULE_PARAPHRASE, start: j, length, matchStart: i, matchLength: words.length });
          }
        }
      }
    }
    // Reference phrases starting in the candidate whose paraphrase occurs in the reference.
    for (let i = 0; i < line1.length; i++) {
      for (const [length, index] of this.pathsFrom(line1, i)) {
        const words = this.paraphrases[index]!;
        for (let j = 0; j < line2.length; j++) {
          if (occursAt(line2, j, words)) {
            propose({ module: MODULE_PARAPHRASE, start: j, length: words.length, matchStart: i, matchLength: length });
          }
        }
      }
    }
  }
}

function occursAt(line: readonly number[], start: number, words: readonly number[]): boolean {
  for (let k = 0; k < words.length; k++) {
    if (start + k === line.length || line[start + k] !== words[k]) return false;
  }
  return true;
}

export interface LoadParaphraseOptions {
  /** Keep only entries whose words all occur in this set (the scored captions' Meteor words). */
  vocabulary?: ReadonlySet<string>;
}

/** Split on Java StringTokenizer's delimiters. */
function phraseWords(line: string): string[] {
  return line.split(/[ \t\n\r\f]+/).filter((word) => word !== '');
}

/** Load a Meteor paraphrase table (gzip or plain text) from a file. */
export async function loadParaphraseTable(file: string, options: LoadParaphraseOptions = {}): Promise<ParaphraseTable> {
  let gzipped: boolean;
  try {
    const handle = await open(file, 'r');
    try {
      const magic = Buffer.alloc(2);
      const { bytesRead } = await handle.read(magic, 0, 2, 0);
      gzipped = bytesRead === 2 && magic[0] === 0x1f && magic[1] === 0x8b;
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw new MetricsInputError(`cannot read the paraphrase table (${(error as Error).message})`, { file }, { cause: error });
  }

  const table = new ParaphraseTable();
  const vocabulary = options.vocabulary;
  let input: Readable = createReadStream(file);
  if (gzipped) input = input.pipe(createGunzip());
  const lines = createInterface({ input, crlfDelay: Infinity });
  const group: string[] = [];
  let lineNumber = 0;
  try {
    for await (const line of lines) {
      lineNumber++;
      group.push(line);
      if (group.length < 3) continue;
      const referencePhrase = phraseWords(group[1]!);
      const paraphrase = phraseWords(group[2]!);
      group.length = 0;
      if (vocabulary && !(referencePhrase.every((w) => vocabulary.has(w)) && paraphrase.every((w) => vocabulary.has(w)))) {
        continue;
      }
      table.add(referencePhrase, paraphrase);
    }
  } catch (error) {
    throw new MetricsInputError(
      `cannot read the paraphrase table near line ${lineNumber} (${(error as Error).message})`,
      { file },
      { cause: error },
    );
  }
  if (group.length !== 0) {
    throw new MetricsInputError(
      `the paraphrase table ends inside an entry: expected groups of 3 lines (probability, phrase, paraphrase), found ${lineNumber} lines`,
      { file },
    );
  }
  return table;
}
