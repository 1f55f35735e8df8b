/**
 * `s2cpnet caption-scene` on a small UTM GeoTIFF mosaic: --help lists every option with its default, GeoJSON / CSV /
 * HTML outputs, captions identical to `s2cpnet caption` on the source tiles, clear errors and a clean interrupt.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchmarkImage, encodePng, type RgbImage } from '@s2cpnet/data';
import { initBackend } from '../backend';
import { reportError } from '../main';
import type { CommandContext } from '../command';
import { captionCommand } from './caption';
import { CAPTION_SCENE_OPTIONS, captionSceneCommand } from './caption-scene';
// Test-only GeoTIFF writer of @s2cpnet/scene (not published).
import { mosaic, writeTiff } from '../../../scene/src/tiff-writer.test-util';
import { saveTinyCheckpoint } from '../../../model/src/tiny-checkpoint.test-util';

let root = '';

/** Runs a command object in-process the way `main` does (errors become exit codes), collecting its output. */
async function run(command: typeof captionSceneCommand, args: string[], signal = new AbortController().signal) {
  const out: string[] = [];
  const err: string[] = [];
  const context: CommandContext = { stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), isTTY: false, cwd: root, signal };
  let code: number;
  try {
    code = await command.run(args, context);
  } catch (error) {
    code = reportError(error, context);
  }
  return { code, out: out.join(''), err: err.join('') };
}

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-caption-scene-cli-'));
  await initBackend({ backend: 'cpu' });
  await saveTinyCheckpoint(path.join(root, 'ckpt'), { words: 'a road river tree house car green field'.split(' ') });
  // A 2 x 2 mosaic of 64 px synthetic aerial tiles in UTM zone 10N (0.3048 m pixels), and the tiles as PNG files.
  const cells: RgbImage[] = [1, 2, 3, 4].map((seed) => benchmarkImage(64, seed));
  cells.forEach((cell, k) => writeFileSync(path.join(root, `cell-${k}.png`), encodePng(cell)));
  const { data } = mosaic(cells, 2, 64);
  const geo = { epsg: 32610, tiepoint: { i: 0, j: 0, x: 552000, y: 4182000 }, scale: [0.3048, 0.3048] as [number, number] };
  writeFileSync(path.join(root, 'scene.tif'), writeTiff([{ width: 128, height: 128, samples: 3, bits: 8, data, tileSize: 32 }], geo));
  writeFileSync(path.join(root, 'plain.tif'), writeTiff([{ width: 128, height: 128, samples: 3, bits: 8, data, rowsPerStrip: 8 }]));
  writeFileSync(path.join(root, 'not-a-tiff.tif'), 'hello');
}, 120_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('s2cpnet caption-scene', () => {
  it('--help lists every option it accepts, each with its default or "required"', () => {
    const lines = captionSceneCommand.usage.split('\n');
    for (const [flag, spec] of Object.entries(CAPTION_SCENE_OPTIONS)) {
      const start = lines.findIndex((l) => new RegExp(`^\\s+--${flag}(?![\\w-])`).test(l));
      expect(start, `--${flag}`).toBeGreaterThanOrEqual(0);
      const entry = [lines[start]!];
      for (const line of lines.slice(start + 1)) {
        if (!/^\s{6,}\S/.test(line) || /^\s+--/.test(line)) break;
        entry.push(line);
      }
      if (spec.type === 'string') expect(entry.join('\n'), `default of --${flag}`).toMatch(/\[[^\]]+\]/);
    }
  });

  it('writes GeoJSON in WGS84 whose captions equal `s2cpnet caption` on the source tiles, a CSV and an HTML report', async () => {
    const result = await run(captionSceneCommand, ['scene.tif', '--checkpoint', 'ckpt', '--tile', '64', '--batch-size', '3', '--out', 'scene.geojson', '--report', 'scene.html']);
    expect(result.code, result.err).toBe(0);
    expect(result.err).toMatch(/scene\.tif: 128x128 px, tiled, bands 1,2,3 of 3, 8-bit uint, EPSG:32610 \(WGS 84 \/ UTM zone 10N\), 0\.305 m\/px; 4 tiles of 64 px/);
    expect(result.err).toMatch(/caption-scene 3\/4 \(75%\) .*tiles\/s, ETA/);
    expect(result.err).toMatch(/captioned 4 of 4 tiles/);
    const geojson = JSON.parse(readFileSync(path.join(root, 'scene.geojson'), 'utf8'));
    expect(geojson.type).toBe('FeatureCollection');
    expect(geojson.features).toHaveLength(4);
    const [first] = geojson.features;
    expect(first.geometry.type).toBe('Polygon');
    // gdaltransform -t_srs EPSG:4326 -output_xy scene.tif <<< "0 0"
    expect(first.geometry.coordinates[0][0]).toEqual([-122.409458403, 37.783873795]);
    expect(first.properties).toMatchObject({ window: [0, 0, 64, 64], source_crs: 'EPSG:32610', row: 0, col: 0 });

    const captioned = await run(captionCommand, ['cell-0.png', 'cell-1.png', 'cell-2.png', 'cell-3.png', '--checkpoint', 'ckpt', '--out', 'cells.json']);
    expect(captioned.code, captioned.err).toBe(0);
    const cells = JSON.parse(readFileSync(path.join(root, 'cells.json'), 'utf8')) as { caption: string; categories: { name: string; probability: number }[] }[];
    expect(geojson.features.map((f: { properties: { caption: string } }) => f.properties.caption)).toEqual(cells.map((c) => c.caption));
    expect(geojson.features.map((f: { properties: { categories: { name: string }[] } }) => f.properties.categories.map((c) => c.name))).toEqual(cells.map((c) => c.categories.map((k) => k.name)));

    const html = readFileSync(path.join(root, 'scene.html'), 'utf8');
    expect(html).toContain('data:image/png;base64,');
    expect(html.match(/<rect /g)).toHaveLength(4);

    const csv = await run(captionSceneCommand, ['scene.tif', '--checkpoint', 'ckpt', '--tile', '64', '--out', 'scene.csv', '--limit', '2']);
    expect(csv.code, csv.err).toBe(0);
    const lines = readFileSync(path.join(root, 'scene.csv'), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/^0,0,0,0,0,64,64,-122\.\d+,37\.\d+,/);
  });

  it('a scene without georeferencing is captioned, with a warning that positions are pixels', async () => {
    const result = await run(captionSceneCommand, ['plain.tif', '--checkpoint', 'ckpt', '--tile', '64', '--out', 'plain.json']);
    expect(result.code, result.err).toBe(0);
    expect(result.err).toMatch(/no georeferencing: positions in plain\.json are pixels/);
    const geojson = JSON.parse(readFileSync(path.join(root, 'plain.json'), 'utf8'));
    expect(geojson.s2cpnet.coordinates).toBe('pixel');
    expect(geojson.features[3].geometry.coordinates[0][0]).toEqual([64, -64]);
  });

  it('bad inputs: clear messages and exit codes, nothing written', async () => {
    const missing = await run(captionSceneCommand, ['missing.tif', '--checkpoint', 'ckpt', '--out', 'x.geojson']);
    expect(missing.code).toBe(3);
    expect(missing.err).toMatch(/missing\.tif.*no such file/);
    const notTiff = await run(captionSceneCommand, ['not-a-tiff.tif', '--checkpoint', 'ckpt', '--out', 'x.geojson']);
    expect(notTiff.code).toBe(3);
    expect(notTiff.err).toMatch(/not-a-tiff\.tif.*not a TIFF/);
    const badOut = await run(captionSceneCommand, ['scene.tif', '--checkpoint', 'ckpt', '--out', 'x.txt']);
    expect(badOut.code).toBe(2);
    expect(badOut.err).toMatch(/--out: expected a \.geojson, \.json or \.csv file name/);
    const badBand = await run(captionSceneCommand, ['scene.tif', '--checkpoint', 'ckpt', '--out', 'x.geojson', '--bands', '1,2,4']);
    expect(badBand.code).toBe(2);
    expect(badBand.err).toMatch(/--bands: band 4 is out of range: expected 1 to 3/);
    const noGsd = await run(captionSceneCommand, ['plain.tif', '--checkpoint', 'ckpt', '--out', 'x.geojson', '--gsd', '0.3']);
    expect(noGsd.code).toBe(2);
    expect(noGsd.err).toMatch(/--gsd: the scene has no georeferencing/);
    expect(existsSync(path.join(root, 'x.geojson'))).toBe(false);
  });

  it('Ctrl-C stops between batches with exit status 130 and leaves no output file', async () => {
    const controller = new AbortController();
    controller.abort();
    const result = await run(captionSceneCommand, ['scene.tif', '--checkpoint', 'ckpt', '--tile', '32', '--out', 'stopped.geojson'], controller.signal);
    expect(result.code).toBe(130);
    expect(existsSync(path.join(root, 'stopped.geojson'))).toBe(false);
  });
});
