import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { afterAll, describe, expect, it } from 'vitest';

import { MetricsInputError } from '../errors.js';
import { scoreCaptions } from '../score.js';
import { computeMeteor } from './meteor.js';
import { loadParaphraseTable } from './paraphrase.js';

const directory = mkdtempSync(join(tmpdir(), 's2cpnet-paraphrase-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

// Meteor's format: probability, reference phrase, paraphrase; repeated.
const TABLE = ['0.31', 'lots of', 'many', '0.2', 'next to', 'near', '0.1', 'pond', 'lake', ''].join('\n');

function writeTable(name: string, text: string, gzip: boolean): string {
  const file = join(directory, name);
  writeFileSync(file, gzip ? gzipSync(text) : text);
  return file;
}

describe('paraphrase module', () => {
  const items = [{ imageId: 1, candidate: 'a commercial area with lots of cars', references: ['a commercial area with many cars'] }];

  it('matches a multi-word phrase with its paraphrase and credits the paraphrase stage', async () => {
    const table = await loadParaphraseTable(writeTable('table.gz', TABLE, true));
    expect(table.size).toBe(3);
    const withTable = computeMeteor(items, { paraphrases: table });
    const without = computeMeteor(items);
    const stats = withTable.perImage[0]!.stats;
    // Paraphrase stage (fields 16..19: tstContent refContent tstFunction refFunction): "lots" (content) and
    // "of" (function word) on the candidate, "many" (content) on the reference.
    expect(stats.slice(16, 20)).toEqual([1, 1, 1, 0]);
    expect(stats.slice(20)).toEqual([1, 7, 6]);
    expect(without.perImage[0]!.stats.slice(16, 20)).toEqual([0, 0, 0, 0]);
    expect(withTable.corpus).toBeGreaterThan(without.corpus);
  });

  it('reads plain text tables too, and a vocabulary filter keeps only usable entries', async () => {
    const file = writeTable('table.txt', TABLE, false);
    expect((await loadParaphraseTable(file)).size).toBe(3);
    const filtered = await loadParaphraseTable(file, { vocabulary: new Set(['pond', 'lake', 'a']) });
    expect(filtered.size).toBe(1);
  });

  it('is used by scoreCaptions when a table file is given', async () => {
    const file = writeTable('table2.gz', TABLE, true);
    const plain = await scoreCaptions(items, { metrics: ['METEOR'] });
    const paraphrased = await scoreCaptions(items, { metrics: ['METEOR'], meteor: { paraphraseTableFile: file } });
    expect(paraphrased.corpus.METEOR!).toBeGreaterThan(plain.corpus.METEOR!);
  });

  it('rejects a truncated table and a missing file with the file named', async () => {
    const truncated = writeTable('bad.gz', '0.3\nlots of\n', true);
    await expect(loadParaphraseTable(truncated)).rejects.toThrow(MetricsInputError);
    await expect(loadParaphraseTable(truncated)).rejects.toThrow(/bad\.gz.*groups of 3 lines/);
    await expect(loadParaphraseTable(join(directory, 'missing.gz'))).rejects.toThrow(/missing\.gz/);
  });
});
