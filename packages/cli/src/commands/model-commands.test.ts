import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp, existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSyntheticAerialSet } from '@s2cpnet/data';
import { runCli, tinyConfigJson } from './cli.test-util';

let root = '';
let set: Awaited<ReturnType<typeof writeSyntheticAerialSet>>;

const run = (args: string[]) => runCli(args, root);


beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-cli-model-'));
  set = await writeSyntheticAerialSet(path.join(root, 'synthetic'), { seed: 3, count: 30, size: 64 });
  await fsp.writeFile(path.join(root, 'tiny.json'), JSON.stringify(tinyConfigJson()));
}, 60_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('s2cpnet presets', () => {
  it('lists the ten presets as JSON', async () => {
    const r = await run(['presets', '--json', '--no-params']);
    expect(r.code).toBe(0);
    const json = JSON.parse(r.out);
    expect(json.presets.map((p: { name: string }) => p.name)).toEqual(['baseline1', 'baseline2', 'model2a', 'model2b', 'model2', 'model3', 'model4a', 'model4b', 's2cpnet', 'lite']);
  });
});

describe('s2cpnet train / evaluate / caption', () => {
  it('rejects bad train arguments with usage errors', async () => {
    expect((await run(['train', '--preset', 's2cpnet'])).err).toMatch(/--data: required/);
    const unknown = await run(['train', '--preset', 'nope', '--data', 'x']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/unknown preset "nope"; expected one of: baseline1/);
    await fsp.writeFile(path.join(root, 'broken.json'), '{"schemaVersion": 1,');
    const broken = await run(['train', '--config', 'broken.json', '--data', 'x']);
    expect(broken.code).toBe(3);
    expect(broken.err).toMatch(/broken\.json: not valid JSON/);
    await fsp.writeFile(path.join(root, 'wrong.json'), JSON.stringify({ ...tinyConfigJson(), seed: 'one' }));
    const wrong = await run(['train', '--config', 'wrong.json', '--data', 'x']);
    expect(wrong.code).toBe(2);
    expect(wrong.err).toMatch(/wrong\.json: \$\.seed: expected an integer, found "one"/);
  });

  it('prepares, trains, evaluates and captions end to end; bad images and checkpoints give clear errors', async () => {
    const prep = await run(['prepare', '--annotations', set.datasetFile, '--images', set.imagesDir, '--masks', set.masksDir, '--out', 'prepared', '--size', '64', '--min-word-freq', '1']);
    expect(prep.code).toBe(0);
    const trained = await run(['train', '--config', 'tiny.json', '--data', 'prepared', '--out', 'run', '--batch-size', '8', '--epochs', '1', '--lr', '0.002', '--val-max', '3', '--json']);
    expect(trained.err).toMatch(/train: backend wasm/);
    expect(trained.code).toBe(0);
    const summary = JSON.parse(trained.out);
    expect(summary.epochs).toBe(1);
    expect(existsSync(path.join(root, 'run', 'best', 'weights.bin'))).toBe(true);

    const evaluated = await run(['evaluate', '--checkpoint', 'run/best', '--annotations', set.datasetFile, '--images', set.imagesDir, '--masks', set.masksDir, '--split', 'test', '--beam', '2', '--out', 'eval', '--json']);
    expect(evaluated.code).toBe(0);
    const corpus = JSON.parse(evaluated.out);
    expect(Object.keys(corpus)).toEqual(['Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'METEOR', 'ROUGE_L', 'CIDEr', 'Sm']);
    const predictions = JSON.parse(await fsp.readFile(path.join(root, 'eval', 'predictions_test.json'), 'utf8'));
    expect(predictions.length).toBeGreaterThan(0);
    expect(typeof predictions[0].caption).toBe('string');

    const captioned = await run(['caption', '--checkpoint', 'run/best', set.imagesDir, '--beam', '2', '--out', 'captions.csv']);
    expect(captioned.code).toBe(0);
    const csv = (await fsp.readFile(path.join(root, 'captions.csv'), 'utf8')).trim().split('\n');
    expect(csv[0]).toBe('file,caption,categories');
    expect(csv).toHaveLength(31);

    await fsp.writeFile(path.join(root, 'corrupt.png'), 'not a png');
    const corrupt = await run(['caption', '--checkpoint', 'run/best', 'corrupt.png']);
    expect(corrupt.code).toBe(3);
    expect(corrupt.err).toContain('corrupt.png');

    const missing = await run(['caption', '--checkpoint', 'no-such-run', path.join(set.imagesDir)]);
    expect(missing.code).toBe(3);
    expect(missing.err).toMatch(/checkpoint "no-such-run"/);

    await fsp.mkdir(path.join(root, 'broken-ckpt'), { recursive: true });
    await fsp.copyFile(path.join(root, 'run', 'best', 'checkpoint.json'), path.join(root, 'broken-ckpt', 'checkpoint.json'));
    const broken = await run(['caption', '--checkpoint', 'broken-ckpt', path.join(set.imagesDir)]);
    expect(broken.code).toBe(3);
    expect(broken.err).toMatch(/broken-ckpt.*vocabulary/);
  });

  it('train --keep-epochs, export (copy, uint8, average of epochs) and evaluate --length-penalty', async () => {
    expect((await run(['prepare', '--annotations', set.datasetFile, '--images', set.imagesDir, '--masks', set.masksDir, '--out', 'prep-x', '--size', '64', '--min-word-freq', '1'])).code).toBe(0);
    const trained = await run(['train', '--config', 'tiny.json', '--data', 'prep-x', '--out', 'run-x', '--batch-size', '8', '--epochs', '2', '--lr', '0.002', '--val-max', '3', '--keep-epochs']);
    expect(trained.code).toBe(0);
    for (const n of [1, 2]) expect(existsSync(path.join(root, 'run-x', `epoch-${n}`, 'weights.bin'))).toBe(true);

    const single = await run(['export', '--checkpoint', 'run-x/last', '--out', 'rel-single', '--json']);
    expect(single.code).toBe(0);
    expect(JSON.parse(single.out).from).toBe(path.join(root, 'run-x', 'last'));
    expect(existsSync(path.join(root, 'rel-single', 'optimizer.bin'))).toBe(false);
    expect(JSON.parse(await fsp.readFile(path.join(root, 'rel-single', 'training-summary.json'), 'utf8')).epochs).toBe(2);

    const averaged = await run(['export', '--checkpoint', 'run-x/epoch-1', '--checkpoint', 'run-x/epoch-2', '--out', 'rel-avg', '--quantize', 'uint8']);
    expect(averaged.code).toBe(0);
    expect(averaged.out).toMatch(/mean of 2 checkpoints/);
    const sources = JSON.parse(await fsp.readFile(path.join(root, 'rel-avg', 'averaged.json'), 'utf8'));
    expect(sources.averageOf).toEqual(['run-x/epoch-1', 'run-x/epoch-2']); // relative labels: no absolute path in a release
    const weights = JSON.parse(await fsp.readFile(path.join(root, 'rel-avg', 'weights.json'), 'utf8'));
    expect(weights.tensors.some((t: { dtype: string }) => t.dtype === 'uint8')).toBe(true);

    const scored = await run(['evaluate', '--checkpoint', 'rel-avg', '--annotations', set.datasetFile, '--images', set.imagesDir, '--masks', set.masksDir, '--split', 'test', '--beam', '2', '--length-penalty', '0.5', '--out', 'eval-avg', '--json']);
    expect(scored.code).toBe(0);
    expect(scored.err).toMatch(/beam 2, length penalty 0\.5/);
    expect(JSON.parse(await fsp.readFile(path.join(root, 'eval-avg', 'scores_test.json'), 'utf8')).lengthPenalty).toBe(0.5);
    const badPenalty = await run(['caption', '--checkpoint', 'rel-avg', set.imagesDir, '--length-penalty', 'long']);
    expect(badPenalty.code).toBe(2);
    expect(badPenalty.err).toMatch(/--length-penalty: expected a number, found "long"/);

    await fsp.writeFile(path.join(root, 'other.json'), JSON.stringify({ ...tinyConfigJson(), captionDecoder: { ...tinyConfigJson().captionDecoder, numLayers: 2 } }));
    expect((await run(['train', '--config', 'other.json', '--data', 'prep-x', '--out', 'run-other', '--batch-size', '8', '--epochs', '1', '--val-max', '3'])).code).toBe(0);
    const mismatch = await run(['export', '--checkpoint', 'run-x/epoch-2', '--checkpoint', 'run-other/last', '--out', 'rel-bad']);
    expect(mismatch.code).toBe(3);
    expect(mismatch.err).toMatch(/run-other[/\\]last: cannot average with .*epoch-2: the model configs differ/);
    expect(existsSync(path.join(root, 'rel-bad'))).toBe(false);
  }, 240_000);
});
