import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError, S2CPNetError } from '@s2cpnet/core';
import { afterAll, describe, expect, it } from 'vitest';
import { countBySplit, detectCaptionFormat, loadCaptionDataset, parseCaptionDataset } from './load';
import { normalizeTokens, tokenizeCaption } from './tokenize';
import { sharedPath, skippedBecause } from '../../../../scripts/shared-dir';

const tmp = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-load-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const imagesDir = path.join(tmp, 'images');

function karpathy(images: unknown[]): unknown {
  return { dataset: 'toy', images };
}

function sentence(raw: string, tokens?: string[]): Record<string, unknown> {
  return { raw, tokens: tokens ?? raw.replace(/ \.$/, '').split(' ') };
}

function parse(json: unknown, extra: Record<string, unknown> = {}) {
  return parseCaptionDataset(json, { file: path.join(tmp, 'captions.json'), imagesDir, ...extra });
}

/** Runs `fn`, expecting an InputError; returns it. */
function inputError(fn: () => unknown): InputError {
  try {
    fn();
  } catch (error) {
    expect(S2CPNetError.isInstance(error)).toBe(true);
    expect((error as S2CPNetError).code).toBe('INPUT');
    return error as InputError;
  }
  throw new Error('expected an InputError');
}

describe('tokenizeCaption', () => {
  it('lower-cases, drops punctuation and keeps hyphenated words whole', () => {
    expect(tokenizeCaption('A T-junction, with two roads.')).toEqual(['a', 't-junction', 'with', 'two', 'roads']);
    expect(tokenizeCaption("  it's  -- here  ")).toEqual(["it's", 'here']);
  });

  it('normalises given tokens: empty tokens dropped, trailing dots removed, typos kept', () => {
    expect(normalizeTokens(['Lots', '', 'of', 'formland', 'ground.'])).toEqual(['lots', 'of', 'formland', 'ground']);
  });
});

describe('Karpathy layout', () => {
  const json = karpathy([
    { filename: 'a.png', imgid: 0, split: 'train', sentences: [sentence('There is a piece of farmland .', ['There', 'is', 'a', 'piece', 'of', 'formland'])] },
    { filename: 'b.png', imgid: 1, split: 'restval', sentences: [sentence('Two Cars .')] },
    { filename: 'c.png', imgid: 2, split: 'val', sentences: [{ raw: 'A road.' }] },
    { filename: 'd.png', filepath: 'sub', imgid: 3, split: 'test', sentences: [sentence('A river .')] },
  ]);

  it('reads images, splits (restval as train), tokens (original typos) and raw-only sentences', () => {
    const dataset = parse(json);
    expect(dataset.source.format).toBe('karpathy');
    expect(dataset.source.name).toBe('toy');
    expect(dataset.images.map((i) => [i.id, i.split])).toEqual([
      ['a.png', 'train'],
      ['b.png', 'train'],
      ['c.png', 'val'],
      ['sub/d.png', 'test'],
    ]);
    expect(dataset.images[0]!.captions[0]).toEqual({ raw: 'There is a piece of farmland .', tokens: ['there', 'is', 'a', 'piece', 'of', 'formland'] });
    expect(dataset.images[2]!.captions[0]!.tokens).toEqual(['a', 'road']);
    expect(dataset.images[3]!.file).toBe(path.join(imagesDir, 'sub', 'd.png'));
    expect(dataset.images[1]!.sourceId).toBe(1);
    expect(countBySplit(dataset)).toEqual({ train: 2, val: 1, test: 1 });
  });

  it('names the JSON path of a malformed entry and what was expected', () => {
    const bad = karpathy([{ filename: 'a.png', split: 'train', sentences: [{ tokens: 'not an array' }] }]);
    const error = inputError(() => parse(bad));
    expect(error.jsonPath).toBe('$.images[0].sentences[0].tokens');
    expect(error.message).toContain('captions.json');
    expect(error.message).toMatch(/expected "tokens" to be an array of strings, found the string/);
  });

  it('rejects an unknown split, naming the value and the valid ones', () => {
    const error = inputError(() => parse(karpathy([{ filename: 'a.png', split: 'dev', sentences: [sentence('x y .')] }])));
    expect(error.jsonPath).toBe('$.images[0].split');
    expect(error.message).toContain('"dev"');
    expect(error.message).toContain('"train", "val", "test" or "restval"');
  });

  it('rejects an image with no captions', () => {
    const error = inputError(() => parse(karpathy([{ filename: 'a.png', split: 'train', sentences: [] }])));
    expect(error.jsonPath).toBe('$.images[0].sentences');
  });

  it('rejects an image listed twice, pointing at both entries', () => {
    const twice = karpathy([
      { filename: 'a.png', split: 'train', sentences: [sentence('x .')] },
      { filename: './a.png', split: 'val', sentences: [sentence('y .')] },
    ]);
    const error = inputError(() => parse(twice));
    expect(error.jsonPath).toBe('$.images[1]');
    expect(error.message).toContain('listed twice (first at $.images[0])');
  });

  it.each([
    ['../outside.png', 'leaves the images folder'],
    ['sub/../../outside.png', 'leaves the images folder'],
    ['/etc/passwd', 'absolute path'],
    ['C:\\data\\x.png', 'absolute path'],
    ['', 'non-empty file name'],
  ])('refuses the file name %j', (name, message) => {
    const error = inputError(() => parse(karpathy([{ filename: name, split: 'train', sentences: [sentence('x .')] }])));
    expect(error.message).toContain(message);
    expect(error.jsonPath).toMatch(/^\$\.images\[0\]/);
  });

  it('under onError skip leaves bad entries out and lists them', () => {
    const mixed = karpathy([
      { filename: 'a.png', split: 'train', sentences: [sentence('x .')] },
      { filename: '../evil.png', split: 'train', sentences: [sentence('x .')] },
      { filename: 'a.png', split: 'train', sentences: [sentence('x .')] },
      { split: 'train', sentences: [sentence('x .')] },
      { filename: 'b.png', split: 'val', sentences: [sentence('y .')] },
    ]);
    const dataset = parse(mixed, { onError: 'skip' });
    expect(dataset.images.map((i) => i.id)).toEqual(['a.png', 'b.png']);
    expect(dataset.skipped.map((s) => s.jsonPath)).toEqual(['$.images[3].filename', '$.images[1]', '$.images[2]']);
    expect(dataset.skipped.every((s) => s.file.endsWith('captions.json') && s.reason.length > 0)).toBe(true);
  });

  it('fails when nothing is usable, even under skip', () => {
    const error = inputError(() => parse(karpathy([{ filename: '/abs.png', split: 'train', sentences: [sentence('x .')] }]), { onError: 'skip' }));
    expect(error.message).toContain('no usable images');
  });
});

