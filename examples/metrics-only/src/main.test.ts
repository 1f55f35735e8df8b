import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SCORE_KEYS, loadCaptionFiles, scoreCaptions } from '@s2cpnet/metrics';
import { DEFAULT_PREDICTIONS, DEFAULT_REFERENCES, run } from './main';

const exampleDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Runs a script in a fresh Node process with every `@tensorflow/*` import blocked. */
function runWithoutTensorflow(script: string, args: string[] = []) {
  return spawnSync(
    process.execPath,
    ['--conditions=@s2cpnet/source', '--import', 'tsx', '--import', './src/testing/no-tensorflow.mjs', script, ...args],
    { cwd: exampleDir, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } },
  );
}

describe('metrics-only example', () => {
  it('prints the scores scoreCaptions gives for the shipped files, and their Sm', async () => {
    const lines: string[] = [];
    const result = await run({ perImage: true, log: (l) => lines.push(l) });
    const direct = await scoreCaptions(loadCaptionFiles(DEFAULT_PREDICTIONS, DEFAULT_REFERENCES));
    expect(result.images).toBe(8);
    expect(result.corpus).toEqual(direct.corpus);
    expect(result.perImage).toEqual(direct.perImage);
    const { Bleu_4, METEOR, ROUGE_L, CIDEr, Sm } = result.corpus;
    expect(Sm).toBeCloseTo((Bleu_4! + METEOR! + ROUGE_L! + CIDEr!) / 4, 12);

    // image 2's caption is one of its references up to case and punctuation: a perfect match but for CIDEr's idf
    const image2 = result.perImage.find((row) => row.imageId === 2)!;
    expect(image2.Bleu_4).toBeCloseTo(1, 6);
    expect(image2.ROUGE_L).toBeCloseTo(1, 12);
    expect(image2.METEOR).toBeCloseTo(1, 6);
    // image 7's caption describes another scene
    const image7 = result.perImage.find((row) => row.imageId === 7)!;
    expect(image7.Sm!).toBeLessThan(0.2);

    const output = lines.join('\n');
    for (const key of SCORE_KEYS) expect(output).toMatch(new RegExp(`^${key} +${result.corpus[key]!.toFixed(4)}$`, 'm'));
    expect(output).toContain(`Sm = mean(Bleu_4, METEOR, ROUGE_L, CIDEr) = ${Sm!.toFixed(4)}`);
    expect(output).toMatch(/^7 +0\.4286 .* some green trees are near a road$/m);
  });

  it('depends on @s2cpnet/metrics only, which needs no TensorFlow.js', () => {
    const pkg = JSON.parse(readFileSync(path.join(exampleDir, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
    expect(Object.keys(pkg.dependencies ?? {})).toEqual(['@s2cpnet/metrics']);
    expect(pkg.devDependencies).toBeUndefined();
    const metricsPkgFile = createRequire(import.meta.url).resolve('@s2cpnet/metrics/package.json');
    const metricsPkg = JSON.parse(readFileSync(metricsPkgFile, 'utf8')) as Record<string, Record<string, string> | undefined>;
    const metricsDeps = [...Object.keys(metricsPkg.dependencies ?? {}), ...Object.keys(metricsPkg.peerDependencies ?? {})];
    expect(metricsDeps.filter((name) => name.startsWith('@tensorflow/') || name.startsWith('@s2cpnet/'))).toEqual([]);
  });

  it('runs from the command line with every @tensorflow/* import blocked', async () => {
    // the blocker works: a script that imports tfjs fails under it
    const control = runWithoutTensorflow('src/testing/imports-tensorflow.mjs');
    expect(control.status).not.toBe(0);
    expect(control.stderr).toContain('blocked: @tensorflow/tfjs-core');

    const child = runWithoutTensorflow('src/main.ts', ['--json']);
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    const printed = JSON.parse(child.stdout) as { images: number; corpus: Record<string, number> };
    const direct = await scoreCaptions(loadCaptionFiles(DEFAULT_PREDICTIONS, DEFAULT_REFERENCES));
    expect(printed.images).toBe(8);
    expect(printed.corpus).toEqual(direct.corpus);
  });

  it('names the file and the image when the references miss an image', async () => {
    const references = path.join(exampleDir, 'data', 'references.json');
    const predictions = path.join(exampleDir, 'src', 'testing', 'predictions-extra-image.json');
    await expect(run({ predictions, references, log: () => {} })).rejects.toThrow(/predictions-extra-image\.json.*(image|id).*99/s);
  });
});
