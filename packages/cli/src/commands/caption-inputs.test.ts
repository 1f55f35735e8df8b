/**
 * `caption`, `evaluate` and `prepare` on hostile or unusual inputs: images sharing a base name, masks as prepare
 * makes them, huge images, links out of the folder, unreadable files, formula-like file names in CSV, an unwritable
 * cache folder.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchmarkImage, decodeImageFile, encodePng, prepareDataset, Vocabulary, type RgbImage } from '@s2cpnet/data';
import { buildS2CPNet, presetConfig, saveCheckpoint } from '@s2cpnet/model';
import { initBackend } from '../backend';
import { runCli, tinyConfigJson } from './cli.test-util';
import { formatCaptionsCsv, openCaptionMasks } from './caption';

let root = '';

const run = (args: string[], cwd = root) => runCli(args, cwd);

const same = (a: RgbImage, b: RgbImage): boolean =>
  a.width === b.width && a.height === b.height && Buffer.from(a.data).equals(Buffer.from(b.data));

/** Runs `body` with environment variables set (undefined removes one), restoring them afterwards. */
async function withEnv<T>(vars: Record<string, string | undefined>, body: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  try {
    return await body();
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  }
}

function karpathy(file: string, names: string[], split = 'train'): string {
  const sentences = ['there is an airplane at the airport', 'some cars are parked on the road'].map((raw) => ({ raw, tokens: raw.split(' ') }));
  writeFileSync(file, JSON.stringify({ dataset: 'toy', images: names.map((filename) => ({ filename, split, sentences })) }));
  return file;
}

/** A tiny untrained checkpoint that reads the mask view (preset s2cpnet at 64 px). */
async function writeTinyCheckpoint(dir: string): Promise<void> {
  await initBackend({ backend: 'cpu' });
  const config = tinyConfigJson() as ReturnType<typeof presetConfig>;
  const words = 'a road river tree house car green field'.split(' ');
  const vocabulary = Vocabulary.build({ images: [{ id: '1', file: '1', split: 'train', jsonPath: '$', captions: [{ raw: '', tokens: words }] }] }, { minWordFreq: 1 });
  const model = buildS2CPNet(config, { vocabSize: vocabulary.size, numClasses: 3 });
  try {
    await saveCheckpoint(dir, { model, vocabulary, classNames: ['road', 'river', 'tree'] });
  } finally {
    model.dispose();
  }
}

let huge = '';
beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-caption-inputs-'));
  chmodSync(root, 0o755);
  huge = path.join(root, 'huge.png');
  // 16000x16000 single colour: ~3 MB on disk, 768 MB decoded.
  await sharp({ create: { width: 16000, height: 16000, channels: 3, background: { r: 40, g: 120, b: 60 } } }).png().toFile(huge);
  await writeTinyCheckpoint(path.join(root, 'ckpt'));
}, 120_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('caption-time masks (item 3)', () => {
  it('are the masks prepare makes for training, for A/1.png and B/1.png alike', async () => {
    const imagesDir = path.join(root, 'same-name');
    mkdirSync(path.join(imagesDir, 'A'), { recursive: true });
    mkdirSync(path.join(imagesDir, 'B'), { recursive: true });
    // 256 px, as UCM: prepare segments at its default working size (224), caption must too.
    writeFileSync(path.join(imagesDir, 'A', '1.png'), encodePng(benchmarkImage(256, 1)));
    writeFileSync(path.join(imagesDir, 'B', '1.png'), encodePng(benchmarkImage(256, 9)));
    const prepared: Record<string, RgbImage> = {};
    for (const name of ['A/1.png', 'B/1.png']) {
      const outDir = path.join(root, `prepared-${name[0]}`);
      const { manifest } = await prepareDataset({ annotations: karpathy(path.join(root, `${name[0]}.json`), [name]), imagesDir, outDir, minWordFreq: 1, minNounFreq: 1 });
      prepared[name] = await decodeImageFile(path.join(outDir, manifest.files.masks, '1.png'));
    }
    expect(same(prepared['A/1.png']!, prepared['B/1.png']!)).toBe(false);

    const masks = await openCaptionMasks({ cwd: root, cacheDir: path.join(root, 'cache-3') });
    for (const round of [1, 2]) {
      // Captioned together, twice (the second time from the cache): each image gets its own, prepare-made mask.
      for (const name of ['A/1.png', 'B/1.png']) {
        const file = path.join(imagesDir, name);
        const view = await masks.view(await decodeImageFile(file), file);
        expect(same(view, prepared[name]!), `${name}, round ${round}`).toBe(true);
      }
    }
  });
});

