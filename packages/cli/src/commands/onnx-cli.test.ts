/**
 * The ONNX commands through `main`: `export --format onnx`, `caption|evaluate --runtime onnx|auto` (the same
 * results as tfjs), `train --feature-runtime onnx`, and the errors of the runtime and SAM flags.
 */
import { promises as fsp, existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSyntheticAerialSet } from '@s2cpnet/data';
import { initBackend } from '../backend';
import { runCli, tinyConfigJson } from './cli.test-util';
import { saveTinyCheckpoint } from '../../../model/src/tiny-checkpoint.test-util';
import { BLOCK_TOKEN, buildDecoder, buildEncoder } from '../../../runtime-onnx/src/sam-models.test-util';

let root = '';
let set: Awaited<ReturnType<typeof writeSyntheticAerialSet>>;
const run = (args: string[]) => runCli(args, root);

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-onnx-cli-'));
  await initBackend({ backend: 'cpu' });
  set = await writeSyntheticAerialSet(path.join(root, 'synthetic'), { seed: 5, count: 16, size: 64 });
  await saveTinyCheckpoint(path.join(root, 'ck'), { seed: 4, words: 'a road river tree house car green field many some beside'.split(' ') });
}, 120_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('s2cpnet export --format onnx and --runtime onnx', () => {
  it('exports, and caption --runtime onnx (and auto, finding ck/onnx) gives the tfjs captions', async () => {
    const exported = await run(['export', '--checkpoint', 'ck', '--format', 'onnx', '--out', 'ck/onnx', '--json']);
    expect(exported.code).toBe(0);
    const summary = JSON.parse(exported.out);
    expect(summary.format).toBe('onnx');
    expect(Object.keys(summary.files).sort()).toEqual(['decoder-step.onnx', 'encoder.onnx', 'nouns.json', 'vocabulary.json']);
    for (const name of ['encoder.onnx', 'decoder-step.onnx', 'manifest.json']) expect(existsSync(path.join(root, 'ck', 'onnx', name))).toBe(true);
    expect(exported.err).toMatch(/export: encoder graph: \d+ nodes/);

    const common = ['--checkpoint', 'ck', set.imagesDir, '--masks', set.masksDir, '--beam', '3'];
    const tfjs = await run(['caption', ...common, '--out', 'tfjs.json']);
    expect(tfjs.code).toBe(0);
    const onnx = await run(['caption', ...common, '--runtime', 'onnx', '--out', 'onnx.json']);
    expect(onnx.code).toBe(0);
    expect(onnx.err).toMatch(/ONNX export loaded \(cpu\)/);
    const auto = await run(['caption', ...common, '--runtime', 'auto', '--out', 'auto.json']);
    expect(auto.err).toMatch(/ONNX export loaded/);
    const read = async (file: string) => JSON.parse(await fsp.readFile(path.join(root, file), 'utf8')) as { file: string; caption: string; categories: { name: string }[] }[];
    const [a, b, c] = [await read('tfjs.json'), await read('onnx.json'), await read('auto.json')];
    expect(a.length).toBe(16);
    expect(b.map((r) => [r.file, r.caption, r.categories.map((k) => k.name)])).toEqual(a.map((r) => [r.file, r.caption, r.categories.map((k) => k.name)]));
    expect(c.map((r) => r.caption)).toEqual(a.map((r) => r.caption));

    // an 8-bit export: about a third of the size, loads and captions every image
    const small = await run(['export', '--checkpoint', 'ck', '--format', 'onnx', '--quantize', 'uint8', '--out', 'ck-8bit', '--json']);
    expect(small.code).toBe(0);
    const smallSummary = JSON.parse(small.out);
    expect(smallSummary.weights).toBe('uint8');
    expect(smallSummary.bytes).toBeLessThan(0.5 * summary.bytes);
    const q = await run(['caption', '--checkpoint', 'ck-8bit', set.imagesDir, '--masks', set.masksDir, '--runtime', 'onnx', '--format', 'json']);
    expect(q.code).toBe(0);
    expect(JSON.parse(q.out)).toHaveLength(16);

    // evaluate: the same corpus scores from both runtimes
    const evalArgs = ['--checkpoint', 'ck', '--annotations', set.datasetFile, '--images', set.imagesDir, '--masks', set.masksDir, '--split', 'train', '--json'];
    const scoredTfjs = await run(['evaluate', ...evalArgs]);
    const scoredOnnx = await run(['evaluate', ...evalArgs, '--runtime', 'onnx', '--out', 'eval-onnx']);
    expect(scoredOnnx.code).toBe(0);
    expect(scoredOnnx.err).toMatch(/runtime onnxruntime-cpu/);
    expect(JSON.parse(scoredOnnx.out)).toEqual(JSON.parse(scoredTfjs.out));
    const scores = JSON.parse(await fsp.readFile(path.join(root, 'eval-onnx', 'scores_train.json'), 'utf8'));
    expect(scores.runtime).toBe('onnx');
  });

  it('auto falls back to tfjs where there is no export', async () => {
    await saveTinyCheckpoint(path.join(root, 'bare'), { seed: 6 });
    const r = await run(['caption', '--checkpoint', 'bare', set.imagesDir, '--masks', set.masksDir, '--runtime', 'auto', '--format', 'json']);
    expect(r.code).toBe(0);
    expect(r.err).not.toMatch(/ONNX export loaded/);
    expect(JSON.parse(r.out)).toHaveLength(16);
  });

  it('names bad runtime, provider, export and SAM flags', async () => {
    const images = [set.imagesDir, '--masks', set.masksDir];
    expect((await run(['caption', '--checkpoint', 'ck', ...images, '--runtime', 'torch'])).err).toMatch(/--runtime: expected one of tfjs, onnx, auto, found "torch"/);
    expect((await run(['caption', '--checkpoint', 'ck', ...images, '--ort-provider', 'cuda'])).err).toMatch(/--ort-provider: only used with --runtime onnx or auto/);
    expect((await run(['caption', '--checkpoint', 'ck', ...images, '--runtime', 'onnx', '--ort-provider', 'tpu'])).err).toMatch(/--ort-provider: expected cpu, cuda or webgpu, found "tpu"/);
    const noExport = await run(['caption', '--checkpoint', 'bare', ...images, '--runtime', 'onnx']);
    expect(noExport.code).not.toBe(0);
    expect(noExport.err).toMatch(/no ONNX export found .*s2cpnet export --checkpoint bare --format onnx/);
    expect((await run(['export', '--checkpoint', 'ck', '--format', 'onnx', '--include', 'x.md', '--out', 'q'])).err).toMatch(/--include: only for --format tfjs/);
    expect((await run(['export', '--checkpoint', 'ck', '--format', 'tflite', '--out', 'q'])).err).toMatch(/--format: expected tfjs or onnx, found "tflite"/);
    expect((await run(['caption', '--checkpoint', 'ck', set.imagesDir, '--masks', 'sam'])).err).toMatch(/--masks: sam needs --sam-encoder FILE\.onnx and --sam-decoder FILE\.onnx/);
    expect((await run(['caption', '--checkpoint', 'ck', ...images, '--sam-encoder', 'e.onnx'])).err).toMatch(/--sam-encoder: only used with --masks sam/);
    const prep = await run(['prepare', '--annotations', set.datasetFile, '--images', set.imagesDir, '--out', 'p', '--masks', 'sam', '--sam-encoder', 'missing-e.onnx', '--sam-decoder', 'missing-d.onnx']);
    expect(prep.code).not.toBe(0);
    expect(prep.err).toMatch(/missing-e\.onnx/);
    expect(existsSync(path.join(root, 'p', 'manifest.json'))).toBe(false);
  });
});

