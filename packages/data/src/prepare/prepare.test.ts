import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchPipeline } from '../batch/pipeline';
import { prepareDataset, type PrepareOptions, type PrepareProgress } from './prepare';
import { loadPreparedDataset, PREPARED_FILES, preparedMaskKey, type PreparedManifest } from './manifest';

const root = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-prepare-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const imagesDir = path.join(root, 'images');
let outCounter = 0;
const freshOut = (): string => path.join(root, `out${outCounter++}`);

const CAPTIONS = [
  'There is an airplane at the airport .',
  'Some cars are parked on the road .',
  'A river with trees on both banks .',
  'Many houses with trees and a road .',
  'An airplane on the runway near the airport .',
];

async function writeImage(name: string, width: number, height: number, seed: number, channels: 1 | 3 = 3): Promise<void> {
  const data = Buffer.alloc(width * height * channels);
  // Blocks of colour, so the segmenter finds a few regions.
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const block = (Math.floor(x / 8) + Math.floor(y / 8) + seed) % 4;
      for (let c = 0; c < channels; c++) data[(y * width + x) * channels + c] = (block * 60 + c * 30 + seed * 5) % 256;
    }
  }
  const file = path.join(imagesDir, name);
  mkdirSync(path.dirname(file), { recursive: true });
  const image = sharp(data, { raw: { width, height, channels } });
  if (name.endsWith('.jpg')) await image.jpeg({ quality: 95 }).toFile(file);
  else if (name.endsWith('.tif')) await image.tiff().toFile(file);
  else await image.png().toFile(file);
}

function entry(filename: string, split: string, shift = 0): Record<string, unknown> {
  return {
    filename,
    split,
    sentences: CAPTIONS.map((raw, k) => {
      const text = CAPTIONS[(k + shift) % CAPTIONS.length]!;
      return { raw: text, tokens: text.replace(/ \.$/, '').split(' ') };
    }),
  };
}

function writeCaptions(name: string, images: unknown[]): string {
  const file = path.join(root, name);
  writeFileSync(file, JSON.stringify({ dataset: 'toy', images }));
  return file;
}

const GOOD = [
  entry('a.png', 'train', 0),
  entry('b.jpg', 'train', 1),
  entry('c.tif', 'train', 2),
  entry('d.png', 'restval', 3),
  entry('e.png', 'val', 4),
];
let goodCaptions = '';

beforeAll(async () => {
  await writeImage('a.png', 32, 32, 1);
  await writeImage('b.jpg', 30, 34, 2);
  await writeImage('c.tif', 33, 31, 3);
  await writeImage('d.png', 32, 32, 4, 1);
  await writeImage('e.png', 40, 24, 5);
  await writeImage('sub/f.png', 32, 32, 6);
  await writeImage('other/a.png', 32, 32, 7);
  writeFileSync(path.join(imagesDir, 'corrupt.png'), 'not a png at all');
  goodCaptions = writeCaptions('good.json', GOOD);
});

function base(extra: Partial<PrepareOptions> = {}): PrepareOptions {
  return { annotations: goodCaptions, imagesDir, outDir: freshOut(), size: 24, minWordFreq: 2, minNounFreq: 2, ...extra };
}

function leftovers(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const full = path.join(d, name);
      if (name.endsWith('.tmp')) found.push(full);
      if (statSync(full).isDirectory()) walk(full);
    }
  };
  if (existsSync(dir)) walk(dir);
  return found;
}