describe('huge images (item 4)', () => {
  it('caption and evaluate refuse a 16000x16000 PNG up front with the file, its size and the cap', async () => {
    const rssBefore = process.memoryUsage().rss;
    const captioned = await run(['caption', '--checkpoint', 'no-such-ckpt', huge]);
    expect(captioned.err).toMatch(/huge\.png: image is 16000x16000 pixels \(256\.0 megapixels\), more than the limit of 64\.0 megapixels/);
    expect(captioned.code).toBe(3);
    const lower = await run(['caption', '--checkpoint', 'no-such-ckpt', '--max-pixels', '1000', path.join(root, 'same-name', 'A', '1.png')]);
    expect(lower.err).toMatch(/1\.png: image is 256x256 pixels .*limit of 0\.001 megapixels/);

    const annotations = karpathy(path.join(root, 'huge.json'), ['huge.png'], 'test');
    const evaluated = await run(['evaluate', '--checkpoint', 'no-such-ckpt', '--annotations', annotations, '--images', root, '--split', 'test']);
    expect(evaluated.err).toMatch(/huge\.png: image is 16000x16000 pixels .*limit of 64\.0 megapixels/);
    expect(evaluated.code).toBe(3);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(300e6);
  });
});

describe('links out of the images folder (item 11a)', () => {
  it('caption and evaluate refuse a symlink in the folder that leads outside it, naming it', async () => {
    const folder = path.join(root, 'linked');
    mkdirSync(folder, { recursive: true });
    mkdirSync(path.join(root, 'elsewhere'), { recursive: true });
    writeFileSync(path.join(root, 'elsewhere', 'secret.png'), encodePng(benchmarkImage(32, 2)));
    writeFileSync(path.join(folder, 'ok.png'), encodePng(benchmarkImage(32, 3)));
    symlinkSync(path.join(root, 'elsewhere', 'secret.png'), path.join(folder, 'evil.png'));
    const captioned = await run(['caption', '--checkpoint', 'no-such-ckpt', folder]);
    expect(captioned.err).toMatch(/evil\.png: .*link to .*secret\.png, outside the images folder/);
    expect(captioned.code).toBe(3);
    const annotations = karpathy(path.join(root, 'linked.json'), ['ok.png', 'evil.png'], 'test');
    const evaluated = await run(['evaluate', '--checkpoint', 'no-such-ckpt', '--annotations', annotations, '--images', folder, '--split', 'test']);
    expect(evaluated.err).toMatch(/evil\.png: .*link to .*secret\.png, outside the images folder/);
    expect(evaluated.code).toBe(3);
  });
});

describe('unreadable files (item 11b)', () => {
  // As root, chmod 000 stops nothing: the command runs with the effective uid of "nobody" (seteuid, undone after).
  const uid = process.getuid?.();
  const canDrop = uid === 0 && typeof process.seteuid === 'function';
  it.skipIf(process.platform === 'win32' || (uid === 0 && !canDrop))('caption reports EACCES on a chmod 000 image, naming it', async () => {
    const file = path.join(root, 'locked.png');
    writeFileSync(file, encodePng(benchmarkImage(32, 4)));
    chmodSync(file, 0o000);
    if (canDrop) process.seteuid!(65534);
    let result;
    try {
      result = await run(['caption', '--checkpoint', 'no-such-ckpt', file]);
    } finally {
      if (canDrop) process.seteuid!(0);
    }
    expect(result.err).toMatch(/locked\.png: permission denied: cannot read the image file \(EACCES\)/);
    expect(result.code).toBe(3);
  });
});

