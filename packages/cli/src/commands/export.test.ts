import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { useBackend } from '@s2cpnet/core/testing';
import { Vocabulary } from '@s2cpnet/data';
import { buildS2CPNet, loadCheckpoint, presetConfig, saveCheckpoint, type S2CPNetConfig, type TrainingState } from '@s2cpnet/model';
import { runCli } from './cli.test-util';
import { maskSizeFor } from './caption';

const SECRET = 'TOP-SECRET-CONTENT-2718';
let root = '';

const run = (args: string[]) => runCli(args, root);

/** A tiny model whose config names pretrained encoder weights by an absolute path, as a trainer's config does. */
function tinyConfig(): S2CPNetConfig {
  const c = presetConfig('s2cpnet');
  return {
    ...c,
    name: 'tiny',
    encoder: { type: 'resnet50', inputSize: 64, grid: 'native', blocksPerStage: [1, 1, 1, 1], baseWidth: 4, freeze: 'none' },
    encoderWeights: { path: path.join(os.tmpdir(), 'trainer-machine', 'weights', 'mobilenet_v1_0.75_224') },
    spatialEnhancer: { outputChannels: 32 },
    fusion: { ...c.fusion, dim: 32, heads: 4, units: 1 },
    categoryHead: { type: 'multi-label', dim: 32, numHeads: 4 },
    captionDecoder: { ...c.captionDecoder, dim: 32, numLayers: 1, numHeads: 4 },
  };
}

function vocabulary(): Vocabulary {
  return Vocabulary.fromJSON({
    format: 's2cpnet-vocabulary',
    version: 1,
    settings: { minWordFreq: 1, maxCaptionWords: 25, lowerCase: true, countedOn: 'train' },
    words: ['<pad>', '<start>', '<end>', '<unk>', 'a', 'plane', 'river', 'tree'],
  } as never);
}

function training(epoch: number): TrainingState {
  return {
    epoch,
    batchInEpoch: 0,
    step: epoch * 10,
    learningRate: 1e-3,
    schedule: { best: 0.5, bestEpoch: epoch, epochsSinceImprovement: 0, epochsSinceDecay: 0, options: { factor: 0.5, patience: 2, stopPatience: 5 } },
    // What a trainer records: absolute folders of its machine, nested at any depth.
    run: { seed: epoch, data: path.join(root, 'prepared'), out: path.join(root, 'run'), config: tinyConfig(), windows: 'C:\\Users\\trainer\\data', list: [path.join(root, 'x.json')] },
    history: [{ epoch, trainLoss: 1 / epoch, checkpoint: path.join(root, 'run', `epoch-${epoch}`) }],
    finished: false,
  };
}

async function writeTiny(dir: string, seed: number, epoch: number): Promise<void> {
  const model = buildS2CPNet({ ...tinyConfig(), seed }, { vocabSize: 8, numClasses: 3 });
  await saveCheckpoint(dir, { model, vocabulary: vocabulary(), classNames: ['plane', 'river', 'tree'], training: training(epoch), masks: { provider: 'felzenszwalb', precomputed: false, workingSize: 224 } });
  model.dispose();
}

beforeAll(async () => {
  await useBackend('cpu');
  root = mkdtempSync(path.join(os.tmpdir(), 's2c-export-'));
  await writeTiny(path.join(root, 'run', 'epoch-1'), 1, 1);
  await writeTiny(path.join(root, 'run', 'epoch-2'), 2, 2);
  await fsp.writeFile(path.join(root, 'secret.json'), JSON.stringify({ secret: SECRET }));
}, 120_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Every string in a JSON value, with its JSON path. */
function strings(value: unknown, at = '$'): Array<{ at: string; text: string }> {
  if (typeof value === 'string') return [{ at, text: value }];
  if (Array.isArray(value)) return value.flatMap((v, i) => strings(v, `${at}[${i}]`));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => strings(v, `${at}.${k}`));
  return [];
}

const ABSOLUTE = /^(\/|\\\\|[A-Za-z]:[\\/])/;

/** Absolute paths found in the files of `dir`: JSON strings that start like one, and any mention of this machine's folders. */
async function absolutePathsIn(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const name of await fsp.readdir(dir)) {
    const file = path.join(dir, name);
    const text = (await fsp.readFile(file)).toString('latin1');
    for (const local of [root, os.tmpdir(), os.homedir()]) if (text.includes(local)) found.push(`${name}: mentions ${local}`);
    if (name.endsWith('.json')) {
      for (const { at, text: s } of strings(JSON.parse(text))) if (ABSOLUTE.test(s)) found.push(`${name} ${at}: ${s}`);
    }
  }
  return found;
}

