import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp, existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as os from 'node:os';
import * as path from 'node:path';
import { useBackend } from '@s2cpnet/core/testing';
import { train, type TrainOptions } from './train';
import { tinyConfig, tinyPreparedDataset } from './testing/tiny';
import { trainFailure } from './train.test-util';

// Reliability of a run folder: refusing to clobber a finished run, one process per folder, and a log and
// checkpoints that always agree after a crash (states a `kill -9` can leave are built on disk here).

let root = '';
let preparedDir = '';
const TINY = ['s2cpnet', 7] as const;
const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'testing', 'fixtures', 'train-child.ts');

beforeAll(async () => {
  await useBackend('wasm');
  ({ root, prepared: preparedDir } = await tinyPreparedDataset(40));
}, 120_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

const common = () => ({
  data: preparedDir,
  config: tinyConfig(...TINY),
  batchSize: 8,
  learningRate: 2e-3,
  maxEpochs: 2,
  validation: { maxImages: 3 },
});

async function run(options: Partial<TrainOptions> & { runDir: string }) {
  const lines: string[] = [];
  const result = await train({ ...common(), ...options, log: (l) => void lines.push(l) } as TrainOptions);
  const weights = result.model.namedWeights().map((w) => Array.from(w.variable.read().dataSync()));
  result.model.dispose();
  return { result, lines, weights };
}

const failure = (options: Partial<TrainOptions> & { runDir: string }) => trainFailure({ ...common(), ...options } as TrainOptions);

const logEpochs = async (runDir: string) =>
  (await fsp.readFile(path.join(runDir, 'log.jsonl'), 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { epoch: number }).epoch);

function deadPid(): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', '0']);
    child.on('exit', () => resolve(child.pid!));
  });
}

describe('a finished run folder', () => {
  it('--resume reports the best epoch of the run (1-based, as the log numbers epochs)', async () => {
    const runDir = path.join(root, 'finished');
    const first = await run({ runDir });
    expect(first.result.history.map((h) => h.epoch)).toEqual([1, 2]);
    const bestInLog = first.result.history.filter((h) => h.improved).at(-1)!.epoch;
    expect(first.result.bestEpoch).toBe(bestInLog);
    const again = await run({ runDir, resume: true });
    expect(again.result.stoppedBecause).toBe('finished-before');
    expect(again.result.bestEpoch).toBe(bestInLog);
    expect(again.result.bestScore).toBe(first.result.bestScore);
  });

  it('is refused without --resume or --force; its log and best/ stay untouched', async () => {
    const runDir = path.join(root, 'finished');
    const logBefore = await fsp.readFile(path.join(runDir, 'log.jsonl'), 'utf8');
    const bestBefore = await fsp.readFile(path.join(runDir, 'best', 'weights.bin'));
    const error = await failure({ runDir, maxEpochs: 1 });
    expect(error.code).toBe('CONFIG');
    expect(error.message).toContain(runDir);
    expect(error.message).toMatch(/--resume/);
    expect(error.message).toMatch(/--force/);
    expect(await fsp.readFile(path.join(runDir, 'log.jsonl'), 'utf8')).toBe(logBefore);
    expect((await fsp.readFile(path.join(runDir, 'best', 'weights.bin'))).equals(bestBefore)).toBe(true);
    expect(existsSync(path.join(runDir, 'train.lock'))).toBe(false);
  });

  it('a new run folder that holds only a features/ cache (shared by runs of one backbone) is not refused', async () => {
    const runDir = path.join(root, 'features-only');
    await fsp.mkdir(path.join(runDir, 'features'), { recursive: true });
    const fresh = await run({ runDir, maxEpochs: 1 });
    expect(fresh.result.history.map((h) => h.epoch)).toEqual([1]);
    await fsp.mkdir(path.join(root, 'other-files', 'features'), { recursive: true });
    writeFileSync(path.join(root, 'other-files', 'notes.txt'), 'mine');
    expect((await failure({ runDir: path.join(root, 'other-files'), maxEpochs: 1 })).message).toMatch(/not empty \(features\/, notes\.txt\)/);
  });

  it('--force starts over: removes the previous run (saying what), keeps files that are not the run\'s', async () => {
    const runDir = path.join(root, 'finished');
    writeFileSync(path.join(runDir, 'notes.txt'), 'mine');
    await fsp.mkdir(path.join(runDir, 'epoch-7'));
    expect((await failure({ runDir, resume: true, force: true })).message).toMatch(/--resume.*--force|--force.*--resume/);
    const forced = await run({ runDir, force: true, maxEpochs: 1 } as Partial<TrainOptions> & { runDir: string });
    expect(forced.result.history.map((h) => h.epoch)).toEqual([1]);
    expect(await logEpochs(runDir)).toEqual([1]);
    const said = forced.lines.join('\n');
    expect(said).toMatch(/removing the previous run/);
    for (const name of ['log.jsonl', 'last/', 'best/', 'epoch-7/']) expect(said).toContain(name);
    expect(existsSync(path.join(runDir, 'epoch-7'))).toBe(false);
    expect(await fsp.readFile(path.join(runDir, 'notes.txt'), 'utf8')).toBe('mine');
  });

  it('an --out that is a file (or under one) is a clear usage error naming it', async () => {
    const file = path.join(root, 'a-file');
    writeFileSync(file, 'x');
    for (const runDir of [file, path.join(file, 'run')]) {
      const error = await failure({ runDir });
      expect(error.code).toBe('CONFIG');
      expect(error.message).toContain(file);
      expect(error.message).toMatch(/not a folder/);
    }
  });
});

