/**
 * Hostile or unusual inputs: files sharing a base name, huge images, links out of the images folder, unreadable
 * files, Latin-1 caption files, over-long captions.
 */
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCaptionDataset } from './dataset/load';
import { realImagePath } from './dataset/paths';
import { decodeImageFile, DEFAULT_MAX_IMAGE_PIXELS, describeFsError, encodePng, parsePixelCount } from './image/codec';
import { benchmarkImage } from './masks/bench';
import { MaskCache } from './masks/cache';
import { FelzenszwalbSegmenter } from './masks/felzenszwalb';
import { renderMaskView } from './masks/render';
import type { RgbImage } from './masks/types';
import { prepareDataset } from './prepare/prepare';
import { PREPARED_FILES } from './prepare/manifest';
import { Vocabulary } from './vocab/vocabulary';

const root = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-hostile-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const same = (a: RgbImage, b: RgbImage): boolean =>
  a.width === b.width && a.height === b.height && Buffer.from(a.data).equals(Buffer.from(b.data));

const SENTENCES = ['there is an airplane at the airport', 'some cars are parked on the road', 'a river with trees on both banks'];

function karpathy(file: string, names: string[], extra: { sentences?: string[] } = {}): string {
  const images = names.map((filename) => ({
    filename,
    split: 'train',
    sentences: (extra.sentences ?? SENTENCES).map((raw) => ({ raw, tokens: raw.split(' ') })),
  }));
  writeFileSync(file, JSON.stringify({ dataset: 'toy', images }));
  return file;
}

describe('mask cache keyed by content (item 3)', () => {
  it('gives A/1.png and B/1.png their own masks, also when 1.png is replaced in place', async () => {
    const dir = path.join(root, 'masks-by-content');
    const a = benchmarkImage(64, 1);
    const b = benchmarkImage(64, 9);
    expect(same(a, b)).toBe(false);
    mkdirSync(path.join(root, 'A'), { recursive: true });
    mkdirSync(path.join(root, 'B'), { recursive: true });
    writeFileSync(path.join(root, 'A', '1.png'), encodePng(a));
    writeFileSync(path.join(root, 'B', '1.png'), encodePng(b));
    const provider = new FelzenszwalbSegmenter();
    const maskOf = async (image: RgbImage): Promise<RgbImage> => renderMaskView(image, await provider.labelMap(image, ''));
    const [expectedA, expectedB] = [await maskOf(a), await maskOf(b)];
    expect(same(expectedA, expectedB)).toBe(false);

    const cache = new MaskCache({ dir, provider });
    expect(same(await cache.get(a, path.join(root, 'A', '1.png')), expectedA)).toBe(true);
    expect(same(await cache.get(b, path.join(root, 'B', '1.png')), expectedB)).toBe(true);
    // One after the other from the same folder: A/1.png now holds B's picture.
    writeFileSync(path.join(root, 'A', '1.png'), encodePng(b));
    expect(same(await new MaskCache({ dir, provider }).get(b, path.join(root, 'A', '1.png')), expectedB)).toBe(true);
  });
});

