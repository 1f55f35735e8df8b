import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSyntheticAerialSet } from '@s2cpnet/data';
import { runCli, tinyConfigJson } from './cli.test-util';

// `s2cpnet train --objective scst`: self-critical fine-tuning of a cross-entropy checkpoint.

let root = '';
const run = (args: string[]) => runCli(args, root);
const TINY = ['--batch-size', '8', '--epochs', '1', '--lr', '0.002', '--val-max', '2'];

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-cli-train-scst-'));
  await fsp.writeFile(path.join(root, 'tiny.json'), JSON.stringify(tinyConfigJson()));
  const set = await writeSyntheticAerialSet(path.join(root, 'synthetic'), { seed: 3, count: 30, size: 64 });
  const prep = await run(['prepare', '--annotations', set.datasetFile, '--images', set.imagesDir, '--masks', set.masksDir, '--out', 'prepared', '--size', '64', '--min-word-freq', '1']);
  expect(prep.code).toBe(0);
  expect((await run(['train', '--config', 'tiny.json', '--data', 'prepared', '--out', 'ce', ...TINY])).code).toBe(0);
}, 180_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('s2cpnet train --objective scst', () => {
  it('fine-tunes a checkpoint on the CIDEr-D reward and logs objective "scst"', async () => {
    const r = await run(['train', '--objective', 'scst', '--init-from', 'ce/last', '--data', 'prepared', '--out', 'scst', '--scst-samples', '3', '--scst-baseline', 'greedy', '--scst-max-length', '12', ...TINY, '--json']);
    expect(r.err).toMatch(/starting from/);
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.out);
    expect(summary.objective).toBe('scst');
    expect(typeof summary.bestValCIDEr).toBe('number');
    const log = (await fsp.readFile(path.join(root, 'scst', 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ objective: 'scst', epoch: 1 });
    expect(log[0].trainReward).toBeGreaterThanOrEqual(0);
    expect(log[0].trainBaseline).toBeGreaterThanOrEqual(0);
    expect(log[0].val.CIDEr).toBeGreaterThanOrEqual(0);
    // --init is the same as --init-from
    expect((await run(['train', '--objective', 'scst', '--init', 'ce/last', '--data', 'prepared', '--out', 'scst-alias', ...TINY])).code).toBe(0);
  }, 180_000);

  it('refuses scst without a checkpoint, unknown objectives and scst flags with ce', async () => {
    const none = await run(['train', '--objective', 'scst', '--config', 'tiny.json', '--data', 'prepared', '--out', 'x', ...TINY]);
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/--objective: scst fine-tunes a cross-entropy model: give --init-from CHECKPOINT/);
    const bad = await run(['train', '--objective', 'rl', '--init-from', 'ce/last', '--data', 'prepared', '--out', 'x']);
    expect(bad.err).toMatch(/--objective: expected ce or scst, found "rl"/);
    const stray = await run(['train', '--config', 'tiny.json', '--data', 'prepared', '--out', 'x', '--scst-samples', '3']);
    expect(stray.err).toMatch(/--scst-samples: only applies with --objective scst/);
    const baseline = await run(['train', '--objective', 'scst', '--init-from', 'ce/last', '--data', 'prepared', '--out', 'x', '--scst-baseline', 'max']);
    expect(baseline.err).toMatch(/--scst-baseline: expected mean or greedy/);
  });
});