describe('prepareDataset', () => {
  it('writes dataset, vocabulary, nouns, masks and a manifest that loads back', async () => {
    const options = base();
    const phases = new Set<string>();
    const result = await prepareDataset(options, (p) => phases.add(p.phase));
    const manifest: PreparedManifest = JSON.parse(readFileSync(path.join(options.outDir, PREPARED_FILES.manifest), 'utf8'));
    expect(result.manifest).toEqual(manifest);
    expect(manifest.counts.images).toEqual({ train: 4, val: 1, test: 0, total: 5 });
    expect(manifest.counts.captions).toEqual({ train: 20, val: 5, test: 0, total: 25 });
    expect(manifest.source).toMatchObject({ format: 'karpathy', name: 'toy', annotations: goodCaptions, imagesDir, masksDir: null });
    expect(manifest.settings).toMatchObject({ size: 24, minWordFreq: 2, onError: 'stop', masks: { provider: 'felzenszwalb', precomputed: false, workingSize: 24 } });
    expect(manifest.warnings).toEqual(['split "test" has no images']);
    expect(manifest.truncation).toMatchObject({ maxCaptionWords: 25, truncatedTrainCaptions: 0, longestCaptionWords: 8 });
    expect([...phases]).toEqual(['captions', 'images', 'vocabulary', 'nouns', 'writing', 'done']);
    expect(result.processed).toBe(5);
    const maskFolder = path.join(options.outDir, manifest.files.masks);
    expect(readdirSync(maskFolder).sort()).toEqual(['a.png', 'b.png', 'c.png', 'd.png', 'e.png']);
    expect(leftovers(options.outDir)).toEqual([]);

    const prepared = await loadPreparedDataset(options.outDir);
    expect(prepared.vocabulary.size).toBe(manifest.counts.vocabulary);
    expect(prepared.categories.classes).toContain('airplane');
    expect(prepared.categories.nounsOf('a.png')).toContain('airport');
    expect(prepared.dataset.images.map((i) => i.id)).toEqual(['a.png', 'b.jpg', 'c.tif', 'd.png', 'e.png']);
    // The prepared folder feeds the batch pipeline directly, masks included.
    const pipeline = new BatchPipeline({
      dataset: prepared.dataset, split: 'train', vocabulary: prepared.vocabulary, categories: prepared.categories,
      masks: prepared.maskSource, imageSize: 16, backbone: 'mobilenet', batchSize: 4, seed: 1,
    });
    const batches = [];
    for await (const batch of pipeline.epoch(0)) batches.push(batch);
    expect(batches).toHaveLength(1);
    expect(batches[0]!.masks!.length).toBe(4 * 16 * 16 * 3);
    expect(batches[0]!.masks!.every((v) => v >= -1 && v <= 1)).toBe(true);
  });

  it('is idempotent: a second run redoes no image and writes identical files', async () => {
    const options = base();
    await prepareDataset(options);
    const read = (name: string) => readFileSync(path.join(options.outDir, name));
    const before = [PREPARED_FILES.manifest, PREPARED_FILES.dataset, PREPARED_FILES.vocabulary, PREPARED_FILES.nouns].map(read);
    const again = await prepareDataset(options);
    expect(again.processed).toBe(0);
    expect(again.resumed).toBe(5);
    const after = [PREPARED_FILES.manifest, PREPARED_FILES.dataset, PREPARED_FILES.vocabulary, PREPARED_FILES.nouns].map(read);
    after.forEach((bytes, i) => expect(bytes.equals(before[i]!)).toBe(true));
  });

  it('resumes after an interruption without redoing finished images, and redoes a changed image', async () => {
    const options = base({ concurrency: 1 });
    const controller = new AbortController();
    const stopAfterTwo = (p: PrepareProgress) => {
      if (p.phase === 'images' && p.done === 2) controller.abort();
    };
    await expect(prepareDataset({ ...options, signal: controller.signal }, stopAfterTwo)).rejects.toMatchObject({ code: 'INTERRUPTED' });
    expect(existsSync(path.join(options.outDir, PREPARED_FILES.manifest))).toBe(false);
    expect(existsSync(path.join(options.outDir, PREPARED_FILES.progress))).toBe(true);
    expect(leftovers(options.outDir)).toEqual([]);

    const resumed = await prepareDataset(options);
    expect(resumed.resumed).toBe(2);
    expect(resumed.processed).toBe(3);
    expect(resumed.manifest.counts.images.total).toBe(5);

    // Touching an image makes its recorded size/time stale: only it is processed again.
    const later = new Date(Date.now() + 5000);
    utimesSync(path.join(imagesDir, 'e.png'), later, later);
    const third = await prepareDataset(options);
    expect(third.processed).toBe(1);
    expect(third.resumed).toBe(4);
  });

  it('reads NWPU-Captions (class folders) and COCO files too', async () => {
    const nwpu = path.join(root, 'nwpu.json');
    writeFileSync(nwpu, JSON.stringify({ sub: [{ filename: 'f.png', split: 'train', raw: CAPTIONS[0], raw_1: CAPTIONS[1], raw_2: CAPTIONS[0], raw_3: CAPTIONS[4], raw_4: CAPTIONS[1] }] }));
    const fromNwpu = await prepareDataset(base({ annotations: nwpu, minWordFreq: 1, minNounFreq: 1 }));
    expect(fromNwpu.manifest.source.format).toBe('nwpu');
    expect(fromNwpu.manifest.counts.images.train).toBe(1);

    const coco = path.join(root, 'coco.json');
    writeFileSync(coco, JSON.stringify({
      images: [{ id: 1, file_name: 'a.png' }, { id: 2, file_name: 'e.png', split: 'test' }],
      annotations: [{ image_id: 1, caption: CAPTIONS[0] }, { image_id: 2, caption: CAPTIONS[1] }, { image_id: 1, caption: CAPTIONS[4] }],
    }));
    const fromCoco = await prepareDataset(base({ annotations: coco, defaultSplit: 'train', minWordFreq: 1 }));
    expect(fromCoco.manifest.counts.images).toEqual({ train: 1, val: 0, test: 1, total: 2 });
  });
});