describe('the run folder lock', () => {
  let sleeper: ChildProcess | null = null;
  afterAll(() => {
    sleeper?.kill('SIGKILL');
  });

  it('a second process on the same folder is refused, naming the owner pid', async () => {
    const runDir = path.join(root, 'locked');
    await fsp.mkdir(runDir, { recursive: true });
    sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    await new Promise((r) => sleeper!.once('spawn', r));
    const lock = JSON.stringify({ pid: sleeper.pid, host: os.hostname(), started: new Date().toISOString() });
    writeFileSync(path.join(runDir, 'train.lock'), lock);
    const error = await failure({ runDir, maxEpochs: 1 });
    expect(error.code).toBe('CONFIG');
    expect(error.message).toContain(`pid ${sleeper.pid}`);
    expect(error.message).toContain('train.lock');
    expect(await fsp.readFile(path.join(runDir, 'train.lock'), 'utf8')).toBe(lock); // not taken, not removed
    expect(readdirSync(runDir)).toEqual(['train.lock']);
  });

  it('two train() calls at once in one process: the second is refused', async () => {
    const runDir = path.join(root, 'twice');
    const first = train({ ...common(), runDir, maxEpochs: 1 });
    const second = await failure({ runDir, maxEpochs: 1 });
    expect(second.message).toContain(`pid ${process.pid}`);
    (await first).model.dispose();
    expect(existsSync(path.join(runDir, 'train.lock'))).toBe(false);
  });

  it('a stale lock (its pid is dead) is reported and taken over, and released when the run ends', async () => {
    const runDir = path.join(root, 'stale');
    await fsp.mkdir(runDir, { recursive: true });
    const pid = await deadPid();
    writeFileSync(path.join(runDir, 'train.lock'), JSON.stringify({ pid, host: os.hostname(), started: '2020-01-01T00:00:00.000Z' }));
    const resumed = await run({ runDir, maxEpochs: 1, resume: true });
    expect(resumed.lines.join('\n')).toContain(`taking over stale lock of pid ${pid}`);
    expect(existsSync(path.join(runDir, 'train.lock'))).toBe(false);
  });

  it('is released when training fails or is interrupted', async () => {
    const runDir = path.join(root, 'interrupted');
    const controller = new AbortController();
    const error = await failure({ runDir, signal: controller.signal, onProgress: () => controller.abort() });
    expect(error.code).toBe('INTERRUPTED');
    expect(existsSync(path.join(runDir, 'train.lock'))).toBe(false);
    expect(existsSync(path.join(runDir, 'last', 'checkpoint.json'))).toBe(true);
  });
});

