import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '@s2cpnet/core/testing';
import { benchmarkImage, computeMaskView, decodeImageFile, encodePng, FelzenszwalbSegmenter, TargetSegmenter, Vocabulary } from '@s2cpnet/data';
import { buildS2CPNet } from './s2cpnet';
import { loadCheckpoint, saveCheckpoint } from './checkpoint';
import { tinyConfig } from './testing/tiny';
import { isCaptionFailure, loadCaptioner, openCaptionMasks, recordedMaskVersion, type CaptionedItem } from './captioner';

let root = '';
let checkpoint = '';
let image = '';

beforeAll(async () => {
  await useBackend('cpu');
  root = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-captioner-'));
  checkpoint = path.join(root, 'ckpt');
  const words = 'a road river tree house car green field'.split(' ');
  const vocabulary = Vocabulary.build({ images: [{ id: '1', file: '1', split: 'train', jsonPath: '$', captions: [{ raw: '', tokens: words }] }] }, { minWordFreq: 1 });
  const model = buildS2CPNet(tinyConfig('s2cpnet'), { vocabSize: vocabulary.size, numClasses: 3 });
  try {
    // Trained (say) on masks made at 96 px: captioning must make them at 96 px too.
    await saveCheckpoint(checkpoint, { model, vocabulary, classNames: ['road', 'river', 'tree'], masks: { provider: 'felzenszwalb', precomputed: false, workingSize: 96 } });
  } finally {
    model.dispose();
  }
  image = path.join(root, 'scene.png');
  writeFileSync(image, encodePng(benchmarkImage(128, 4)));
}, 120_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('loadCaptioner', () => {
  it('captions a file path, encoded bytes, a tensor and a decoded RgbImage alike, reports loading progress, and leaks no tensor', async () => {
    const stages: string[] = [];
    const captioner = await loadCaptioner(checkpoint, { cacheDir: false, onProgress: (p) => stages.push(p.stage) });
    expect(stages).toEqual(['backend', 'checkpoint', 'ready']);
    expect(captioner.backend).toBe('cpu');
    expect(captioner.maskSize).toBe(96);
    const decoded = await decodeImageFile(image);
    const tensor = tf.tensor3d(decoded.data, [decoded.height, decoded.width, 3], 'int32');
    await captioner.caption(tensor); // first call: layers cache their constant tensors
    const before = tf.memory().numTensors;
    const [fromFile, fromBytes, fromTensor, fromImage] = await captioner.caption([image, readFileSync(image), tensor, decoded]);
    expect(tf.memory().numTensors).toBe(before);
    tensor.dispose();
    expect(fromFile!.file).toBe(image);
    expect(typeof fromFile!.caption).toBe('string');
    expect(fromBytes!.file).toBeUndefined();
    expect(fromBytes!.caption).toBe(fromFile!.caption);
    expect(fromTensor!.caption).toBe(fromFile!.caption);
    expect(fromImage).toEqual({ ...fromFile, file: undefined });
    await expect(captioner.caption({ width: 3, height: 2, data: new Uint8Array(17) })).rejects.toThrow('expected 3x2x3 = 18 bytes of RGB data, found 17');
    for (const c of fromFile!.categories) expect(Object.keys(c).sort()).toEqual(['name', 'probability']);
    expect(fromFile!.attention).toBeUndefined();
    const single = await captioner.caption(image);
    expect(single).toHaveLength(1);
    captioner.dispose();
  });

  it('computes mask views as prepare does, at the working size the checkpoint records', async () => {
    const captioner = await loadCaptioner(checkpoint, { cacheDir: path.join(root, 'cache'), attention: true });
    const items: CaptionedItem[] = [];
    const [result] = await captioner.captionFiles([image], { onItem: (item) => void items.push(item) });
    const expected = await computeMaskView(await decodeImageFile(image), image, new FelzenszwalbSegmenter(), { size: 96 });
    expect(items[0]!.maskView!.width).toBe(96);
    expect(Buffer.from(items[0]!.maskView!.data).equals(Buffer.from(expected.data))).toBe(true);
    expect(isCaptionFailure(result!)).toBe(false);
    expect((result as { attention?: unknown[] }).attention!.length).toBeGreaterThan(0);
    captioner.dispose();
  });

  it('computes masks with the version the checkpoint records: v2 for v2, v1 when none is recorded', async () => {
    // The same weights, recorded as trained on v2 masks (checkpoint.json's $.masks.version).
    const v2 = path.join(root, 'ckpt-v2');
    cpSync(checkpoint, v2, { recursive: true });
    const json = JSON.parse(readFileSync(path.join(v2, 'checkpoint.json'), 'utf8'));
    expect(json.masks.version).toBeUndefined();
    json.masks.version = 'v2';
    writeFileSync(path.join(v2, 'checkpoint.json'), JSON.stringify(json));
    const decoded = await decodeImageFile(image);
    const expectedV1 = await computeMaskView(decoded, image, new FelzenszwalbSegmenter(), { size: 96 });
    const expectedV2 = await computeMaskView(decoded, image, new TargetSegmenter(), { size: 96 });
    expect(Buffer.from(expectedV1.data).equals(Buffer.from(expectedV2.data))).toBe(false);

    const viewOf = async (dir: string) => {
      const captioner = await loadCaptioner(dir, { cacheDir: path.join(root, 'cache-versions') });
      const items: CaptionedItem[] = [];
      await captioner.captionFiles([image], { onItem: (item) => void items.push(item) });
      captioner.dispose();
      return Buffer.from(items[0]!.maskView!.data);
    };
    // One cache folder for both: v1 and v2 views are cached apart, so neither gets the other's.
    expect((await viewOf(checkpoint)).equals(Buffer.from(expectedV1.data))).toBe(true);
    expect((await viewOf(v2)).equals(Buffer.from(expectedV2.data))).toBe(true);
    expect((await viewOf(checkpoint)).equals(Buffer.from(expectedV1.data))).toBe(true);

    const loadedV1 = await loadCheckpoint(checkpoint);
    const loadedV2 = await loadCheckpoint(v2);
    try {
      expect(recordedMaskVersion(loadedV1)).toBe('v1');
      expect(loadedV2.masks).toEqual({ provider: 'felzenszwalb', precomputed: false, workingSize: 96, version: 'v2' });
      const masks = await openCaptionMasks({ cacheDir: false, maskSize: 96, version: recordedMaskVersion(loadedV2) });
      expect(Buffer.from((await masks.view(decoded, image)).data).equals(Buffer.from(expectedV2.data))).toBe(true);
    } finally {
      loadedV1.model.dispose();
      loadedV2.model.dispose();
    }
    json.masks.version = 'v9';
    writeFileSync(path.join(v2, 'checkpoint.json'), JSON.stringify(json));
    await expect(loadCheckpoint(v2)).rejects.toThrow(/\$\.masks\.version/);
  });

  it('captionFiles stops at a bad file naming it, or skips it and goes on', async () => {
    const bad = path.join(root, 'bad.png');
    writeFileSync(bad, 'not an image');
    const captioner = await loadCaptioner(checkpoint, { cacheDir: false, batchSize: 2 });
    await expect(captioner.captionFiles([image, bad])).rejects.toThrow(/bad\.png/);
    const progress: number[] = [];
    const results = await captioner.captionFiles([bad, image, image], { onError: 'skip', onProgress: (d) => progress.push(d) });
    expect(results.map(isCaptionFailure)).toEqual([true, false, false]);
    expect((results[0] as { file: string }).file).toBe(bad);
    expect(progress).toEqual([2, 3]);
    captioner.dispose();
  });

  it("warns about an input much larger than the model input; 'onnx' points to loadOnnxCaptioner", async () => {
    const big = path.join(root, 'big.png');
    writeFileSync(big, encodePng(benchmarkImage(300, 2)));
    const warnings: string[] = [];
    const captioner = await loadCaptioner(checkpoint, { cacheDir: false, warn: (l) => warnings.push(l) });
    await captioner.caption(big);
    expect(warnings.join('\n')).toMatch(/big\.png is 300x300 px, more than 4x the model's 64 px input/);
    captioner.dispose();
    await expect(loadCaptioner(checkpoint, { runtime: 'onnx' })).rejects.toThrow(/'onnx' runtime is @s2cpnet\/runtime-onnx's loadOnnxCaptioner/);
  });

  describe('from a URL with a sha256', () => {
    let server: Server;
    let base = '';
    let archive: Buffer;
    beforeAll(async () => {
      const pack = path.join(root, 'pack');
      mkdirSync(pack);
      // as `npm pack` lays out a weights package: package/package.json naming package/checkpoint
      execFileSync('mkdir', ['-p', path.join(pack, 'package')]);
      execFileSync('cp', ['-r', checkpoint, path.join(pack, 'package', 'checkpoint')]);
      writeFileSync(path.join(pack, 'package', 'package.json'), JSON.stringify({ name: 'w', s2cpnet: { checkpoint: 'checkpoint' } }));
      execFileSync('tar', ['czf', path.join(root, 'weights.tgz'), '-C', pack, 'package']);
      archive = readFileSync(path.join(root, 'weights.tgz'));
      server = createServer((req, res) => {
        if (req.url === '/weights.tgz') res.end(archive);
        else res.writeHead(404).end();
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('downloads, checks, unpacks once and loads it; a wrong sha256 is refused', async () => {
      const sha256 = createHash('sha256').update(archive).digest('hex');
      const cacheDir = path.join(root, 'url-cache');
      const stages: string[] = [];
      const captioner = await loadCaptioner(`${base}/weights.tgz#sha256=${sha256}`, { cacheDir, onProgress: (p) => stages.push(p.stage) });
      expect(stages).toContain('download');
      expect((await captioner.caption(image))[0]!.caption).toBeTypeOf('string');
      captioner.dispose();
      const again: string[] = [];
      (await loadCaptioner(`${base}/weights.tgz`, { sha256, cacheDir, onProgress: (p) => again.push(p.stage) })).dispose();
      expect(again).not.toContain('download');
      await expect(loadCaptioner(`${base}/weights.tgz`, { sha256: '0'.repeat(64), cacheDir })).rejects.toThrow(/checksum mismatch/);
      await expect(loadCaptioner(`${base}/weights.tgz`, { cacheDir })).rejects.toThrow(/needs its sha256/);
    });
  });
});