describe('NWPU-Captions layout', () => {
  const json = {
    airplane: [
      { filename: 'airplane_001.jpg', imgid: 0, split: 'train', raw: 'An airplane.', raw_1: 'A plane.', raw_2: 'Two.', raw_3: 'Three.', raw_4: 'Four.', sentids: [0, 1, 2, 3, 4] },
      { filename: 'airplane_002.jpg', imgid: 1, split: 'test', raw_1: 'B.', raw: 'A.' },
    ],
    beach: [{ filename: 'beach_001.jpg', imgid: 2, split: 'val', raw: 'Waves on a beach.' }],
  };

  it('reads five captions in order from raw..raw_4 and puts images under their class folder', () => {
    const dataset = parse(json);
    expect(dataset.source.format).toBe('nwpu');
    expect(dataset.images.map((i) => i.id)).toEqual(['airplane/airplane_001.jpg', 'airplane/airplane_002.jpg', 'beach/beach_001.jpg']);
    expect(dataset.images[0]!.captions.map((c) => c.raw)).toEqual(['An airplane.', 'A plane.', 'Two.', 'Three.', 'Four.']);
    expect(dataset.images[1]!.captions.map((c) => c.raw)).toEqual(['A.', 'B.']);
    expect(dataset.images[0]!.captions[0]!.tokens).toEqual(['an', 'airplane']);
    expect(dataset.images[2]!.sceneClass).toBe('beach');
    expect(countBySplit(dataset)).toEqual({ train: 1, val: 1, test: 1 });
  });

  it('names the class and index of a malformed caption', () => {
    const error = inputError(() => parse({ airplane: [{ filename: 'a.jpg', split: 'train', raw: 42 }] }, { format: 'nwpu' }));
    expect(error.jsonPath).toBe('$["airplane"][0].raw');
    expect(error.message).toContain('expected a caption string, found number 42');
  });
});

