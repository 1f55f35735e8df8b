import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodePng } from '@s2cpnet/data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandContext } from '../command';
import { ExitCode } from '../command';
import { createProgressPrinter, parsePrepareArgs, prepareCommand } from './prepare';
import { sharedPath, skippedBecause } from '../../../../scripts/shared-dir';

const root = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-cli-prepare-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function context(extra: Partial<CommandContext> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const ctx: CommandContext = {
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    isTTY: false,
    cwd: root,
    signal: new AbortController().signal,
    ...extra,
  };
  return { ctx, stdout: () => out.join(''), stderr: () => err.join('') };
}

const captions = ['An airplane at the airport', 'Some cars on the road', 'A river with trees', 'Houses and trees', 'A road with cars'];

beforeAll(async () => {
  mkdirSync(path.join(root, 'images'));
  for (const [i, name] of ['1.png', '2.png', '3.png'].entries()) {
    const data = Uint8Array.from({ length: 32 * 32 * 3 }, (_, k) => ((k >> 6) * 40 + i * 50) % 256);
    writeFileSync(path.join(root, 'images', name), encodePng({ width: 32, height: 32, data }));
  }
  const entry = (filename: string, split: string) => ({
    filename,
    split,
    sentences: captions.map((raw) => ({ raw, tokens: raw.split(' ') })),
  });
  writeFileSync(path.join(root, 'captions.json'), JSON.stringify({ images: [entry('1.png', 'train'), entry('2.png', 'train'), entry('3.png', 'val')] }));
  writeFileSync(path.join(root, 'broken.json'), JSON.stringify({ images: [entry('1.png', 'train'), entry('lost.png', 'train')] }));
});

const args = (out: string, ...extra: string[]) => ['--annotations', 'captions.json', '--images', 'images', '--out', out, '--size', '16', '--min-word-freq', '1', ...extra];

