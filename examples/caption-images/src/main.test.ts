import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { END_TOKEN, PAD_TOKEN, START_TOKEN, Vocabulary } from '@s2cpnet/data';
import { run } from './main';

const out = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-caption-images-test-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('caption-images example', () => {
  it('trains a tiny checkpoint, then captions a folder the same way through the library and the CLI', async () => {
    const lines: string[] = [];
    // one short epoch: 32 training scenes, 4 test scenes to caption
    const first = await run({ out, syntheticImages: 40, trainSeconds: 0, beamSize: 2, backend: 'wasm', log: (l) => lines.push(l) });
    expect(first.trained).toBe(true);
    expect(existsSync(path.join(first.checkpoint, 'checkpoint.json'))).toBe(true);
    expect(first.library).toHaveLength(4);
    const vocabulary = Vocabulary.fromJSON(JSON.parse(readFileSync(path.join(first.checkpoint, 'vocabulary.json'), 'utf8')));
    for (const row of first.library) {
      expect(row.file).toMatch(/^\d{4}\.png$/);
      // One short epoch: the model is barely trained and may end a caption at once (an empty caption), or say "a".
      expect(typeof row.caption).toBe('string');
      for (const word of row.caption.split(' ').filter(Boolean)) {
        expect(vocabulary.has(word), `${JSON.stringify(word)} of ${JSON.stringify(row.caption)}`).toBe(true);
        // an undertrained model may well say <unk>, but never a control token
        expect([PAD_TOKEN, START_TOKEN, END_TOKEN]).not.toContain(word);
      }
    }
    // the CLI read the same images with the same checkpoint and beam: identical captions and categories
    expect(first.cli).toEqual(first.library);
    expect(JSON.parse(readFileSync(path.join(out, 'captions.json'), 'utf8'))).toEqual(first.library);
    expect(first.command).toContain(`caption --checkpoint ${first.checkpoint} ${first.imagesDir} --masks ${first.masksDir} --beam 2`);
    expect(lines.join('\n')).toContain('the same captions');

    // a second run with --checkpoint skips training and gives the same captions
    const second = await run({ out, checkpoint: first.checkpoint, images: first.imagesDir, masks: first.masksDir!, beamSize: 2, backend: 'wasm', log: () => {} });
    expect(second.trained).toBe(false);
    expect(second.library).toEqual(first.library);

    // without a masks folder, both paths compute the mask views with the Felzenszwalb segmenter into one cache
    const third = await run({ out, checkpoint: first.checkpoint, images: first.imagesDir, beamSize: 2, backend: 'wasm', log: () => {} });
    expect(third.masksDir).toBeNull();
    expect(third.cli).toEqual(third.library);
    expect(third.library.map((r) => r.file)).toEqual(first.library.map((r) => r.file));
    expect(readdirSync(path.join(out, '.s2cpnet-cache', 'masks'), { recursive: true }).filter((f) => String(f).endsWith('.png'))).toHaveLength(4);
  });

  it('says what is missing when a checkpoint is given without images', async () => {
    await expect(run({ out, checkpoint: path.join(out, 'nowhere'), log: () => {} })).rejects.toThrow(/--images/);
  });
});