describe('CSV output (item 11e)', () => {
  it('escapes cells that a spreadsheet would run as formulas, and quotes properly', () => {
    const rows = ['=HYPERLINK("http://x","y").png', '+1.png', '-2.png', '@SUM(A1).png', '\tx.png', 'plain, "quoted".png', 'ok.png'].map((file) => ({
      file,
      caption: file === 'ok.png' ? '=cmd|calc' : 'a road',
      categories: [{ name: 'road', probability: 0.9 }],
    }));
    const lines = formatCaptionsCsv(rows).split('\n');
    expect(lines[0]).toBe('file,caption,categories');
    expect(lines[1]).toBe(`"'=HYPERLINK(""http://x"",""y"").png",a road,road`);
    expect(lines[2]).toBe(`"'+1.png",a road,road`);
    expect(lines[3]).toBe(`"'-2.png",a road,road`);
    expect(lines[4]).toBe(`"'@SUM(A1).png",a road,road`);
    expect(lines[5]).toBe(`"'\tx.png",a road,road`);
    expect(lines[6]).toBe(`"plain, ""quoted"".png",a road,road`);
    expect(lines[7]).toBe(`ok.png,"'=cmd|calc",road`);
  });

  it('caption --out x.csv writes an escaped cell for a file named =1+2.png', async () => {
    const folder = path.join(root, 'formula');
    mkdirSync(folder, { recursive: true });
    writeFileSync(path.join(folder, '=1+2.png'), encodePng(benchmarkImage(64, 5)));
    const result = await withEnv({ S2CPNET_CACHE_DIR: path.join(root, 'cache-csv') }, () =>
      run(['caption', '--checkpoint', 'ckpt', 'formula', '--beam', '1', '--max-length', '4', '--out', 'formula.csv']),
    );
    expect(result.err).not.toMatch(/error/);
    expect(result.code).toBe(0);
    const lines = readFileSync(path.join(root, 'formula.csv'), 'utf8').trim().split('\n');
    expect(lines[1]!.startsWith('formula/=1+2.png,')).toBe(true); // a relative path starting with "formula/" is safe
    // Captioning the file from its own folder makes the cell start with "=".
    const inside = await withEnv({ S2CPNET_CACHE_DIR: path.join(root, 'cache-csv') }, () =>
      run(['caption', '--checkpoint', '../ckpt', '=1+2.png', '--beam', '1', '--max-length', '4', '--out', 'inside.csv'], folder),
    );
    expect(inside.code).toBe(0);
    expect(readFileSync(path.join(folder, 'inside.csv'), 'utf8').split('\n')[1]!.startsWith(`"'=1+2.png",`)).toBe(true);
  });
});

describe('mask cache location (item 11f)', () => {
  it('openCaptionMasks warns and runs without a cache when the cache folder cannot be made', async () => {
    const blocker = path.join(root, 'a-file');
    writeFileSync(blocker, 'not a folder');
    const warnings: string[] = [];
    const masks = await openCaptionMasks({ cwd: root, cacheDir: path.join(blocker, 'cache'), warn: (line) => warnings.push(line) });
    expect(masks.cacheDir).toBeNull();
    expect(warnings.join('\n')).toMatch(/cannot create the mask cache folder .*a-file[/\\]cache.*ENOTDIR.*without a cache/);
    const file = path.join(root, 'same-name', 'A', '1.png');
    const view = await masks.view(await decodeImageFile(file), file);
    expect(view.width).toBe(224);
  });

  it('caption caches masks under XDG_CACHE_HOME/s2cpnet, not the working folder, and survives an unwritable one', async () => {
    const work = path.join(root, 'work');
    mkdirSync(work, { recursive: true });
    writeFileSync(path.join(work, '1.png'), encodePng(benchmarkImage(64, 6)));
    // A working folder nothing can be written into, not even by root: its cache folder name is taken by a file.
    writeFileSync(path.join(work, '.s2cpnet-cache'), 'in the way');
    const xdg = path.join(root, 'xdg');
    const ok = await withEnv({ S2CPNET_CACHE_DIR: undefined, XDG_CACHE_HOME: xdg }, () => run(['caption', '--checkpoint', '../ckpt', '1.png', '--beam', '1', '--max-length', '4'], work));
    expect(ok.err).not.toMatch(/error/);
    expect(ok.code).toBe(0);
    const cached = readdirSync(path.join(xdg, 's2cpnet', 'masks'), { recursive: true }).filter((f) => String(f).endsWith('.png'));
    expect(cached).toHaveLength(1);

    const blocked = path.join(root, 'a-file', 'xdg');
    const warned = await withEnv({ S2CPNET_CACHE_DIR: undefined, XDG_CACHE_HOME: blocked }, () => run(['caption', '--checkpoint', '../ckpt', '1.png', '--beam', '1', '--max-length', '4'], work));
    expect(warned.code).toBe(0);
    expect(warned.err).toMatch(/caption: warning: cannot create the mask cache folder .*a-file[/\\]xdg[/\\]s2cpnet[/\\]masks.*ENOTDIR.*without a cache/);
    expect(warned.out).toMatch(/^1\.png\t/);
    expect(existsSync(path.join(blocked))).toBe(false);
  });
});