describe('COCO captions layout', () => {
  const json = {
    images: [
      { id: 10, file_name: 'x.jpg', split: 'train' },
      { id: 11, file_name: 'y.jpg' },
    ],
    annotations: [
      { image_id: 10, id: 1, caption: 'A road.' },
      { image_id: 11, id: 2, caption: 'A river.' },
      { image_id: 10, id: 3, caption: 'Some cars.' },
    ],
  };

  it('groups annotations by image and uses defaultSplit for images without a split', () => {
    const dataset = parse(json, { defaultSplit: 'val' });
    expect(dataset.source.format).toBe('coco');
    expect(dataset.images.map((i) => [i.id, i.split, i.captions.map((c) => c.raw)])).toEqual([
      ['x.jpg', 'train', ['A road.', 'Some cars.']],
      ['y.jpg', 'val', ['A river.']],
    ]);
  });

  it('asks for a split when an image has none and no default is given', () => {
    const error = inputError(() => parse(json));
    expect(error.jsonPath).toBe('$.images[1].split');
    expect(error.message).toContain('default split');
  });

  it('rejects an annotation for an unknown image', () => {
    const error = inputError(() => parse({ images: [{ id: 1, file_name: 'x.jpg', split: 'train' }], annotations: [{ image_id: 2, caption: 'x' }] }));
    expect(error.jsonPath).toBe('$.annotations[0].image_id');
  });
});

describe('format detection and file errors', () => {
  it('detects each layout from its shape', () => {
    expect(detectCaptionFormat({ images: [{ filename: 'a', sentences: [] }] })).toBe('karpathy');
    expect(detectCaptionFormat({ images: [], annotations: [] })).toBe('coco');
    expect(detectCaptionFormat({ cls: [{ filename: 'a', raw: 'x' }] })).toBe('nwpu');
  });

  it('explains an unrecognised layout, listing the accepted ones and the keys found', () => {
    const error = inputError(() => detectCaptionFormat({ foo: 1, bar: [] }, 'x.json'));
    expect(error.message).toMatch(/Karpathy .*NWPU-Captions .*COCO/);
    expect(error.message).toContain('"foo", "bar"');
    expect(inputError(() => detectCaptionFormat([1, 2])).message).toContain('found an array of 2');
    const notArray = inputError(() => detectCaptionFormat({ images: { a: 1 } }));
    expect(notArray.jsonPath).toBe('$.images');
    expect(notArray.message).toContain('expected "images" to be an array (Karpathy or COCO layout), found an object');
  });

  it('reports a missing file, a folder and invalid JSON with the file name', async () => {
    await expect(loadCaptionDataset(path.join(tmp, 'nope.json'), { imagesDir })).rejects.toThrow(/nope\.json: caption file not found/);
    await expect(loadCaptionDataset(tmp, { imagesDir })).rejects.toThrow(/found a folder/);
    const broken = path.join(tmp, 'broken.json');
    writeFileSync(broken, '{"images": [');
    await expect(loadCaptionDataset(broken, { imagesDir })).rejects.toThrow(/broken\.json: not valid JSON/);
  });

  it('reads a file from disk (with a byte-order mark)', async () => {
    const file = path.join(tmp, 'bom.json');
    writeFileSync(file, `\ufeff${JSON.stringify(karpathy([{ filename: 'a.png', split: 'train', sentences: [sentence('x .')] }]))}`);
    const dataset = await loadCaptionDataset(file, { imagesDir });
    expect(dataset.source.file).toBe(file);
    expect(dataset.images).toHaveLength(1);
  });
});

const UCM = sharedPath('data/ucm') ?? '';
const TIF = sharedPath('testdata/ucm-tif') ?? '';

describe.skipIf(UCM === '')(`shared UCM data${UCM === '' ? ` (${skippedBecause('data/ucm')})` : ''}`, () => {
  it('loads the UCM train and val splits with five captions per image', async () => {
    const dataset = await loadCaptionDataset(path.join(UCM, 'dataset.json'), { imagesDir: path.join(UCM, 'images') });
    expect(dataset.source).toMatchObject({ format: 'karpathy', name: 'UCM' });
    expect(countBySplit(dataset)).toEqual({ train: 1680, val: 210, test: 0 });
    expect(dataset.images.every((image) => image.captions.length === 5)).toBe(true);
    expect(dataset.images.every((image) => existsSync(image.file))).toBe(true);
    expect(dataset.images[0]!.captions[0]!.tokens).toContain('formland');
    expect(dataset.images.flatMap((i) => i.captions).every((c) => c.tokens.every((t) => t === t.toLowerCase() && t.length > 0))).toBe(true);
  });
});

describe.skipIf(TIF === '')(`shared TIFF samples${TIF === '' ? ` (${skippedBecause('testdata/ucm-tif')})` : ''}`, () => {
  it('loads the 12 TIFF entries', async () => {
    const dataset = await loadCaptionDataset(path.join(TIF, 'dataset.json'), { imagesDir: TIF });
    expect(dataset.images).toHaveLength(12);
    expect(dataset.images.every((image) => image.id.endsWith('.tif') && existsSync(image.file))).toBe(true);
  });
});
