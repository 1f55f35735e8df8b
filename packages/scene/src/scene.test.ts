/**
 * openScene on GeoTIFFs written by the tests: georeferencing as GDAL reads it (PixelIsArea and PixelIsPoint, tie
 * point and transformation matrix), tiled / striped / deflated layouts giving the same pixels, 16-bit stretch,
 * nodata, band selection, scenes without georeferencing, and clear errors.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeImageFile } from '@s2cpnet/data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeArrayBuffer } from 'geotiff';
import { openScene } from './scene';
import { planTiles } from './tiles';
import { crsFromDefinition, toWgs84 } from './crs';
import { utmToLonLat, writeTiff, type GeoSpec } from './tiff-writer.test-util';

let dir = '';
const file = (name: string, bytes: Uint8Array | ArrayBuffer) => {
  const full = path.join(dir, name);
  writeFileSync(full, bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
  return full;
};
const UTM10: GeoSpec = { epsg: 32610, tiepoint: { i: 0, j: 0, x: 552000, y: 4182000 }, scale: [0.3048, 0.3048] };

/** A deterministic 8-bit RGB pattern. */
function pattern(width: number, height: number, samples = 3): Uint8Array {
  const data = new Uint8Array(width * height * samples);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let s = 0; s < samples; s++) data[(y * width + x) * samples + s] = (x * 7 + y * 13 + s * 50) % 256;
  return data;
}

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-scene-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('georeferencing, as GDAL reads it', () => {
  it('PixelIsArea tie point + scale: corners land where gdaltransform puts them, and where an independent UTM inverse does', async () => {
    const scene = await openScene(file('area.tif', writeTiff([{ width: 192, height: 128, samples: 3, bits: 8, data: pattern(192, 128), tileSize: 64 }], UTM10)));
    expect(scene.crs?.epsg).toBe(32610);
    expect(scene.rasterType).toBe('area');
    expect(scene.transform).toEqual([552000, 0.3048, 0, 4182000, 0, -0.3048]);
    expect(scene.gsd!.x).toBeCloseTo(0.3048, 12);
    const lonLat = toWgs84(scene.crs!);
    // printf "0 0\n192 128\n64 64\n" | gdaltransform -t_srs EPSG:4326 -output_xy area.tif   (GDAL 3.6)
    const gdal: [number, number, number, number][] = [
      [0, 0, -122.409458402852, 37.7838737953982],
      [192, 128, -122.408796631756, 37.7835188356057],
      [64, 64, -122.409238278268, 37.7836968713596],
    ];
    for (const [col, row, lon, lat] of gdal) {
      const [x, y] = scene.pixelToCrs(col, row);
      const [gotLon, gotLat] = lonLat(x, y);
      expect(Math.abs(gotLon - lon)).toBeLessThan(1e-9);
      expect(Math.abs(gotLat - lat)).toBeLessThan(1e-9);
      const [kLon, kLat] = utmToLonLat(x, y, 10);
      expect(Math.abs(gotLon - kLon)).toBeLessThan(1e-7);
      expect(Math.abs(gotLat - kLat)).toBeLessThan(1e-7);
    }
    await scene.close();
  });

  it('PixelIsPoint: the tie point is a pixel centre, so the corner moves half a pixel up-left (gdalinfo: Origin = (551999.8476, 4182000.1524))', async () => {
    const scene = await openScene(file('point.tif', writeTiff([{ width: 192, height: 128, samples: 3, bits: 8, data: pattern(192, 128), tileSize: 64 }], { ...UTM10, rasterType: 'point' })));
    expect(scene.rasterType).toBe('point');
    expect(scene.transform![0]).toBeCloseTo(551999.8476, 9);
    expect(scene.transform![3]).toBeCloseTo(4182000.1524, 9);
    // printf "0 0\n192 128\n" | gdaltransform -t_srs EPSG:4326 -output_xy point.tif
    const [lon, lat] = toWgs84(scene.crs!)(...scene.pixelToCrs(0, 0));
    expect(lon).toBeCloseTo(-122.40946012258, 9);
    expect(lat).toBeCloseTo(37.7838751776157, 9);
    const [lon2, lat2] = toWgs84(scene.crs!)(...scene.pixelToCrs(192, 128));
    expect(lon2).toBeCloseTo(-122.408798351463, 9);
    expect(lat2).toBeCloseTo(37.7835202178327, 9);
    await scene.close();
  });

  it('a rotated ModelTransformation with PixelIsPoint in a southern UTM zone (gdalinfo corner coordinates)', async () => {
    const transformation = [0.5, 0.1, 0, 300000, 0.1, -0.5, 0, 8900000, 0, 0, 0, 0, 0, 0, 0, 1];
    const scene = await openScene(file('rot.tif', writeTiff([{ width: 40, height: 30, samples: 1, bits: 8, data: new Uint8Array(1200) }], { epsg: 32733, rasterType: 'point', transformation })));
    // gdalinfo rot.tif: GeoTransform = 299999.7, 0.5, 0.1 / 8900000.2, 0.1, -0.5; Lower Right (300022.700, 8899989.200)
    const t = scene.transform!;
    [299999.7, 0.5, 0.1, 8900000.2, 0.1, -0.5].forEach((v, i) => expect(t[i]).toBeCloseTo(v, 9));
    expect(scene.pixelToCrs(40, 30).map((v) => Math.round(v * 1000) / 1000)).toEqual([300022.7, 8899989.2]);
    // printf "0 0\n40 30\n" | gdaltransform -t_srs EPSG:4326 -output_xy rot.tif
    const [lon, lat] = toWgs84(scene.crs!)(...scene.pixelToCrs(40, 30));
    expect(lon).toBeCloseTo(13.1759060602425, 9);
    expect(lat).toBeCloseTo(-9.94616972019688, 9);
    const [kLon, kLat] = utmToLonLat(...scene.pixelToCrs(40, 30), 33, true);
    expect(Math.abs(lon - kLon) + Math.abs(lat - kLat)).toBeLessThan(1e-7);
    expect(scene.gsd!.x).toBeCloseTo(Math.hypot(0.5, 0.1), 12);
    await scene.close();
  });

  it('a geographic (EPSG:4326) scene: ground sample distance in metres at its centre', async () => {
    const scene = await openScene(file('geo.tif', writeTiff([{ width: 10, height: 10, samples: 3, bits: 8, data: pattern(10, 10) }], { epsg: 4326, geographic: true, tiepoint: { i: 0, j: 0, x: 10, y: 0.00005 }, scale: [0.00001, 0.00001] })));
    expect(scene.crs?.epsg).toBe(4326);
    // 1e-5 degree at the equator: 1.113 m along longitude, 1.106 m along latitude (WGS 84).
    expect(scene.gsd!.x).toBeCloseTo(1.1132, 3);
    expect(scene.gsd!.y).toBeCloseTo(1.1057, 3);
    await scene.close();
  });

  it('a scene without georeferencing: no CRS, pixel coordinates, and --gsd cannot be used', async () => {
    const scene = await openScene(file('plain.tif', writeTiff([{ width: 50, height: 40, samples: 3, bits: 8, data: pattern(50, 40) }])));
    expect(scene.crs).toBeNull();
    expect(scene.transform).toBeNull();
    expect(scene.gsd).toBeNull();
    expect(scene.pixelToCrs(3, 4)).toEqual([3, 4]);
    expect(() => planTiles(scene, { tile: 16, gsd: 0.3 })).toThrow(/--gsd: the scene has no georeferencing/);
    await scene.close();
  });

  it('a CRS proj4 is not given here needs --source-crs; WKT or a proj4 string then places the scene', async () => {
    const bytes = writeTiff([{ width: 20, height: 20, samples: 3, bits: 8, data: pattern(20, 20) }], { ...UTM10, epsg: 2154 });
    const lambert = file('lambert.tif', bytes);
    await expect(openScene(lambert)).rejects.toThrow(/lambert\.tif.*EPSG:2154, which is not built in.*--source-crs/);
    const userDefined = file('user.tif', writeTiff([{ width: 20, height: 20, samples: 3, bits: 8, data: pattern(20, 20) }], { ...UTM10, epsg: 32767 }));
    await expect(openScene(userDefined)).rejects.toThrow(/user-defined.*--source-crs/);
    const wkt =
      'PROJCS["WGS 84 / UTM zone 10N",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],' +
      'PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",-123],PARAMETER["scale_factor",0.9996],PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["metre",1]]';
    const scene = await openScene(userDefined, { sourceCrs: wkt });
    expect(scene.crs?.name).toBe('WGS 84 / UTM zone 10N');
    const [lon, lat] = toWgs84(scene.crs!)(...scene.pixelToCrs(0, 0));
    expect(lon).toBeCloseTo(-122.409458402852, 9);
    expect(lat).toBeCloseTo(37.7838737953982, 9);
    await scene.close();
    const viaProj4 = await openScene(userDefined, { sourceCrs: '+proj=utm +zone=10 +datum=WGS84 +units=m +no_defs' });
    expect(toWgs84(viaProj4.crs!)(552000, 4182000)[0]).toBeCloseTo(-122.409458402852, 9);
    await viaProj4.close();
    expect(() => crsFromDefinition('EPSG:2154')).toThrow(/--source-crs: EPSG:2154 is not built in/);
    expect(crsFromDefinition('EPSG:32733').proj4).toContain('+south');
  });

  it('reads GeoTIFFs written by geotiff itself (striped, with GeoKeys)', async () => {
    const values = pattern(30, 20, 3);
    const buffer = writeArrayBuffer(values, {
      width: 30,
      height: 20,
      SamplesPerPixel: 3,
      ModelPixelScale: [0.3048, 0.3048, 0],
      ModelTiepoint: [0, 0, 0, 552000, 4182000, 0],
      ProjectedCSTypeGeoKey: 32610,
      GTModelTypeGeoKey: 1,
      GTRasterTypeGeoKey: 1,
    });
    const scene = await openScene(buffer);
    expect(scene.crs?.epsg).toBe(32610);
    expect(scene.transform).toEqual([552000, 0.3048, 0, 4182000, 0, -0.3048]);
    const read = await scene.readWindow([0, 0, 30, 20], 30, 20);
    expect(Buffer.from(read.data).equals(Buffer.from(values))).toBe(true);
    await scene.close();
  });
});