describe('s2cpnet export', () => {
  it('writes no absolute path into any file, averaging checkpoints given by absolute paths', async () => {
    const out = path.join(root, 'exported-mean');
    const r = await run(['export', '--checkpoint', path.join(root, 'run', 'epoch-1'), '--checkpoint', path.join(root, 'run', 'epoch-2'), '--out', out, '--json']);
    expect(r.code, r.err).toBe(0);
    const files = await fsp.readdir(out);
    expect(files).toEqual(expect.arrayContaining(['checkpoint.json', 'averaged.json', 'training-summary.json', 'weights.json', 'weights.bin']));
    expect(await absolutePathsIn(out)).toEqual([]);
    // Provenance survives as labels: the sources by relative name, the trainer's folders by base name.
    const averaged = JSON.parse(await fsp.readFile(path.join(out, 'averaged.json'), 'utf8'));
    expect(averaged.averageOf).toEqual(['run/epoch-1', 'run/epoch-2']);
    const summary = JSON.parse(await fsp.readFile(path.join(out, 'training-summary.json'), 'utf8'));
    expect(summary.run.data).toBe('prepared');
    expect(summary.run.config.encoderWeights.path).toBe('mobilenet_v1_0.75_224');
    // The exported checkpoint needs no pretrained weights: its config no longer names them, and it loads.
    const checkpoint = JSON.parse(await fsp.readFile(path.join(out, 'checkpoint.json'), 'utf8'));
    expect(checkpoint.config.encoderWeights ?? null).toBeNull();
    const loaded = await loadCheckpoint(out);
    expect(loaded.classNames).toEqual(['plane', 'river', 'tree']);
    // the training data's mask settings are kept: captioning with the export makes masks at the same size
    expect(loaded.masks).toEqual({ provider: 'felzenszwalb', precomputed: false, workingSize: 224 });
    expect(await maskSizeFor(loaded)).toBe(224);
    expect(await maskSizeFor({ ...loaded, masks: { provider: 'felzenszwalb', precomputed: false, workingSize: 96 } })).toBe(96);
    expect(await maskSizeFor({ ...loaded, masks: { provider: 'felzenszwalb', precomputed: false, workingSize: 96 } }, '64')).toBe(64);
    loaded.model.dispose();
  });

  it('writes no absolute path for a single quantised checkpoint given by a relative path either', async () => {
    const out = path.join(root, 'exported-one');
    const r = await run(['export', '--checkpoint', 'run/epoch-2', '--out', 'exported-one', '--quantize', 'uint8']);
    expect(r.code, r.err).toBe(0);
    expect(await absolutePathsIn(out)).toEqual([]);
  });

  it('accepts a weights package folder (package.json naming its checkpoint folder)', async () => {
    const pkg = path.join(root, 'weights-pkg');
    await fsp.mkdir(pkg, { recursive: true });
    await fsp.cp(path.join(root, 'run', 'epoch-1'), path.join(pkg, 'checkpoint'), { recursive: true });
    await fsp.writeFile(path.join(pkg, 'package.json'), JSON.stringify({ name: '@me/weights', s2cpnet: { checkpoint: 'checkpoint' } }));
    const r = await run(['export', '--checkpoint', 'weights-pkg', '--out', 'exported-pkg']);
    expect(r.code, r.err).toBe(0);
  });

  it('refuses a checkpoint whose files point outside its folder with exit code 3, naming the entry and printing no file', async () => {
    const evil = path.join(root, 'evil', 'ckpt');
    await fsp.cp(path.join(root, 'run', 'epoch-1'), evil, { recursive: true });
    const json = JSON.parse(await fsp.readFile(path.join(evil, 'checkpoint.json'), 'utf8'));
    json.files.vocabulary = '../../secret.json';
    await fsp.writeFile(path.join(evil, 'checkpoint.json'), JSON.stringify(json));
    const r = await run(['export', '--checkpoint', 'evil/ckpt', '--out', 'never']);
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/\$\.files\.vocabulary\b.*outside the checkpoint folder/);
    expect(r.err).not.toContain(SECRET);

    await fsp.writeFile(path.join(evil, 'checkpoint.json'), `${SECRET} {`);
    const broken = await run(['export', '--checkpoint', 'evil/ckpt', '--out', 'never']);
    expect(broken.code).toBe(3);
    expect(broken.err).toMatch(/not valid JSON/);
    expect(broken.err).not.toContain(SECRET);
  });
});
