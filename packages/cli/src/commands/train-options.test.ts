import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp, existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSyntheticAerialSet } from '@s2cpnet/data';
import { presetConfig } from '@s2cpnet/model';
import { runCli, tinyConfigJson } from './cli.test-util';
import { isPretrainedSizeBackbone } from './train';
import { demoConfig } from './demo';

// `s2cpnet train`: a full-size backbone without weights, an empty val split, and --init-from (fine-tuning).

let root = '';
const run = (args: string[]) => runCli(args, root);
const TINY = ['--batch-size', '8', '--epochs', '1', '--lr', '0.002', '--val-max', '2'];

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-cli-train-options-'));
  await fsp.writeFile(path.join(root, 'tiny.json'), JSON.stringify(tinyConfigJson()));
  const set = await writeSyntheticAerialSet(path.join(root, 'synthetic'), { seed: 3, count: 30, size: 64 });
  const prepare = (out: string, minFreq: string) =>
    run(['prepare', '--annotations', set.datasetFile, '--images', set.imagesDir, '--masks', set.masksDir, '--out', out, '--size', '64', '--min-word-freq', minFreq, '--min-noun-freq', minFreq]);
  expect((await prepare('small', '8')).code).toBe(0);
  expect((await prepare('large', '1')).code).toBe(0);
  const trainOnly = await writeSyntheticAerialSet(path.join(root, 'train-only'), { seed: 4, count: 12, size: 64, splits: { train: 1, val: 0, test: 0 } });
  const prep = await run(['prepare', '--annotations', trainOnly.datasetFile, '--images', trainOnly.imagesDir, '--masks', trainOnly.masksDir, '--out', 'no-val', '--size', '64', '--min-word-freq', '1']);
  expect(prep.code).toBe(0);
}, 180_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('s2cpnet train: backbones without pretrained weights', () => {
  it('the full-size backbones of the presets count as pretrained-size; reduced ones (tests, demo) do not', () => {
    for (const name of ['s2cpnet', 'baseline1', 'lite']) expect(isPretrainedSizeBackbone(presetConfig(name).encoder), name).toBe(true);
    expect(isPretrainedSizeBackbone({ type: 'resnet50', blocksPerStage: [3, 4, 6, 3], baseWidth: 64 })).toBe(true);
    expect(isPretrainedSizeBackbone(tinyConfigJson().encoder)).toBe(false);
    expect(isPretrainedSizeBackbone(demoConfig().encoder)).toBe(false);
    expect(isPretrainedSizeBackbone({ type: 'resnet50', baseWidth: 32 })).toBe(false);
  });

  it.each([['lite'], ['s2cpnet']])('--preset %s without --encoder-weights is refused (exit 2) before any work, naming the way out', async (preset) => {
    const result = await run(['train', '--preset', preset, '--data', 'small', '--out', `refused-${preset}`]);
    expect(result.code).toBe(2);
    expect(result.err).toMatch(/--encoder-weights: the .* uses a full-size .* backbone .*no ImageNet weights were given/);
    expect(result.err).toMatch(/--allow-random-backbone/);
    expect(result.err).toMatch(/@s2cpnet\/encoder README/);
    expect(existsSync(path.join(root, `refused-${preset}`))).toBe(false);
  });

  it('a config whose reduced backbone is trained from scratch on purpose needs no flag', async () => {
    const result = await run(['train', '--config', 'tiny.json', '--data', 'small', '--out', 'base', ...TINY]);
    expect(result.code).toBe(0);
    expect(result.err).not.toMatch(/encoder-weights/);
  }, 120_000);
});

describe('s2cpnet train: the val split', () => {
  it('prepared data without val images is an error before the first epoch (exit 3)', async () => {
    const result = await run(['train', '--config', 'tiny.json', '--data', 'no-val', '--out', 'no-val-run', ...TINY]);
    expect(result.code).toBe(3);
    expect(result.err).toMatch(/no val images/);
    expect(result.err).not.toMatch(/epoch 1/);
    expect(existsSync(path.join(root, 'no-val-run', 'last'))).toBe(false);
  });
});

describe('s2cpnet train --init-from', () => {
  it('refuses --preset/--config with it, and --extend-vocabulary without it (exit 2)', async () => {
    expect((await run(['train', '--init-from', 'base/last', '--preset', 'lite', '--data', 'small'])).err).toMatch(/--init-from: .*leave out --preset and --config/);
    const alone = await run(['train', '--config', 'tiny.json', '--extend-vocabulary', '--data', 'small']);
    expect(alone.code).toBe(2);
    expect(alone.err).toMatch(/--extend-vocabulary: only applies with --init-from/);
  });

  it('fine-tunes on data with the same vocabulary', async () => {
    const result = await run(['train', '--init-from', 'base/last', '--data', 'small', '--out', 'tuned', ...TINY, '--json']);
    expect(result.code).toBe(0);
    expect(result.err).toMatch(/initialised from .*base.last/);
    expect(JSON.parse(result.out).epochs).toBe(1);
  }, 120_000);

  it('--trainable-from N --encoder-lr X: partial fine-tuning recorded in the config, the frozen part cached; a block out of range is exit 2', async () => {
    const result = await run(['train', '--init-from', 'base/last', '--data', 'small', '--out', 'partial', ...TINY, '--trainable-from', '4', '--encoder-lr', '0', '--json']);
    expect(result.code, result.err).toBe(0);
    const saved = JSON.parse(await fsp.readFile(path.join(root, 'partial', 'last', 'checkpoint.json'), 'utf8'));
    expect(saved.config.encoder).toMatchObject({ freeze: 'none', trainableFrom: 4 });
    expect(existsSync(path.join(root, 'partial', 'features'))).toBe(true);
    const training = JSON.parse(await fsp.readFile(path.join(root, 'partial', 'last', 'training.json'), 'utf8'));
    expect(training.run.encoderLearningRate).toBe(0);
    const bad = await run(['train', '--init-from', 'base/last', '--data', 'small', '--out', 'partial-bad', ...TINY, '--trainable-from', '5']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/\$\.encoder\.trainableFrom: this backbone has 4 blocks \(1\.\.4\), found 5/);
  }, 120_000);

  it('new words: refused with how many and a few (exit 2); --extend-vocabulary adds them', async () => {
    const refused = await run(['train', '--init-from', 'base/last', '--data', 'large', '--out', 'tuned-refused', ...TINY]);
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/--init-from: the training data in .*large has \d+ words? its vocabulary lacks \("[^"]+"/);
    expect(refused.err).toMatch(/--extend-vocabulary/);

    const extended = await run(['train', '--init-from', 'base/last', '--data', 'large', '--out', 'tuned-extended', '--extend-vocabulary', ...TINY]);
    expect(extended.code).toBe(0);
    expect(extended.err).toMatch(/extended with \d+ new words and \d+ new noun classes, their rows random/);
    const checkpoint = JSON.parse(await fsp.readFile(path.join(root, 'tuned-extended', 'last', 'checkpoint.json'), 'utf8')) as { config: { name: string } };
    expect(checkpoint.config.name).toBe('tiny');
  }, 180_000);
});
