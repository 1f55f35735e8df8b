/**
 * `s2cpnet caption` through `main`: --help, --on-error, --recursive, streamed JSONL, COCO results, the HTML report,
 * the loading line, progress with ETA, and the warning for inputs much larger than the model input.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchmarkImage, encodePng } from '@s2cpnet/data';
import { initBackend } from '../backend';
import { main } from '../main';
import { runCli } from './cli.test-util';
import { saveTinyCheckpoint } from '../../../model/src/tiny-checkpoint.test-util';

let root = '';
const run = (args: string[]) => runCli(args, root);

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-caption-cli-'));
  await initBackend({ backend: 'cpu' });
  await saveTinyCheckpoint(path.join(root, 'ckpt'), { words: 'a road river tree house car green field'.split(' ') });
  mkdirSync(path.join(root, 'images', 'sub', 'deeper'), { recursive: true });
  writeFileSync(path.join(root, 'images', 'a.png'), encodePng(benchmarkImage(64, 1)));
  writeFileSync(path.join(root, 'images', 'sub', 'b.png'), encodePng(benchmarkImage(64, 2)));
  writeFileSync(path.join(root, 'images', 'sub', 'deeper', 'c.png'), encodePng(benchmarkImage(64, 3)));
  writeFileSync(path.join(root, 'broken.png'), 'not an image');
}, 120_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('s2cpnet caption', () => {
  it('--help lists every option with its default, and the caches', async () => {
    const help = await run(['caption', '--help']);
    expect(help.code).toBe(0);
    for (const flag of ['--checkpoint', '--recursive', '--out', '--format', '--annotations', '--report', '--on-error', '--beam', '--length-penalty', '--max-length', '--batch-size', '--masks', '--mask-size', '--cache-dir', '--no-cache', '--max-pixels']) {
      const line = help.out.split('\n').find((l) => l.trimStart().startsWith(flag));
      expect(line, flag).toBeDefined();
    }
    for (const fragment of ['[stop]', '[3]', '[0]', '[25]', '[8]', '[off]', 'Caches:', '<cache folder>/masks']) expect(help.out).toContain(fragment);
  });

  it('--recursive captions subfolders; without it a folder of folders is an error that says so', async () => {
    const flat = await run(['caption', '--checkpoint', 'ckpt', 'images/sub']);
    expect(flat.code).toBe(0);
    expect(flat.out.trim().split('\n')).toHaveLength(1);
    const deep = await run(['caption', '--checkpoint', 'ckpt', 'images', '--recursive', '--out', 'deep.json']);
    expect(deep.code, deep.err).toBe(0);
    const rows = JSON.parse(readFileSync(path.join(root, 'deep.json'), 'utf8')) as { file: string }[];
    expect(rows.map((r) => r.file)).toEqual(['images/a.png', 'images/sub/b.png', 'images/sub/deeper/c.png'].map((f) => f.split('/').join(path.sep)));
    mkdirSync(path.join(root, 'only-folders', 'x'), { recursive: true });
    const none = await run(['caption', '--checkpoint', 'ckpt', 'only-folders']);
    expect(none.code).toBe(3);
    expect(none.err).toMatch(/--recursive/);
  });

  it('prints a loading line and per-image progress with an ETA on stderr', async () => {
    const result = await run(['caption', '--checkpoint', 'ckpt', 'images', '--recursive', '--batch-size', '1']);
    expect(result.err).toMatch(/caption: loading checkpoint ckpt/);
    expect(result.err).toMatch(/caption 1\/3 \(33%\) .*ETA \d+:\d\d/);
    expect(result.err).toMatch(/caption 3\/3 \(100%\)/);
    expect(result.err).toMatch(/captioned 3 of 3 images/);
  });

  it('--on-error stop (the default) stops naming the file; skip records it in the output and the summary', async () => {
    const stopped = await run(['caption', '--checkpoint', 'ckpt', 'images/a.png', 'broken.png']);
    expect(stopped.code).toBe(3);
    expect(stopped.err).toMatch(/broken\.png/);
    const skipped = await run(['caption', '--checkpoint', 'ckpt', 'broken.png', 'images/a.png', '--on-error', 'skip', '--out', 'skipped.json']);
    expect(skipped.code, skipped.err).toBe(0);
    const rows = JSON.parse(readFileSync(path.join(root, 'skipped.json'), 'utf8')) as { file: string; error?: string; caption?: string }[];
    expect(rows[0]).toMatchObject({ file: 'broken.png' });
    expect(rows[0]!.error).toBeTypeOf('string');
    expect(rows[1]!.caption).toBeTypeOf('string');
    expect(skipped.err).toMatch(/captioned 1 of 2 images.*1 failed/);
    expect(skipped.err).toMatch(/broken\.png: /);
    const csv = await run(['caption', '--checkpoint', 'ckpt', 'broken.png', 'images/a.png', '--on-error', 'skip', '--out', 'skipped.csv']);
    expect(csv.code).toBe(0);
    expect(readFileSync(path.join(root, 'skipped.csv'), 'utf8').split('\n')[0]).toBe('file,caption,categories,error');
    expect((await run(['caption', '--checkpoint', 'ckpt', 'images/a.png', '--on-error', 'maybe'])).code).toBe(2);
  });

  it('--out x.jsonl writes one line per image as soon as it is captioned', async () => {
    const out = path.join(root, 'stream.jsonl');
    const linesAtProgress: number[] = [];
    const err: string[] = [];
    const code = await main(['caption', '--checkpoint', 'ckpt', 'images', '--recursive', '--batch-size', '1', '--out', 'stream.jsonl'], {
      stdout: () => undefined,
      stderr: (text) => {
        err.push(text);
        // the progress line of image k is printed after its line was written
        if (/^caption \d\/3/.test(text)) linesAtProgress.push(readFileSync(out, 'utf8').split('\n').filter(Boolean).length);
      },
      isTTY: false,
      cwd: root,
    });
    expect(code, err.join('')).toBe(0);
    expect(linesAtProgress[0]).toBe(1);
    const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { file: string; caption: string });
    expect(lines).toHaveLength(3);
    expect(lines.every((l) => typeof l.caption === 'string')).toBe(true);
  });

  it('--format coco writes [{image_id, caption}] with ids from --annotations, else positions (and says so)', async () => {
    writeFileSync(path.join(root, 'karpathy.json'), JSON.stringify({ images: [{ filename: 'b.png', cocoid: 42, split: 'test', sentences: [] }, { filename: 'a.png', cocoid: 7, split: 'test', sentences: [] }] }));
    const withIds = await run(['caption', '--checkpoint', 'ckpt', 'images/a.png', 'images/sub/b.png', '--format', 'coco', '--annotations', 'karpathy.json', '--out', 'coco.json']);
    expect(withIds.code, withIds.err).toBe(0);
    const results = JSON.parse(readFileSync(path.join(root, 'coco.json'), 'utf8')) as { image_id: number; caption: string }[];
    expect(results.map((r) => r.image_id)).toEqual([7, 42]);
    expect(Object.keys(results[0]!).sort()).toEqual(['caption', 'image_id']);
    const positional = await run(['caption', '--checkpoint', 'ckpt', 'images/a.png', 'images/sub/b.png', '--format', 'coco']);
    expect(positional.code).toBe(0);
    expect(JSON.parse(positional.out).map((r: { image_id: number }) => r.image_id)).toEqual([1, 2]);
    expect(positional.err).toMatch(/image_id is each image's 1-based position/);
    const unknown = await run(['caption', '--checkpoint', 'ckpt', 'images/sub/deeper/c.png', '--format', 'coco', '--annotations', 'karpathy.json']);
    expect(unknown.code).toBe(3);
    expect(unknown.err).toMatch(/no image named "c\.png"/);
  });

  it('--report writes an HTML page with each image, its mask view, caption and attention', async () => {
    // The page's layout is the report module's; here: it is written, names the image and inlines image and mask view.
    const result = await run(['caption', '--checkpoint', 'ckpt', 'images/a.png', '--report', 'report.html', '--out', 'report-rows.json']);
    expect(result.code, result.err).toBe(0);
    expect(result.err).toMatch(/wrote the report to .*report\.html/);
    const html = readFileSync(path.join(root, 'report.html'), 'utf8');
    expect(html).toContain('a.png');
    expect(html.match(/data:image\/png;base64,/g)?.length ?? 0).toBeGreaterThanOrEqual(2);
  });

  it('warns on stderr when an image is much larger than the model input', async () => {
    writeFileSync(path.join(root, 'large.png'), encodePng(benchmarkImage(300, 5)));
    const result = await run(['caption', '--checkpoint', 'ckpt', 'large.png']);
    expect(result.code).toBe(0);
    expect(result.err).toMatch(/caption: warning: .*large\.png is 300x300 px, more than 4x the model's 64 px input/);
  });
});