describe('s2cpnet train --feature-runtime', () => {
  it('computes the frozen backbone\'s cached features with ONNX Runtime, training as with tfjs features', async () => {
    const prep = await run(['prepare', '--annotations', set.datasetFile, '--images', set.imagesDir, '--masks', set.masksDir, '--out', 'prepared', '--size', '64', '--min-word-freq', '1']);
    expect(prep.code).toBe(0);
    const frozen = { ...tinyConfigJson(), encoder: { ...tinyConfigJson().encoder, freeze: 'all' } };
    await fsp.writeFile(path.join(root, 'frozen.json'), JSON.stringify(frozen));
    const args = ['train', '--config', 'frozen.json', '--data', 'prepared', '--batch-size', '8', '--epochs', '1', '--lr', '0.002', '--val-max', '3', '--allow-random-backbone', '--json'];
    const viaOnnx = await run([...args, '--out', 'run-onnx', '--feature-runtime', 'onnx']);
    expect(viaOnnx.code).toBe(0);
    expect(viaOnnx.err).toMatch(/backbone features for the cache are computed with onnxruntime-cpu/);
    const viaTfjs = await run([...args, '--out', 'run-tfjs', '--feature-runtime', 'tfjs']);
    expect(viaTfjs.code).toBe(0);
    expect(viaTfjs.err).not.toMatch(/computed with onnxruntime/);
    expect(existsSync(path.join(root, 'run-onnx', 'features'))).toBe(true);
    const loss = async (dir: string) => JSON.parse((await fsp.readFile(path.join(root, dir, 'log.jsonl'), 'utf8')).trim().split('\n')[0]!).trainLoss as number;
    const [a, b] = [await loss('run-onnx'), await loss('run-tfjs')];
    expect(Math.abs(a - b)).toBeLessThan(1e-3 * Math.max(1, Math.abs(b)));
    expect((await run([...args, '--out', 'run-x', '--feature-runtime', 'gpu'])).err).toMatch(/--feature-runtime: expected tfjs, onnx or auto, found "gpu"/);
  });
});

describe('--masks sam', () => {
  it('prepare and caption compute masks with a SAM-class ONNX pair (tiny models of its signature)', async () => {
    await fsp.writeFile(path.join(root, 'sam-encoder.onnx'), buildEncoder().serialize());
    await fsp.writeFile(path.join(root, 'sam-decoder.onnx'), buildDecoder({ tokens: [BLOCK_TOKEN] }).serialize());
    const sam = ['--masks', 'sam', '--sam-encoder', 'sam-encoder.onnx', '--sam-decoder', 'sam-decoder.onnx', '--sam-points', '4'];
    const prep = await run(['prepare', '--annotations', set.datasetFile, '--images', set.imagesDir, '--out', 'prepared-sam', '--size', '64', '--min-word-freq', '1', ...sam, '--json']);
    expect(prep.code).toBe(0);
    const manifest = JSON.parse(prep.out);
    expect(manifest.settings.masks).toMatchObject({ provider: 'sam', precomputed: false, workingSize: 64 });
    const maskFiles = await fsp.readdir(path.join(root, 'prepared-sam', manifest.files.masks));
    expect(maskFiles.length).toBe(16);
    // the tiny checkpoint was "trained" on Felzenszwalb masks: captioning with SAM masks works and says so
    const captioned = await run(['caption', '--checkpoint', 'ck', set.imagesDir, ...sam, '--no-cache', '--format', 'json']);
    expect(captioned.code).toBe(0);
    expect(JSON.parse(captioned.out)).toHaveLength(16);
    expect(captioned.err).toMatch(/training masks came from "felzenszwalb" but captioning computes them with "sam"/);
  });
});