describe('huge images (item 4)', () => {
  const huge = path.join(root, 'huge.png');
  beforeAll(async () => {
    // 16000x16000 single colour: ~3 MB on disk, 768 MB once decoded. libvips writes it in strips.
    await sharp({ create: { width: 16000, height: 16000, channels: 3, background: { r: 40, g: 120, b: 60 } } }).png().toFile(huge);
  }, 60_000);

  it('refuses a 16000x16000 PNG from its header, naming the file, its pixel size and the cap', async () => {
    const rssBefore = process.memoryUsage().rss;
    const started = Date.now();
    const error = await decodeImageFile(huge).then(() => null, (e: Error) => e);
    expect(error?.message).toMatch(/huge\.png: image is 16000x16000 pixels \(256\.0 megapixels\), more than the limit of 64\.0 megapixels/);
    expect(error?.message).toMatch(/--max-pixels|S2CPNET_MAX_IMAGE_PIXELS/);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200e6);
    expect(DEFAULT_MAX_IMAGE_PIXELS).toBe(64_000_000);
  });

  it('applies a lower cap given per call or by S2CPNET_MAX_IMAGE_PIXELS', async () => {
    const small = path.join(root, 'small.png');
    writeFileSync(small, encodePng(benchmarkImage(64, 2)));
    await expect(decodeImageFile(small, { maxPixels: 4000 })).rejects.toThrow(/small\.png: image is 64x64 pixels .*limit of 0\.004 megapixels/);
    expect((await decodeImageFile(small, { maxPixels: 4096 })).width).toBe(64);
    process.env.S2CPNET_MAX_IMAGE_PIXELS = '4000';
    try {
      await expect(decodeImageFile(small)).rejects.toThrow(/limit of 0\.004 megapixels/);
    } finally {
      delete process.env.S2CPNET_MAX_IMAGE_PIXELS;
    }
    expect(parsePixelCount('100M')).toBe(100_000_000);
    expect(parsePixelCount('2500000')).toBe(2_500_000);
    expect(() => parsePixelCount('lots')).toThrow(/expected a pixel count/);
  });

  it('prepare stops at (or skips) the huge image with the same message, without decoding it', async () => {
    const imagesDir = path.join(root, 'huge-images');
    mkdirSync(imagesDir, { recursive: true });
    writeFileSync(path.join(imagesDir, 'ok.png'), encodePng(benchmarkImage(64, 3)));
    copyFileSync(huge, path.join(imagesDir, 'huge.png'));
    const annotations = karpathy(path.join(root, 'huge.json'), ['ok.png', 'huge.png']);
    const rssBefore = process.memoryUsage().rss;
    await expect(prepareDataset({ annotations, imagesDir, outDir: path.join(root, 'huge-out'), minWordFreq: 1, minNounFreq: 1 }))
      .rejects.toThrow(/huge\.png: image is 16000x16000 pixels .*limit of 64\.0 megapixels.*listed at \$\.images\[1\]/);
    const skipped = await prepareDataset({ annotations, imagesDir, outDir: path.join(root, 'huge-out2'), minWordFreq: 1, minNounFreq: 1, onError: 'skip' });
    expect(skipped.manifest.skipped).toHaveLength(1);
    expect(skipped.manifest.skipped[0]!.reason).toMatch(/16000x16000/);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(300e6);
  });
});

describe('links out of the images folder (item 11a)', () => {
  it('prepare refuses an image that is a symlink to a file outside the images folder, naming it', async () => {
    const imagesDir = path.join(root, 'linked-images');
    const outside = path.join(root, 'outside');
    mkdirSync(imagesDir, { recursive: true });
    mkdirSync(outside, { recursive: true });
    writeFileSync(path.join(outside, 'secret.png'), encodePng(benchmarkImage(32, 4)));
    writeFileSync(path.join(imagesDir, 'ok.png'), encodePng(benchmarkImage(32, 5)));
    symlinkSync(path.join(outside, 'secret.png'), path.join(imagesDir, 'evil.png'));
    symlinkSync(path.join(imagesDir, 'ok.png'), path.join(imagesDir, 'alias.png')); // inside: fine
    const annotations = karpathy(path.join(root, 'linked.json'), ['ok.png', 'alias.png', 'evil.png']);
    await expect(prepareDataset({ annotations, imagesDir, outDir: path.join(root, 'linked-out'), size: 32, minWordFreq: 1, minNounFreq: 1 }))
      .rejects.toThrow(/evil\.png: .*link to .*secret\.png, outside the images folder/);
    const skipped = await prepareDataset({ annotations, imagesDir, outDir: path.join(root, 'linked-out2'), size: 32, minWordFreq: 1, minNounFreq: 1, onError: 'skip' });
    expect(skipped.manifest.skipped.map((s) => path.basename(s.file))).toEqual(['evil.png']);
    expect(skipped.manifest.counts.images.total).toBe(2);
    await expect(realImagePath(imagesDir, path.join(imagesDir, 'alias.png'))).resolves.toBe(path.join(imagesDir, 'ok.png'));
  });
});