describe('reading windows', () => {
  it('tiled, striped and deflated files give the same pixels, equal to the source, for windows across block edges', async () => {
    const data = pattern(150, 100);
    const variants = [
      file('tiled.tif', writeTiff([{ width: 150, height: 100, samples: 3, bits: 8, data, tileSize: 32 }], UTM10)),
      file('tiled-deflate.tif', writeTiff([{ width: 150, height: 100, samples: 3, bits: 8, data, tileSize: 64, deflate: true }], UTM10)),
      file('striped.tif', writeTiff([{ width: 150, height: 100, samples: 3, bits: 8, data, rowsPerStrip: 7 }], UTM10)),
      file('striped-deflate.tif', writeTiff([{ width: 150, height: 100, samples: 3, bits: 8, data, rowsPerStrip: 1, deflate: true }], UTM10)),
    ];
    const window = [20, 30, 95, 81] as const;
    const expected = new Uint8Array(75 * 51 * 3);
    for (let y = 0; y < 51; y++) expected.set(data.subarray(((30 + y) * 150 + 20) * 3, ((30 + y) * 150 + 95) * 3), y * 75 * 3);
    for (const variant of variants) {
      const scene = await openScene(variant);
      const read = await scene.readWindow(window, 75, 51);
      expect(Buffer.from(read.data).equals(Buffer.from(expected)), variant).toBe(true);
      expect(read.nodataFraction).toBe(0);
      await scene.close();
    }
    const tiled = await openScene(variants[0]!);
    const striped = await openScene(variants[2]!);
    expect(tiled.layout).toBe('tiled');
    expect(striped.layout).toBe('striped');
    // Resampled reads agree too.
    const a = await tiled.readWindow([0, 0, 150, 100], 48, 32);
    const b = await striped.readWindow([0, 0, 150, 100], 48, 32);
    expect(Buffer.from(a.data).equals(Buffer.from(b.data))).toBe(true);
    // Past the scene's edge the window is black.
    const edge = await tiled.readWindow([140, 90, 160, 110], 20, 20);
    expect(edge.data[(19 * 20 + 19) * 3]).toBe(0);
    expect(edge.data[0]).toBe(data[(90 * 150 + 140) * 3]);
    await tiled.close();
    await striped.close();
  });

  it('YCbCr JPEG-compressed tiles (the usual COG) are converted to RGB as GDAL decodes them', async () => {
    // Fixtures made with GDAL 3.6 from a synthetic 256 px image (benchmarkImage(256, 7) of @s2cpnet/data):
    //   gdal_translate -a_srs EPSG:32610 -a_ullr 552000 4182000 552078.0288 4181921.9712 -co COMPRESS=JPEG \
    //     -co PHOTOMETRIC=YCBCR -co TILED=YES -co BLOCKXSIZE=128 -co BLOCKYSIZE=128 -co JPEG_QUALITY=90 syn.png ycbcr-jpeg.tif
    //   gdal_translate -srcwin 64 32 64 64 -of PNG ycbcr-jpeg.tif ycbcr-jpeg.gdal-64-32-64x64.png
    const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'testing', 'fixtures');
    const scene = await openScene(path.join(fixtures, 'ycbcr-jpeg.tif'));
    expect(scene.colour).toBe('rgb');
    expect(scene.crs?.epsg).toBe(32610);
    const read = await scene.readWindow([64, 32, 128, 96], 64, 64);
    const gdal = await decodeImageFile(path.join(fixtures, 'ycbcr-jpeg.gdal-64-32-64x64.png'));
    let sum = 0;
    let max = 0;
    for (let i = 0; i < gdal.data.length; i++) {
      const d = Math.abs(gdal.data[i]! - read.data[i]!);
      sum += d;
      max = Math.max(max, d);
    }
    // Two JPEG decoders (IDCT and chroma upsampling differ): 0.16 mean and 6 max measured.
    expect(sum / gdal.data.length).toBeLessThan(0.5);
    expect(max).toBeLessThanOrEqual(10);
    await scene.close();
    await expect(openScene(path.join(fixtures, 'ycbcr-jpeg.tif'), { bands: [1, 2, 3] })).rejects.toThrow('stores colour as YCbCr, read as one RGB image: band selection does not apply');
  });

  it('16-bit data is stretched linearly between the 2nd and 98th percentile of each band', async () => {
    const width = 100;
    const height = 100;
    const data = new Uint16Array(width * height * 3);
    // Band 1 runs 0..9999 over the pixels; bands 2 and 3 are band 1 times 2 and plus 1000.
    for (let p = 0; p < width * height; p++) {
      data[p * 3] = p;
      data[p * 3 + 1] = 2 * p;
      data[p * 3 + 2] = p + 1000;
    }
    const scene = await openScene(file('sixteen.tif', writeTiff([{ width, height, samples: 3, bits: 16, data, tileSize: 32 }], UTM10)));
    expect(scene.bitsPerSample).toBe(16);
    // 10,000 pixels, all read (a small scene): percentiles 2 and 98 are the values at ranks round(0.02 * 9999) = 200
    // and round(0.98 * 9999) = 9799 of the sorted values.
    expect(scene.stretch).toEqual([
      { low: 200, high: 9799 },
      { low: 400, high: 19598 },
      { low: 1200, high: 10799 },
    ]);
    const read = await scene.readWindow([0, 0, 100, 100], 100, 100);
    const at = (p: number, c: number) => read.data[p * 3 + c];
    expect(at(0, 0)).toBe(0); // below the low percentile: clipped
    expect(at(9999, 0)).toBe(255);
    expect(at(4999, 0)).toBe(Math.round(((4999 - 200) * 255) / (9799 - 200)));
    expect(at(4999, 1)).toBe(Math.round(((9998 - 400) * 255) / (19598 - 400)));
    await scene.close();
  });

  it('the 16-bit stretch of a COG comes from its smallest overview; a big scene without one is sampled, never read whole', async () => {
    const full = new Uint16Array(64 * 64).map((_, i) => 5000 + (i % 64));
    const overview = new Uint16Array(64 * 64).fill(0).map((_, i) => 100 + (i % 100));
    const scene = await openScene(
      file('cog16.tif', writeTiff([{ width: 128, height: 128, samples: 1, bits: 16, data: new Uint16Array(128 * 128).map((_, i) => full[i % full.length]!), tileSize: 32 }, { width: 64, height: 64, samples: 1, bits: 16, data: overview, tileSize: 32 }], UTM10)),
    );
    expect(scene.overviews).toBe(1);
    // From the overview's values (100..199), not the full image's (5000..5063).
    expect(scene.stretch![0]!.low).toBeGreaterThanOrEqual(100);
    expect(scene.stretch![0]!.high).toBeLessThan(200);
    await scene.close();
  });

  it('nodata pixels become black and are counted; tiles past the edge do not count padding as nodata', async () => {
    const data = pattern(64, 64);
    for (let y = 0; y < 64; y++) for (let x = 0; x < 32; x++) data.fill(0, (y * 64 + x) * 3, (y * 64 + x) * 3 + 3);
    const scene = await openScene(file('nodata.tif', writeTiff([{ width: 64, height: 64, samples: 3, bits: 8, data, tileSize: 32 }], UTM10, '0')));
    expect(scene.nodata).toBe(0);
    expect((await scene.readWindow([0, 0, 64, 64], 64, 64)).nodataFraction).toBe(0.5);
    expect((await scene.readWindow([0, 0, 32, 64], 32, 64)).nodataFraction).toBe(1);
    expect((await scene.readWindow([32, 0, 96, 64], 64, 64)).nodataFraction).toBe(0);
    await scene.close();
    const override = await openScene(path.join(dir, 'nodata.tif'), { nodata: 255 });
    expect(override.nodata).toBe(255);
    expect((await override.readWindow([0, 0, 64, 64], 64, 64)).nodataFraction).toBe(0);
    await override.close();
  });

  it('band selection: --bands 4,3,2 of a 4-band scene, one band as grey, and out-of-range bands named with what exists', async () => {
    const data = new Uint8Array(8 * 8 * 4);
    for (let p = 0; p < 64; p++) data.set([10, 20, 30, 40], p * 4);
    const four = file('four.tif', writeTiff([{ width: 8, height: 8, samples: 4, bits: 8, data }], UTM10));
    const reversed = await openScene(four, { bands: [4, 3, 2] });
    expect(Array.from((await reversed.readWindow([0, 0, 8, 8], 8, 8)).data.slice(0, 3))).toEqual([40, 30, 20]);
    await reversed.close();
    const defaults = await openScene(four);
    expect(defaults.bands).toEqual([1, 2, 3]);
    expect(Array.from((await defaults.readWindow([0, 0, 8, 8], 8, 8)).data.slice(0, 3))).toEqual([10, 20, 30]);
    await defaults.close();
    const grey = await openScene(four, { bands: [4] });
    expect(Array.from((await grey.readWindow([0, 0, 8, 8], 8, 8)).data.slice(0, 6))).toEqual([40, 40, 40, 40, 40, 40]);
    await grey.close();
    await expect(openScene(four, { bands: [1, 2, 5] })).rejects.toThrow(/--bands: band 5 is out of range: expected 1 to 4 \(the scene has 4 bands\)/);
    await expect(openScene(four, { bands: [1, 2] })).rejects.toThrow(/--bands: expected one band \(grey\) or three/);
  });

  it('bad inputs: a missing file, a folder, a file that is not a TIFF, windows outside the scene', async () => {
    await expect(openScene(path.join(dir, 'missing.tif'))).rejects.toThrow(/missing\.tif.*no such file/);
    await expect(openScene(dir)).rejects.toThrow(/expected a GeoTIFF file, found a folder/);
    const png = file('not-a-tiff.tif', new TextEncoder().encode('this is not an image at all, just text'));
    await expect(openScene(png)).rejects.toThrow(/not-a-tiff\.tif.*not a TIFF/);
    const scene = await openScene(file('small.tif', writeTiff([{ width: 8, height: 8, samples: 3, bits: 8, data: pattern(8, 8) }])));
    await expect(scene.readWindow([8, 0, 16, 8], 8, 8)).rejects.toThrow(/outside the 8x8 scene/);
    await expect(scene.readWindow([0, 0, 0, 8], 8, 8)).rejects.toThrow(/x1 > x0/);
    await scene.close();
  });
});

