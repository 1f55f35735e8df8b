/**
 * The Meteor jar bridge, driven through a stand-in `java` script that speaks Meteor's stdio protocol (no real
 * jar is needed).
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { MetricsInputError } from '../errors.js';
import { scoreCaptions } from '../score.js';
import { computeMeteorWithJar } from './jar.js';
import { meteorScoreFromStats, sumMeteorStats } from './stats.js';

const directory = mkdtempSync(join(tmpdir(), 's2cpnet-jar-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const jarPath = join(directory, 'meteor-1.5.jar');
writeFileSync(jarPath, 'not really a jar');

/** A fake `java`: checks the toolkit's flags, then answers each SCORE line with made-up but valid stats. */
function fakeJava(name: string, body: string): string {
  const file = join(directory, name);
  writeFileSync(file, `#!${process.execPath}\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

const answering = fakeJava(
  'java-ok',
  `
const args = process.argv.slice(2);
const expected = ['-Xmx2G', '-jar', ${JSON.stringify(jarPath)}, '-', '-', '-stdio', '-l', 'en', '-norm'];
if (JSON.stringify(args) !== JSON.stringify(expected)) { console.error('bad args ' + JSON.stringify(args)); process.exit(2); }
const rl = require('node:readline').createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const parts = line.split('|||').map((part) => part.trim());
  if (parts[0] !== 'SCORE') { console.log('Error: specify SCORE or EVAL'); return; }
  const candidate = parts[parts.length - 1].split(/\\s+/).filter(Boolean).length;
  const reference = parts[1].split(/\\s+/).filter(Boolean).length;
  const matched = Math.min(candidate, reference);
  const stats = [candidate, reference, 0, 0, matched, matched, 0, 0, ...new Array(12).fill(0), matched > 0 ? 1 : 0, matched, matched];
  console.log(stats.map((value) => value.toFixed(1)).join(' '));
});
`,
);

const items = [
  { imageId: 'a', candidate: 'a red car on the road', references: ['a car', 'two cars'] },
  { imageId: 'b', candidate: 'a lake', references: ['a small lake with an island'] },
];

describe('Meteor jar bridge', () => {
  it("sends the toolkit's SCORE lines and scores the jar's statistics", async () => {
    const result = await computeMeteorWithJar(items, { jarPath, javaPath: answering });
    expect(result.perImage.map((image) => image.stats.slice(0, 2))).toEqual([
      [6, 2],
      [2, 6],
    ]);
    result.perImage.forEach((image) => expect(image.score).toBe(meteorScoreFromStats(image.stats)));
    expect(result.corpus).toBe(meteorScoreFromStats(sumMeteorStats(result.perImage.map((image) => image.stats))));
  });

  it('is what scoreCaptions uses when a jar path is given', async () => {
    const report = await scoreCaptions(items, { meteor: { jarPath, javaPath: answering } });
    expect(report.meteor!.perImage[0]!.stats[0]).toBe(6);
    expect(report.corpus.METEOR).toBe(report.meteor!.corpus);
    expect(report.corpus.Sm).toBeCloseTo(
      (report.corpus.Bleu_4! + report.corpus.METEOR! + report.corpus.ROUGE_L! + report.corpus.CIDEr!) / 4,
      15,
    );
  });

  it('reports a jar that dies, with its stderr', async () => {
    const dying = fakeJava('java-dies', `console.error('Error: Synonym dictionary could not be loaded'); process.exit(1);`);
    await expect(computeMeteorWithJar(items, { jarPath, javaPath: dying })).rejects.toThrow(
      /exited \(code 1\) after answering 0 of 2 images.*Synonym dictionary could not be loaded/,
    );
  });

  it('reports an answer that is not a statistics line, naming the image', async () => {
    const confused = fakeJava(
      'java-confused',
      `require('node:readline').createInterface({ input: process.stdin }).on('line', () => console.log('Error: specify hypothesis and at least one reference'));`,
    );
    await expect(computeMeteorWithJar(items, { jarPath, javaPath: confused })).rejects.toThrow(/image_id "a".*instead of statistics/);
  });

  it('reports a missing jar and a missing java as input errors', async () => {
    await expect(computeMeteorWithJar(items, { jarPath: join(directory, 'nope.jar') })).rejects.toThrow(MetricsInputError);
    await expect(computeMeteorWithJar(items, { jarPath, javaPath: join(directory, 'no-java') })).rejects.toThrow(
      /cannot run/,
    );
  });

  it('kills a jar that does not answer in time', async () => {
    const silent = fakeJava('java-silent', `setInterval(() => {}, 1000);`);
    await expect(computeMeteorWithJar(items, { jarPath, javaPath: silent, timeoutMs: 300 })).rejects.toThrow(
      /did not answer within 300 ms/,
    );
  });
});
