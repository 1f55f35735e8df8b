import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../command';
import { runCli } from './cli.test-util';

// `s2cpnet score --allow-missing`: score the images that have captions, as pycocoevalcap does.

const directory = mkdtempSync(join(tmpdir(), 's2cpnet-score-missing-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function write(name: string, content: unknown): string {
  const file = join(directory, name);
  writeFileSync(file, JSON.stringify(content));
  return file;
}

const annotations = write('refs.json', {
  annotations: [
    { image_id: 1, caption: 'A lake with an island.' },
    { image_id: 2, caption: 'A road between fields.' },
    { image_id: 3, caption: 'Many cars in a parking lot.' },
  ],
});
const partial = write('partial.json', [{ image_id: 1, caption: 'a lake with an island' }]);

describe('s2cpnet score --allow-missing', () => {
  it('without it, a referenced image without a caption is an error (exit 3) naming the ids', async () => {
    const result = await runCli(['score', '--results', 'partial.json', '--annotations', 'refs.json', '--metrics', 'bleu'], directory);
    expect(result.code).toBe(ExitCode.badInput);
    expect(result.err).toMatch(/refs\.json: image_id 2: has references but no caption in .*\(2 images in all: 2, 3\)/);
    expect(result.out).toBe('');
  });

  it('with it, scores only the captioned images and says how many references were left out', async () => {
    const result = await runCli(['score', '--results', partial, '--annotations', annotations, '--metrics', 'bleu', '--allow-missing', '--json'], directory);
    expect(result.code).toBe(ExitCode.ok);
    expect(result.err).toContain('--allow-missing: left out 2 of the 3 referenced images');
    const output = JSON.parse(result.out) as { corpus: { Bleu_4: number }; per_image: { image_id: number }[] };
    expect(output.per_image.map((p) => p.image_id)).toEqual([1]);
    expect(output.corpus.Bleu_4).toBeCloseTo(1, 6);
  });

  it('a caption whose image has no references is still an error', async () => {
    write('extra.json', [{ image_id: 1, caption: 'a lake' }, { image_id: 9, caption: 'a field' }]);
    const result = await runCli(['score', '--results', 'extra.json', '--annotations', 'refs.json', '--allow-missing'], directory);
    expect(result.code).toBe(ExitCode.badInput);
    expect(result.err).toMatch(/extra\.json: image_id 9: has no references in/);
  });
});
