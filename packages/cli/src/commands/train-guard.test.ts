import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSyntheticAerialSet } from '@s2cpnet/data';
import { runCli, tinyConfigJson } from './cli.test-util';

// `s2cpnet train` on a run folder that is taken: a finished run, a busy one, a file; and --force, --resume, SIGTERM.

let root = '';

const run = (args: string[]) => runCli(args, root);

const TRAIN = ['train', '--config', 'tiny.json', '--data', 'prepared', '--batch-size', '8', '--epochs', '2', '--lr', '0.002', '--val-max', '3'];

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-cli-train-guard-'));
  const set = await writeSyntheticAerialSet(path.join(root, 'synthetic'), { seed: 3, count: 30, size: 64 });
  await fsp.writeFile(path.join(root, 'tiny.json'), JSON.stringify(tinyConfigJson()));
  const prep = await run(['prepare', '--annotations', set.datasetFile, '--images', set.imagesDir, '--masks', set.masksDir, '--out', 'prepared', '--size', '64', '--min-word-freq', '1']);
  expect(prep.code).toBe(0);
}, 120_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('s2cpnet train: the --out folder', () => {
  it('an --out that is a file: exit 2 naming it, no stack trace', async () => {
    writeFileSync(path.join(root, 'a-file'), 'x');
    const result = await run([...TRAIN, '--out', 'a-file']);
    expect(result.code).toBe(2);
    expect(result.err).toContain(path.join(root, 'a-file'));
    expect(result.err).toMatch(/is a file, not a folder/);
    expect(result.err).not.toMatch(/unexpected error|\n\s+at /);
  });

  it('a finished run is refused without --resume/--force (exit 2); --resume reports its best epoch; --force starts over', async () => {
    const first = await run([...TRAIN, '--out', 'run', '--json']);
    expect(first.code).toBe(0);
    const summary = JSON.parse(first.out) as { bestEpoch: number; history: { epoch: number; improved: boolean }[] };
    expect(summary.bestEpoch).toBe(summary.history.filter((h) => h.improved).at(-1)!.epoch);
    const log = await fsp.readFile(path.join(root, 'run', 'log.jsonl'), 'utf8');

    const again = await run([...TRAIN, '--out', 'run']);
    expect(again.code).toBe(2);
    expect(again.err).toMatch(/--resume/);
    expect(again.err).toMatch(/--force/);
    expect(await fsp.readFile(path.join(root, 'run', 'log.jsonl'), 'utf8')).toBe(log);

    const resumed = await run([...TRAIN, '--out', 'run', '--resume', '--json']);
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.out).bestEpoch).toBe(summary.bestEpoch);
    expect(JSON.parse(resumed.out).stoppedBecause).toBe('finished-before');

    expect((await run([...TRAIN, '--out', 'run', '--resume', '--force'])).code).toBe(2);
    const forced = await run([...TRAIN, '--out', 'run', '--force', '--epochs', '1']);
    expect(forced.code).toBe(0);
    expect(forced.err).toMatch(/--force: removing the previous run in .*run: .*best\/.*last\/.*log\.jsonl/);
    expect((await fsp.readFile(path.join(root, 'run', 'log.jsonl'), 'utf8')).trim().split('\n')).toHaveLength(1);
  });

  it('a folder another live process trains in: exit 2 naming its pid', async () => {
    const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    await new Promise((r) => sleeper.once('spawn', r));
    try {
      await fsp.mkdir(path.join(root, 'busy'));
      writeFileSync(path.join(root, 'busy', 'train.lock'), JSON.stringify({ pid: sleeper.pid, host: os.hostname(), started: new Date().toISOString() }));
      const busy = await run([...TRAIN, '--out', 'busy']);
      expect(busy.code).toBe(2);
      expect(busy.err).toContain(`in use by another training process (pid ${sleeper.pid} `);
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  it('SIGTERM saves last/ and stops like Ctrl-C (exit 130), releasing the folder', async () => {
    const before = process.listenerCount('SIGTERM');
    const pending = run([...TRAIN, '--out', 'termed']);
    while (process.listenerCount('SIGTERM') === before) await new Promise((r) => setTimeout(r, 5));
    process.emit('SIGTERM', 'SIGTERM');
    const termed = await pending;
    expect(termed.code).toBe(130);
    expect(termed.err).toMatch(/SIGTERM received: saving state/);
    expect(existsSync(path.join(root, 'termed', 'last', 'checkpoint.json'))).toBe(true);
    expect(existsSync(path.join(root, 'termed', 'train.lock'))).toBe(false);
    expect(process.listenerCount('SIGTERM')).toBe(before);
  });
});