describe('masks versions', () => {
  it('records the built-in segmenter version in the manifest, keeps v1 and v2 masks apart, and loads each back', async () => {
    const v1 = await prepareDataset(base());
    const v2 = await prepareDataset(base({ masksVersion: 'v2' }));
    expect(v1.manifest.settings.masks).toMatchObject({ provider: 'felzenszwalb', version: 'v1' });
    expect(v2.manifest.settings.masks).toMatchObject({ provider: 'felzenszwalb', version: 'v2', precomputed: false, workingSize: 24 });
    expect(v2.manifest.settings.masks.cacheKey).toMatch(/^targets-v2-/);
    expect(v2.manifest.settings.masks.cacheKey).not.toBe(v1.manifest.settings.masks.cacheKey);
    expect(v2.manifest.files.masks).not.toBe(v1.manifest.files.masks);
    // Cached mask features are keyed by it (plus the working size), so they never mix either.
    expect(preparedMaskKey(v1.manifest)).toBe(`${v1.manifest.settings.masks.cacheKey}@24`);
    expect(preparedMaskKey(v2.manifest)).not.toBe(preparedMaskKey(v1.manifest));
    // The prepared folder's mask source recomputes a missing view with the recorded version.
    const prepared = await loadPreparedDataset(v2.outDir);
    const image = prepared.dataset.images[0]!;
    const maskFile = path.join(v2.outDir, v2.manifest.files.masks, `${path.parse(image.file).name}.png`);
    const written = readFileSync(maskFile);
    rmSync(maskFile);
    const { decodeImageFile } = await import('../image/codec');
    const view = await prepared.maskSource(image, await decodeImageFile(image.file));
    expect(view.width).toBe(24);
    expect(readFileSync(maskFile)).toEqual(written);
  });

  it('refuses v2 together with precomputed masks, and an unknown version', async () => {
    await expect(prepareDataset(base({ masksVersion: 'v2', masksDir: imagesDir }))).rejects.toThrow(/masksVersion/);
    await expect(prepareDataset(base({ masksVersion: 'v3' as 'v2' }))).rejects.toThrow(/masksVersion.*"v3"/);
  });
});

