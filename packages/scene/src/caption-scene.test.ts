/**
 * captionScene on a georeferenced mosaic of UCM tiles in UTM zone 10N: when tiles align with the mosaic's cells the
 * captions equal those of the source tiles; tile polygons land where GDAL and an independent UTM inverse put them;
 * tiles are read batch by batch (never the whole scene); nodata tiles are skipped; no tensor leaks; GeoJSON and CSV.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '@s2cpnet/core/testing';
import { decodeImageFile, encodePng, resizeBilinear, type RgbImage } from '@s2cpnet/data';
import { loadCaptioner, type Captioner } from '@s2cpnet/model';
import { sharedPath, skippedBecause } from '../../../scripts/shared-dir';
import { captionScene, isSkippedTile, type SceneCaptioner } from './caption-scene';
import { openScene, type Scene } from './scene';
import { sceneToCsv, sceneToGeoJSON } from './writers';
import { mosaic, utmToLonLat, writeTiff, type GeoSpec } from './tiff-writer.test-util';
import { saveTinyCheckpoint } from '../../model/src/tiny-checkpoint.test-util';

const UCM = sharedPath('data/ucm/images');
const CELL = 64;
const COLUMNS = 3;
const ROWS = 2;
const UTM10: GeoSpec = { epsg: 32610, tiepoint: { i: 0, j: 0, x: 552000, y: 4182000 }, scale: [0.3048, 0.3048] };

let dir = '';
let captioner: Captioner;
let cells: string[] = [];
let mosaicFile = '';

beforeAll(async () => {
  await useBackend('cpu');
  dir = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-caption-scene-'));
  await saveTinyCheckpoint(path.join(dir, 'ckpt'), { words: 'a road river tree house car green field many some'.split(' ') });
  captioner = await loadCaptioner(path.join(dir, 'ckpt'), { cacheDir: false, batchSize: 4, beam: 2 });
  if (!UCM) return;
  // Six UCM tiles (different classes), shrunk to 64 px and saved as PNG: the "source tiles".
  const images: RgbImage[] = [];
  for (const id of [1, 331, 661, 1001, 1331, 1661]) {
    const tile = resizeBilinear(await decodeImageFile(path.join(UCM, `${id}.jpg`)), CELL, CELL);
    images.push(tile);
    const cell = path.join(dir, `cell-${cells.length}.png`);
    writeFileSync(cell, encodePng(tile));
    cells.push(cell);
  }
  const scene = mosaic(images, COLUMNS, CELL);
  mosaicFile = path.join(dir, 'mosaic.tif');
  writeFileSync(mosaicFile, writeTiff([{ width: scene.width, height: scene.height, samples: 3, bits: 8, data: scene.data, tileSize: 32, deflate: true }], UTM10));
}, 120_000);

afterAll(() => {
  captioner?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.runIf(UCM)(`captionScene on a UTM mosaic of UCM tiles${UCM ? '' : ` (${skippedBecause('data/ucm/images')})`}`, () => {
  it('captions equal those of the source tiles when tiles align (8-bit, no resampling, no overlap)', async () => {
    const expected = await captioner.caption(cells);
    const progress: [number, number][] = [];
    const result = await captionScene(captioner, mosaicFile, { tile: CELL, batchSize: 4, onProgress: (d, t) => progress.push([d, t]) });
    expect(result.tiles.map((t) => [t.row, t.col, t.window])).toEqual([
      [0, 0, [0, 0, 64, 64]],
      [0, 1, [64, 0, 128, 64]],
      [0, 2, [128, 0, 192, 64]],
      [1, 0, [0, 64, 64, 128]],
      [1, 1, [64, 64, 128, 128]],
      [1, 2, [128, 64, 192, 128]],
    ]);
    expect(result.tiles.map((t) => t.caption)).toEqual(expected.map((e) => e.caption));
    expect(result.tiles.map((t) => t.categories)).toEqual(expected.map((e) => e.categories));
    expect(new Set(expected.map((e) => e.caption)).size).toBeGreaterThan(1); // the check can tell tiles apart
    expect(progress).toEqual([
      [4, 6],
      [6, 6],
    ]);
    expect(result.coordinates).toBe('wgs84');
    expect(result.skipped).toEqual([]);
  });

  it('tile polygons land where gdaltransform and an independent UTM inverse put the tile corners', async () => {
    const result = await captionScene(captioner, mosaicFile, { tile: CELL, previewSize: 0 });
    // gdaltransform -t_srs EPSG:4326 -output_xy mosaic.tif  (GDAL 3.6; pixel/line in, lon/lat out), for the corners of
    // tile (row 1, col 1): pixels 64 64, 64 128, 128 128, 128 64
    const gdal: Record<string, [number, number]> = {
      '64 64': [-122.409238278268, 37.7836968713596],
      '64 128': [-122.409239677721, 37.7835210578044],
      '128 128': [-122.409018154733, 37.7835199469133],
      '128 64': [-122.409016754755, 37.7836957604615],
    };
    const tile = result.tiles.find((t) => t.row === 1 && t.col === 1)!;
    expect(tile.polygon).toHaveLength(5);
    expect(tile.polygon[4]).toEqual(tile.polygon[0]);
    const corners = ['64 64', '64 128', '128 128', '128 64'];
    corners.forEach((key, k) => {
      expect(Math.abs(tile.polygon[k]![0] - gdal[key]![0])).toBeLessThan(1e-9);
      expect(Math.abs(tile.polygon[k]![1] - gdal[key]![1])).toBeLessThan(1e-9);
    });
    // Every corner of every tile against Krüger's series (Karney 2011), which shares no code with proj4.
    for (const t of result.tiles) {
      const [x0, y0, x1, y1] = t.window;
      const pixels = [
        [x0, y0],
        [x0, y1],
        [x1, y1],
        [x1, y0],
      ];
      pixels.forEach(([col, row], k) => {
        const [lon, lat] = utmToLonLat(552000 + col! * 0.3048, 4182000 - row! * 0.3048, 10);
        expect(Math.abs(t.polygon[k]![0] - lon)).toBeLessThan(1e-7);
        expect(Math.abs(t.polygon[k]![1] - lat)).toBeLessThan(1e-7);
      });
      // Counter-clockwise (RFC 7946): positive signed area in lon/lat.
      let area = 0;
      for (let k = 0; k < 4; k++) area += t.polygon[k]![0] * t.polygon[k + 1]![1] - t.polygon[k + 1]![0] * t.polygon[k]![1];
      expect(area).toBeGreaterThan(0);
    }
    const geojson = sceneToGeoJSON(result);
    expect(geojson.type).toBe('FeatureCollection');
    expect(geojson.s2cpnet.coordinates).toBe('EPSG:4326');
    expect(geojson.features).toHaveLength(6);
    expect(geojson.features[4]!.properties).toMatchObject({ row: 1, col: 1, window: [64, 64, 128, 128], source_crs: 'EPSG:32610', status: 'captioned', caption: tile.caption });
    expect(geojson.features[4]!.geometry.coordinates[0]![0]).toEqual([-122.409238278, 37.783696871]);
    const csv = sceneToCsv(result).trim().split('\n');
    expect(csv[0]).toBe('index,row,col,x0,y0,x1,y1,center_lon,center_lat,caption,categories,status,wkt');
    expect(csv).toHaveLength(7);
    expect(csv[5]).toMatch(/^4,1,1,64,64,128,128,-122\.40912\d*,37\.78360\d*,/);
    expect(csv[5]).toMatch(/,"POLYGON\(\(-122\.409238278 37\.783696871, .*\)\)"$/);
  });

  it('resampling to a coarser --gsd reads bigger windows shrunk to the tile size', async () => {
    const result = await captionScene(captioner, mosaicFile, { tile: 32, gsd: 0.6096, previewSize: 0 });
    expect(result.plan.span).toEqual({ x: 64, y: 64 });
    expect(result.tiles.map((t) => t.window)).toEqual([
      [0, 0, 64, 64],
      [64, 0, 128, 64],
      [128, 0, 192, 64],
      [0, 64, 64, 128],
      [64, 64, 128, 128],
      [128, 64, 192, 128],
    ]);
    expect(sceneToGeoJSON(result).features[0]!.properties.gsd).toBe(0.6096);
  });

  it('leaks no tensors, and builds a preview of the scene from the tiles it reads', async () => {
    await captionScene(captioner, mosaicFile, { tile: CELL, previewSize: 0 });
    const before = tf.memory().numTensors;
    const result = await captionScene(captioner, mosaicFile, { tile: CELL, previewSize: 96 });
    expect(tf.memory().numTensors).toBe(before);
    expect(result.preview).toMatchObject({ width: 96, height: 64 });
    // The preview is the mosaic at half size: its pixels are the scene's.
    const scene = await openScene(mosaicFile);
    const full = await scene.readWindow([0, 0, 192, 128], 192, 128);
    await scene.close();
    expect(Array.from(result.preview!.data.slice(0, 3))).toEqual(Array.from(full.data.slice((1 * 192 + 1) * 3, (1 * 192 + 1) * 3 + 3)));
  });
});

/** A captioner that records what it is given, and answers from the mean brightness. */
function recordingCaptioner(events: string[]): SceneCaptioner {
  return {
    inputSize: 16,
    async caption(inputs) {
      const list = (Array.isArray(inputs) ? inputs : [inputs]) as RgbImage[];
      events.push(`caption ${list.length}`);
      return list.map((image) => {
        const mean = image.data.reduce((s, v) => s + v, 0) / image.data.length;
        return { caption: `mean ${Math.round(mean)}`, categories: [{ name: 'tree', probability: mean / 255 }], grid: 1 };
      });
    },
  };
}