describe('planTiles', () => {
  it('clamps the last row and column to the scene edge; 10,000 px at 256 px is 40 x 40 = 1,600 tiles', () => {
    const plan = planTiles({ width: 10_000, height: 10_000, gsd: null });
    expect(plan.columns * plan.rows).toBe(1600);
    const last = plan.tiles.at(-1)!;
    expect(last.window).toEqual([9744, 9744, 10_000, 10_000]);
    // 39 tiles of 256 px cover 9,984 px; the 40th is moved back 240 px to end at the edge.
    expect(plan.tiles[38]!.window).toEqual([9728, 0, 9984, 256]);
    expect(plan.tiles[39]!.window).toEqual([9744, 0, 10_000, 256]);
    const small = planTiles({ width: 100, height: 300, gsd: null }, { tile: 128 });
    expect(small.tiles.map((t) => t.window)).toEqual([
      [0, 0, 100, 128],
      [0, 128, 100, 256],
      [0, 172, 100, 300],
    ]);
    expect(small.tiles[0]!.readWindow).toEqual([0, 0, 128, 128]);
  });

  it('overlap and --gsd: a tile covers tile * gsd / scene gsd source pixels', () => {
    const overlapped = planTiles({ width: 512, height: 256, gsd: null }, { tile: 256, overlap: 64 });
    expect(overlapped.tiles.map((t) => t.window[0])).toEqual([0, 192, 256]);
    const resampled = planTiles({ width: 2000, height: 1000, gsd: { x: 0.15, y: 0.15 } }, { tile: 256, gsd: 0.3 });
    expect(resampled.span).toEqual({ x: 512, y: 512 });
    expect(resampled.columns).toBe(4);
    expect(resampled.tiles[0]!.window).toEqual([0, 0, 512, 512]);
    expect(() => planTiles({ width: 10, height: 10, gsd: null }, { tile: 16, overlap: 16 })).toThrow(/--overlap/);
  });
});