describe('unreadable files (item 11b)', () => {
  it('maps errno codes to messages that say what is wrong', () => {
    expect(describeFsError('EACCES', 'image file')).toMatch(/permission denied.*image file.*EACCES/);
    expect(describeFsError('EPERM', 'image file')).toMatch(/permission denied.*EPERM/);
    expect(describeFsError('ENOENT', 'image file')).toBe('image file not found');
    expect(describeFsError('EISDIR', 'image file')).toMatch(/found a folder/);
    expect(describeFsError('ENOTDIR', 'cache folder')).toMatch(/a part of the path is a file, not a folder.*ENOTDIR/);
    expect(describeFsError('EROFS', 'cache folder')).toMatch(/read-only file system/);
    expect(describeFsError('EIO', 'image file')).toMatch(/cannot read the image file \(EIO\)/);
  });

  // chmod 000 does not stop root; as root the read is made with the effective uid of "nobody" (reversible with
  // seteuid(0) because the real uid stays 0). Forked workers (vitest pool "forks") allow seteuid.
  const uid = process.getuid?.();
  const canDrop = uid === 0 && typeof process.seteuid === 'function';
  it.skipIf(process.platform === 'win32' || (uid === 0 && !canDrop))('reports EACCES on a chmod 000 image, not "unsupported image format"', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-eacces-'));
    try {
      chmodSync(dir, 0o755);
      const file = path.join(dir, 'locked.png');
      writeFileSync(file, encodePng(benchmarkImage(32, 6)));
      chmodSync(file, 0o000);
      if (canDrop) process.seteuid!(65534);
      let error: Error | null;
      try {
        error = await decodeImageFile(file).then(() => null, (e: Error) => e);
      } finally {
        if (canDrop) process.seteuid!(0);
      }
      expect(error?.message).toMatch(/locked\.png: permission denied: cannot read the image file \(EACCES\)/);
      expect(error?.message).not.toMatch(/unsupported image format/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('caption file encoding (item 11c)', () => {
  it('refuses a Latin-1 caption file, naming the file and the byte offset', async () => {
    const utf8 = Buffer.from(JSON.stringify({ images: [{ filename: '1.png', split: 'train', sentences: [{ raw: 'a caf\u00e9 near the road' }] }] }), 'utf8');
    const latin1 = Buffer.from(utf8.toString('utf8'), 'latin1');
    const file = path.join(root, 'latin1.json');
    writeFileSync(file, latin1);
    const offset = latin1.indexOf(0xe9);
    await expect(loadCaptionDataset(file, { imagesDir: root })).rejects.toThrow(
      new RegExp(`latin1\\.json: not valid UTF-8 \\(byte 0xe9 at offset ${offset}, line 1\\)`),
    );
    // The same text as UTF-8 loads, with the accent intact.
    writeFileSync(file, utf8);
    const dataset = await loadCaptionDataset(file, { imagesDir: root });
    expect(dataset.images[0]!.captions[0]!.tokens).toContain('café');
  });
});

describe('vocabulary and the maximum caption length (item 11d)', () => {
  it('does not count words beyond maxCaptionWords', () => {
    const captions = ['a road near a river', 'a road', 'a river'];
    const dataset = {
      images: [{ id: '1', file: '1', split: 'train' as const, jsonPath: '$', captions: captions.map((raw) => ({ raw, tokens: raw.split(' ') })) }],
    };
    const vocabulary = Vocabulary.build(dataset, { minWordFreq: 1, maxCaptionWords: 2 });
    expect(vocabulary.wordList).toEqual(['a', 'road', 'river']);
    expect(vocabulary.trainCount('a')).toBe(3); // the second "a" of the first caption is cut
    expect(vocabulary.has('near')).toBe(false);
  });

  it('prepare builds vocabulary.json from truncated captions', async () => {
    const imagesDir = path.join(root, 'vocab-images');
    mkdirSync(imagesDir, { recursive: true });
    writeFileSync(path.join(imagesDir, '1.png'), encodePng(benchmarkImage(32, 7)));
    const annotations = karpathy(path.join(root, 'long.json'), ['1.png'], { sentences: ['an airplane at the airport with zebras'] });
    const outDir = path.join(root, 'vocab-out');
    await prepareDataset({ annotations, imagesDir, outDir, size: 32, minWordFreq: 1, minNounFreq: 1, maxCaptionWords: 5 });
    const json = JSON.parse(readFileSync(path.join(outDir, PREPARED_FILES.vocabulary), 'utf8'));
    expect(json.words).toContain('airport');
    expect(json.words).not.toContain('zebras');
    expect(json.words).not.toContain('with');
  });
});