/** Wraps a scene so that every window read is logged. */
function spied(scene: Scene, events: string[], windows: number[][]): Scene {
  return {
    ...scene,
    readWindow: (window, w, h, options) => {
      events.push('read');
      windows.push([...window]);
      return scene.readWindow(window, w, h, options);
    },
  };
}

describe('captionScene streaming, nodata, abort and scenes without georeferencing', () => {
  const size = 96;
  let nodataFile = '';
  beforeAll(() => {
    const data = new Uint8Array(size * size * 3);
    for (let p = 0; p < size * size; p++) data.fill(10 + (p % 200), p * 3, p * 3 + 3);
    // The top-left 32 x 32 tile is nodata (0).
    for (let y = 0; y < 32; y++) data.fill(0, y * size * 3, (y * size + 32) * 3);
    nodataFile = path.join(dir, 'nodata.tif');
    writeFileSync(nodataFile, writeTiff([{ width: size, height: size, samples: 3, bits: 8, data, tileSize: 16 }], UTM10, '0'));
  });

  it('reads one batch of windows at a time, each no bigger than a tile, and skips mostly-nodata tiles without captioning them', async () => {
    const events: string[] = [];
    const windows: number[][] = [];
    const scene = spied(await openScene(nodataFile), events, windows);
    const onTile: string[] = [];
    const result = await captionScene(recordingCaptioner(events), scene, { tile: 32, batchSize: 4, onTile: (t) => void onTile.push(isSkippedTile(t) ? `skip ${t.index}` : `tile ${t.index}`) });
    await scene.close();
    // 9 tiles, batches of 4: the first batch has the nodata tile, so 3 are captioned.
    expect(events).toEqual(['read', 'read', 'read', 'read', 'caption 3', 'read', 'read', 'read', 'read', 'caption 4', 'read', 'caption 1']);
    expect(windows.every(([x0, y0, x1, y1]) => x1! - x0! === 32 && y1! - y0! === 32)).toBe(true);
    expect(result.skipped).toMatchObject([{ index: 0, reason: 'nodata', nodataFraction: 1, window: [0, 0, 32, 32] }]);
    expect(result.tiles).toHaveLength(8);
    expect(onTile).toEqual(['skip 0', ...Array.from({ length: 8 }, (_, i) => `tile ${i + 1}`)]);
    const geojson = sceneToGeoJSON(result);
    expect(geojson.features[0]!.properties).toMatchObject({ status: 'skipped', skipped: 'nodata', caption: null });
    expect(geojson.s2cpnet).toMatchObject({ captioned: 8, skipped: 1 });
  });

  it('--limit captions the first tiles only; an aborted signal stops between batches', async () => {
    const limited = await captionScene(recordingCaptioner([]), nodataFile, { tile: 32, limit: 2 });
    expect(limited.plan.total).toBe(2);
    expect(limited.tiles.length + limited.skipped.length).toBe(2);
    const controller = new AbortController();
    let batches = 0;
    const stopping: SceneCaptioner = {
      inputSize: 16,
      async caption(inputs) {
        batches++;
        controller.abort();
        return recordingCaptioner([]).caption(inputs);
      },
    };
    await expect(captionScene(stopping, nodataFile, { tile: 32, batchSize: 2, signal: controller.signal })).rejects.toThrow(/interrupted after 2 of 9 tiles/);
    expect(batches).toBe(1);
  });

  it('a scene without georeferencing: polygons in pixels ([column, -row]) and the output says so', async () => {
    const plain = path.join(dir, 'plain.tif');
    writeFileSync(plain, writeTiff([{ width: 64, height: 32, samples: 1, bits: 8, data: new Uint8Array(64 * 32).fill(120) }]));
    const result = await captionScene(recordingCaptioner([]), plain, { tile: 32 });
    expect(result.coordinates).toBe('pixel');
    expect(result.tiles[1]!.polygon).toEqual([
      [32, 0],
      [32, -32],
      [64, -32],
      [64, 0],
      [32, 0],
    ]);
    const geojson = sceneToGeoJSON(result);
    expect(geojson.s2cpnet).toMatchObject({ coordinates: 'pixel', crs: null });
    expect(String(geojson.s2cpnet.note)).toMatch(/no georeferencing/);
    expect(geojson.features[1]!.properties.source_crs).toBeNull();
    expect(sceneToCsv(result).split('\n')[0]).toContain('center_x,center_y');
  });

  it('CSV cells that look like formulas are defused; negative numbers are left as numbers', async () => {
    const plain = path.join(dir, 'plain2.tif');
    writeFileSync(plain, writeTiff([{ width: 32, height: 32, samples: 1, bits: 8, data: new Uint8Array(32 * 32) }]));
    const evil: SceneCaptioner = { inputSize: 16, caption: async (inputs) => (inputs as unknown[]).map(() => ({ caption: '=HYPERLINK("x")', categories: [], grid: 1 })) };
    const csv = sceneToCsv(await captionScene(evil, plain, { tile: 32 }));
    expect(csv.split('\n')[1]).toBe(`0,0,0,0,0,32,32,16,-16,"'=HYPERLINK(""x"")",,captioned,"POLYGON((0 0, 0 -32, 32 -32, 32 0, 0 0))"`);
  });
});