describe('s2cpnet prepare', () => {
  it('prints its usage with --help', async () => {
    const { ctx, stdout } = context();
    expect(await prepareCommand.run(['--help'], ctx)).toBe(ExitCode.ok);
    expect(stdout()).toContain('--annotations FILE');
    expect(stdout()).toContain('--on-error stop|skip');
  });

  it.each([
    [[], /missing --annotations, --images, --out/],
    [['--annotations', 'a', '--images', 'b', '--out', 'c', '--on-error', 'ignore'], /--on-error expects one of stop, skip, found "ignore"/],
    [['--annotations', 'a', '--images', 'b', '--out', 'c', '--size', '12.5'], /--size expects an integer >= 16/],
    [['--annotations', 'a', '--images', 'b', '--out', 'c', '--bogus'], /Unknown option '--bogus'/],
  ])('rejects bad arguments %j with exit code 2', async (argv, message) => {
    const { ctx, stderr } = context();
    expect(await prepareCommand.run(argv as string[], ctx)).toBe(ExitCode.usage);
    expect(stderr()).toMatch(message);
  });

  it('resolves paths against the working directory', () => {
    const { options } = parsePrepareArgs(args('out'), root);
    expect(options).toMatchObject({ annotations: path.join(root, 'captions.json'), imagesDir: path.join(root, 'images'), outDir: path.join(root, 'out'), size: 16 });
  });

  it('prepares a dataset, printing a summary on stdout and plain progress lines on stderr', async () => {
    const { ctx, stdout, stderr } = context();
    expect(await prepareCommand.run(args('out-plain'), ctx)).toBe(ExitCode.ok);
    expect(stdout()).toMatch(/images\s+train 2, val 1, test 0 \(3 processed now, 0 from an earlier run\)/);
    expect(stderr()).toMatch(/prepare: images 3\/3 .*img\/s.* \(100%\)\n/);
    expect(stderr()).not.toContain('\r');
    expect(existsSync(path.join(root, 'out-plain', 'manifest.json'))).toBe(true);

    const again = context();
    expect(await prepareCommand.run(args('out-plain'), again.ctx)).toBe(ExitCode.ok);
    expect(again.stdout()).toContain('(0 processed now, 3 from an earlier run)');
  });

  it('prints the manifest as JSON with --json, and draws a bar on a terminal', async () => {
    const { ctx, stdout, stderr } = context({ isTTY: true });
    expect(await prepareCommand.run(args('out-json', '--json'), ctx)).toBe(ExitCode.ok);
    const manifest = JSON.parse(stdout());
    expect(manifest.counts.images).toEqual({ train: 2, val: 1, test: 0, total: 3 });
    expect(manifest).toEqual(JSON.parse(readFileSync(path.join(root, 'out-json', 'manifest.json'), 'utf8')));
    expect(stderr()).toMatch(/\r\[#{30}\] 100% 3\/3/);
  });

  it('exits 3 and names the file for bad input, or records it with --on-error skip', async () => {
    const stop = context();
    const argv = ['--annotations', 'broken.json', '--images', 'images', '--out', 'out-broken', '--size', '16'];
    expect(await prepareCommand.run(argv, stop.ctx)).toBe(ExitCode.badInput);
    expect(stop.stderr()).toMatch(/s2cpnet prepare: error: .*lost\.png: image file not found \(listed at \$\.images\[1\]/);
    expect(existsSync(path.join(root, 'out-broken', 'manifest.json'))).toBe(false);

    const skip = context();
    expect(await prepareCommand.run([...argv, '--on-error', 'skip', '--min-word-freq', '1'], skip.ctx)).toBe(ExitCode.ok);
    expect(skip.stdout()).toContain('skipped     1 items');
    const manifest = JSON.parse(readFileSync(path.join(root, 'out-broken', 'manifest.json'), 'utf8'));
    expect(manifest.skipped[0]).toMatchObject({ file: path.join(root, 'images', 'lost.png'), jsonPath: '$.images[1]' });
  });

  it('exits 130 when interrupted, and a new run resumes', async () => {
    const controller = new AbortController();
    controller.abort();
    const { ctx, stderr } = context({ signal: controller.signal });
    expect(await prepareCommand.run(args('out-abort'), ctx)).toBe(ExitCode.interrupted);
    expect(stderr()).toMatch(/interrupted after 0 of 3 images.*run the same command again to resume/);
    const again = context();
    expect(await prepareCommand.run(args('out-abort'), again.ctx)).toBe(ExitCode.ok);
  });
});

describe('createProgressPrinter', () => {
  it('prints at most one plain line per 10% (plus the last) when not on a terminal', () => {
    const lines: string[] = [];
    let clock = 0;
    const print = createProgressPrinter({ stderr: (t) => lines.push(t), isTTY: false }, () => clock);
    print({ phase: 'images', done: 0, total: 100, resumed: 0, skipped: 0 });
    for (let done = 1; done <= 100; done++) {
      clock += 100;
      print({ phase: 'images', done, total: 100, resumed: 0, skipped: 0 });
    }
    const progressLines = lines.filter((l) => l.startsWith('prepare: images '));
    expect(progressLines).toHaveLength(11);
    expect(progressLines.at(-1)).toMatch(/100\/100 10\.0 img\/s ETA 0s \(100%\)/);
  });
});

const TIF = sharedPath('testdata/ucm-tif') ?? '';

describe.skipIf(TIF === '')(`on the original UC Merced TIFFs${TIF === '' ? ` (${skippedBecause('testdata/ucm-tif')})` : ''}`, () => {
  it('prepares the 12 TIFF samples', async () => {
    const { ctx, stdout } = context();
    const out = path.join(root, 'tif');
    expect(await prepareCommand.run(['--annotations', path.join(TIF, 'dataset.json'), '--images', TIF, '--out', out], ctx)).toBe(ExitCode.ok);
    expect(stdout()).toContain('train 12, val 0, test 0');
    const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    expect(manifest.counts.captions.train).toBe(60);
    expect(manifest.counts.nounClasses).toBeGreaterThan(5);
  });
});