describe('bad input', () => {
  async function expectStop(images: unknown[], message: RegExp, extra: Partial<PrepareOptions> = {}): Promise<string> {
    const options = base({ annotations: writeCaptions(`bad${outCounter}.json`, images), ...extra });
    await expect(prepareDataset(options)).rejects.toThrow(message);
    // Nothing half-written: no manifest, no temp files.
    expect(existsSync(path.join(options.outDir, PREPARED_FILES.manifest))).toBe(false);
    expect(leftovers(options.outDir)).toEqual([]);
    return options.outDir;
  }

  it('stops at a missing image, naming the file and where it is listed', async () => {
    await expectStop([...GOOD, entry('missing.png', 'train')], /missing\.png: image file not found \(listed at \$\.images\[5\] of .*bad\d+\.json\)/);
  });

  it('stops at a corrupt image', async () => {
    await expectStop([entry('corrupt.png', 'train'), ...GOOD], /corrupt\.png: cannot decode image/);
  });

  it('stops at an image listed twice, a path escaping the images folder, and an absolute path', async () => {
    await expectStop([...GOOD, entry('a.png', 'val')], /\$\.images\[5\]: image "a\.png" is listed twice/);
    await expectStop([...GOOD, entry('../good.json', 'train')], /\$\.images\[5\]: file name "\.\.\/good\.json" leaves the images folder/);
    await expectStop([...GOOD, entry(path.join(imagesDir, 'a.png'), 'train')], /is an absolute path/);
  });

  it('stops at two images whose masks would share a file name', async () => {
    await expectStop([...GOOD, entry('other/a.png', 'train')], /same base name as "a\.png"/);
  });

  it('stops when the train split is empty, and at a caption file of the wrong shape', async () => {
    await expectStop([entry('e.png', 'val')], /split "train" has no usable images/);
    await expectStop([{ filename: 'a.png', split: 'train', sentences: 'x' }], /\$\.images\[0\]\.sentences: expected "sentences" to be an array/);
    const wrong = path.join(root, 'wrong.json');
    writeFileSync(wrong, JSON.stringify([1, 2, 3]));
    await expect(prepareDataset(base({ annotations: wrong }))).rejects.toThrow(/wrong\.json at \$: expected a JSON object/);
  });

  it('stops at a precomputed mask whose size differs from its image, or that is missing', async () => {
    const masksDir = path.join(root, 'masks');
    mkdirSync(masksDir, { recursive: true });
    const mask = (w: number, h: number) => sharp(Buffer.alloc(w * h * 3, 90), { raw: { width: w, height: h, channels: 3 } }).png();
    await mask(32, 32).toFile(path.join(masksDir, 'a.png'));
    await mask(30, 34).toFile(path.join(masksDir, 'b.png'));
    await mask(32, 32).toFile(path.join(masksDir, 'c.png')); // c.tif is 33x31
    await expectStop([GOOD[0], GOOD[1], GOOD[2]], /masks[/\\]c\.png: mask is 32x32 but its image .*c\.tif is 33x31/, { masksDir });
    await expectStop([GOOD[0], GOOD[3]], /d\.png: no mask in/, { masksDir });
    const ok = await prepareDataset(base({ annotations: writeCaptions('masked.json', [GOOD[0], GOOD[1]]), masksDir }));
    expect(ok.manifest.settings.masks).toMatchObject({ provider: 'folder', precomputed: true, workingSize: null });
    expect(ok.manifest.source.masksDir).toBe(masksDir);
  });

  it('with onError skip, leaves every bad item out and lists it in the manifest', async () => {
    const images = [
      ...GOOD,
      entry('missing.png', 'train'),
      entry('corrupt.png', 'train'),
      entry('a.png', 'val'),
      entry('../escape.png', 'train'),
      { filename: 'x.png', split: 'nope', sentences: [] },
    ];
    const options = base({ annotations: writeCaptions('mixed.json', images), onError: 'skip' });
    const { manifest } = await prepareDataset(options);
    expect(manifest.counts.images.total).toBe(5);
    expect(manifest.counts.skipped).toBe(5);
    expect(manifest.counts.listed).toBe(10);
    const reasons = manifest.skipped.map((s) => `${path.basename(s.file)} ${s.jsonPath} ${s.reason}`);
    expect(reasons).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^missing\.png \$\.images\[5\] .*image file not found/),
        expect.stringMatching(/^corrupt\.png \$\.images\[6\] .*cannot decode image/),
        expect.stringMatching(/^mixed\.json \$\.images\[7\] .*listed twice/),
        expect.stringMatching(/^mixed\.json \$\.images\[8\] .*leaves the images folder/),
        expect.stringMatching(/^mixed\.json \$\.images\[9\]\.split .*"nope"/),
      ]),
    );
    expect(leftovers(options.outDir)).toEqual([]);
  });

  it('reports a missing images folder or caption file', async () => {
    await expect(prepareDataset(base({ imagesDir: path.join(root, 'nope') }))).rejects.toThrow(/nope: images folder not found/);
    await expect(prepareDataset(base({ annotations: path.join(root, 'none.json') }))).rejects.toThrow(/none\.json: caption file not found/);
    await expect(prepareDataset(base({ size: 3 }))).rejects.toThrow(/\$\.size: expected an integer in 16\.\.4096/);
  });
});

describe('loadPreparedDataset', () => {
  it('refuses a folder whose files do not match the manifest', async () => {
    const options = base();
    await prepareDataset(options);
    writeFileSync(path.join(options.outDir, PREPARED_FILES.vocabulary), '{}\n');
    await expect(loadPreparedDataset(options.outDir)).rejects.toThrow(/vocabulary\.json: content differs from what manifest\.json recorded/);
    await expect(loadPreparedDataset(root)).rejects.toThrow(/manifest\.json: no manifest\.json/);
  });
});
