import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { useBackend } from '@s2cpnet/core/testing';
import { main } from '../main';
import { sharedPath } from '../../../../scripts/shared-dir';

// The released checkpoint (weights/ucm-mobilenet, a workspace package) captions real UC Merced TIFFs through the
// public command, addressed by its npm name. The TIFFs and their captions come from ../shared (test data only).
const repo = path.resolve(__dirname, '../../../..');
const tifDir = sharedPath('testdata/ucm-tif') ?? '';
const release = path.join(repo, 'weights/ucm-mobilenet');
let work = '';

beforeAll(async () => {
  await useBackend('wasm');
  work = mkdtempSync(path.join(os.tmpdir(), 's2c-release-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function run(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), isTTY: false, cwd: repo });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

describe('@s2cpnet/weights-ucm-mobilenet', () => {
  it('is a package under 30 MB with its vocabulary, noun classes, config, command and licences', () => {
    const pkg = JSON.parse(readFileSync(path.join(release, 'package.json'), 'utf8'));
    expect(pkg.name).toBe('@s2cpnet/weights-ucm-mobilenet');
    const dir = path.join(release, pkg.s2cpnet.checkpoint);
    for (const file of ['checkpoint.json', 'vocabulary.json', 'nouns.json', 'weights.json', 'weights.bin', 'training-summary.json']) {
      expect(existsSync(path.join(dir, file)), file).toBe(true);
    }
    expect(readFileSync(path.join(release, 'README.md'), 'utf8')).toMatch(/s2cpnet train --config configs\/ucm\/mobilenet-s2cpnet\.json/);
    expect(readFileSync(path.join(release, 'LICENSES.md'), 'utf8')).toMatch(/Apache License 2\.0[\s\S]*Qu et al/);
    const bytes = ['weights.bin', 'weights.json', 'vocabulary.json', 'nouns.json', 'checkpoint.json', 'training-summary.json']
      .map((f) => readFileSync(path.join(dir, f)).length)
      .reduce((a, b) => a + b, 0);
    expect(bytes).toBeLessThan(30 * 2 ** 20);
    const checkpoint = JSON.parse(readFileSync(path.join(dir, 'checkpoint.json'), 'utf8'));
    expect(checkpoint.config.encoder.type).toBe('mobilenet-v1');
    expect(checkpoint.files.optimizer).toBeUndefined();
  });

  it.skipIf(tifDir === '')('captions real UC Merced TIFFs sensibly (s2cpnet caption and evaluate by package name)', async () => {
    const files = ['156.tif', '216.tif', '1056.tif', '1327.tif', '1610.tif'].map((f) => path.join(tifDir, f));
    const out = path.join(work, 'captions.json');
    const captioned = await run(['caption', '--checkpoint', '@s2cpnet/weights-ucm-mobilenet', ...files, '--out', out]);
    expect(captioned.code, captioned.stderr).toBe(0);
    const rows = JSON.parse(readFileSync(out, 'utf8')) as Array<{ file: string; caption: string }>;
    const byName = new Map(rows.map((r) => [path.basename(r.file), r.caption]));
    // The scene's defining noun, as every reference caption of these images uses it.
    expect(byName.get('156.tif')).toMatch(/airplane|plane/);
    expect(byName.get('216.tif')).toMatch(/baseball/);
    expect(byName.get('1056.tif')).toMatch(/boat|harbor/);
    expect(byName.get('1327.tif')).toMatch(/mobile home/);
    expect(byName.get('1610.tif')).toMatch(/river/);

    const scored = await run(['evaluate', '--checkpoint', '@s2cpnet/weights-ucm-mobilenet', '--annotations', path.join(tifDir, 'dataset.json'), '--images', tifDir, '--split', 'train', '--beam', '3', '--out', work, '--json']);
    expect(scored.code, scored.stderr).toBe(0);
    const corpus = JSON.parse(scored.stdout) as Record<string, number>;
    expect(corpus['Bleu_1']).toBeGreaterThan(0.6);
    expect(corpus['CIDEr']).toBeGreaterThan(1.5);
  }, 300_000);

  it.skipIf(tifDir === '')('its ONNX export (what prepack writes) captions those TIFFs exactly as the checkpoint does', async () => {
    const pkg = JSON.parse(readFileSync(path.join(release, 'package.json'), 'utf8'));
    expect(pkg.files).toContain('onnx');
    const exportCommand = String(pkg.scripts.prepack).split(' ');
    expect(exportCommand.slice(0, 2)).toEqual(['s2cpnet', 'export']);
    // the package's own command, run on the package by name, into a temp folder
    const args = exportCommand.slice(1).map((a, i, all) => (all[i - 1] === '--checkpoint' ? '@s2cpnet/weights-ucm-mobilenet' : all[i - 1] === '--out' ? path.join(work, 'onnx') : a));
    const exported = await run(args);
    expect(exported.code, exported.stderr).toBe(0);
    const manifest = JSON.parse(readFileSync(path.join(work, 'onnx', 'manifest.json'), 'utf8'));
    expect(manifest.weights).toBe('uint8');
    const files = ['156.tif', '216.tif', '1056.tif', '1327.tif', '1610.tif'].map((f) => path.join(tifDir, f));
    const viaTfjs = await run(['caption', '--checkpoint', '@s2cpnet/weights-ucm-mobilenet', ...files, '--format', 'json']);
    const viaOnnx = await run(['caption', '--runtime', 'onnx', '--checkpoint', path.join(work, 'onnx'), ...files, '--format', 'json']);
    expect(viaOnnx.code, viaOnnx.stderr).toBe(0);
    const captions = (out: string) => (JSON.parse(out) as Array<{ caption: string; categories: { name: string }[] }>).map((r) => [r.caption, r.categories.map((c) => c.name)]);
    expect(captions(viaOnnx.stdout)).toEqual(captions(viaTfjs.stdout));
  }, 300_000);
});