describe('crash consistency: resume from the newest complete checkpoint, log cut to it', () => {
  let base = '';
  let baseLog = '';
  let straight: Awaited<ReturnType<typeof run>>;

  beforeAll(async () => {
    // Stopped (Ctrl-C) in the first batch of epoch 2: last/ holds epoch 1 + 1 batch, the log epoch 1.
    base = path.join(root, 'crash-base');
    const controller = new AbortController();
    let epochs = 0;
    const stopped = await failure({ runDir: base, signal: controller.signal, onEpoch: () => void (epochs += 1), onProgress: () => void (epochs === 1 && controller.abort()) });
    expect(stopped.code).toBe('INTERRUPTED');
    baseLog = await fsp.readFile(path.join(base, 'log.jsonl'), 'utf8');
    expect(baseLog.trim().split('\n')).toHaveLength(1);
    straight = await run({ runDir: path.join(root, 'crash-straight'), maxEpochs: 2 });
  }, 120_000);

  async function copyOfBase(name: string): Promise<string> {
    const dir = path.join(root, name);
    await fsp.cp(base, dir, { recursive: true });
    return dir;
  }

  it('a log line for an epoch whose checkpoint was never written is dropped; leftover temp folders are removed', async () => {
    const runDir = await copyOfBase('crash-log-ahead');
    const line = (await fsp.readFile(path.join(runDir, 'log.jsonl'), 'utf8')).trim();
    await fsp.appendFile(path.join(runDir, 'log.jsonl'), `${JSON.stringify({ ...JSON.parse(line), epoch: 2 })}\n`);
    await fsp.mkdir(path.join(runDir, '.best.4242.deadbeef.tmp'));
    writeFileSync(path.join(runDir, '.best.4242.deadbeef.tmp', 'weights.bin'), 'half');
    await fsp.mkdir(path.join(runDir, '.last.4242.0badf00d.tmp'));
    writeFileSync(path.join(runDir, '.log.jsonl.4242.12345678.tmp'), 'x');
    const resumed = await run({ runDir, resume: true });
    expect(await logEpochs(runDir)).toEqual([1, 2]);
    expect(resumed.result.history.map((h) => h.epoch)).toEqual([1, 2]);
    expect(resumed.weights).toEqual(straight.weights);
    expect(readdirSync(runDir).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(resumed.lines.join('\n')).toMatch(/log\.jsonl/);
  });

  it('a crash between the two renames of last/ (old moved aside, new complete copy not yet in place) resumes from the new copy', async () => {
    const runDir = await copyOfBase('crash-mid-rename');
    const tmp = path.join(runDir, '.last.4242.0123abcd.tmp');
    await fsp.rename(path.join(runDir, 'last'), `${tmp}.old`);
    await fsp.cp(`${tmp}.old`, tmp, { recursive: true });
    const resumed = await run({ runDir, resume: true });
    expect(resumed.lines.join('\n')).toMatch(/resuming .* at epoch 2, batch 1/);
    expect((await fsp.readFile(path.join(runDir, 'log.jsonl'), 'utf8')).startsWith(baseLog)).toBe(true); // epoch 1 kept, not redone
    expect(await logEpochs(runDir)).toEqual([1, 2]);
    expect(resumed.weights).toEqual(straight.weights);
    expect(existsSync(path.join(runDir, 'last', 'checkpoint.json'))).toBe(true);
    expect(readdirSync(runDir).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('with only the moved-aside copy of last/ left, and the log line of its epoch never written, resume continues exactly', async () => {
    const runDir = await copyOfBase('crash-old-only');
    await fsp.rename(path.join(runDir, 'last'), path.join(runDir, '.last.4242.0123abcd.tmp.old'));
    await fsp.writeFile(path.join(runDir, 'log.jsonl'), '');
    const resumed = await run({ runDir, resume: true });
    expect(resumed.lines.join('\n')).toMatch(/resuming .* at epoch 2, batch 1/);
    expect(resumed.result.history.map((h) => h.epoch)).toEqual([1, 2]);
    expect((await fsp.readFile(path.join(runDir, 'log.jsonl'), 'utf8')).startsWith(baseLog)).toBe(true);
    expect(await logEpochs(runDir)).toEqual([1, 2]);
    expect(resumed.weights).toEqual(straight.weights);
    expect(resumed.result.history.map((h) => h.trainLoss)).toEqual(straight.result.history.map((h) => h.trainLoss));
  });

  it('--resume with no checkpoint to resume from but a previous run in the folder is refused', async () => {
    const runDir = await copyOfBase('crash-no-last');
    await fsp.rm(path.join(runDir, 'last'), { recursive: true });
    const error = await failure({ runDir, resume: true });
    expect(error.message).toMatch(/nothing to resume/);
    expect(error.message).toMatch(/--force/);
    expect(await logEpochs(runDir)).toEqual([1]);
  });

  // A real training process killed with SIGKILL at the points where a crash hurt before.
  for (const point of ['train:checkpoint-saved#2', 'dir-moved-aside:last']) {
    it(`kill -9 of a training process at ${point} is resumed exactly, with one log line per epoch`, async () => {
      const runDir = path.join(root, `killed-${point.replace(/[^a-z]/g, '-')}`);
      const { data, batchSize, learningRate, maxEpochs, validation } = common();
      const child = spawnSync(
        process.execPath,
        ['--conditions=@s2cpnet/source', '--import', 'tsx', CHILD, JSON.stringify({ data, batchSize, learningRate, maxEpochs, validation, runDir, tiny: TINY })],
        { env: { ...process.env, S2CPNET_TEST_CRASH: point }, encoding: 'utf8', timeout: 120_000 },
      );
      expect(child.signal, child.stderr).toBe('SIGKILL');
      expect(existsSync(path.join(runDir, 'train.lock'))).toBe(true); // the dead owner's: taken over below
      const resumed = await run({ runDir, resume: true });
      expect(resumed.lines.join('\n')).toMatch(/taking over stale lock of pid \d+/);
      expect(await logEpochs(runDir)).toEqual([1, 2]);
      expect(resumed.result.history.map((h) => h.trainLoss)).toEqual(straight.result.history.map((h) => h.trainLoss));
      expect(resumed.weights).toEqual(straight.weights);
      expect(resumed.result.bestEpoch).toBe(straight.result.bestEpoch);
      expect(readdirSync(runDir).filter((n) => n.startsWith('.'))).toEqual([]);
    });
  }
});
