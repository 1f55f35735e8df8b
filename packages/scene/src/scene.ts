/**
 * Opening GeoTIFF / Cloud-Optimized GeoTIFF scenes with the `geotiff` library, and reading windows of them as 8-bit
 * RGB without decoding the whole scene: geotiff fetches only the internal tiles or strips a window touches.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { fromArrayBuffer, fromFile, type GeoTIFF, type GeoTIFFImage } from 'geotiff';
import { ConfigError, InputError, InterruptedError, S2CPNetError } from '@s2cpnet/core';
import { describeFsError, type RgbImage } from '@s2cpnet/data';
import { crsFromDefinition, crsFromEpsg, KNOWN_EPSG_CODES, type SceneCrs } from './crs';

/**
 * The affine transform from pixel corners to CRS coordinates in GDAL's order: `X = t[0] + col * t[1] + row * t[2]`,
 * `Y = t[3] + col * t[4] + row * t[5]`, where (col, row) = (0, 0) is the top-left corner of the top-left pixel.
 */
export type GeoTransform = readonly [number, number, number, number, number, number];

/** A pixel window `[x0, y0, x1, y1]`: columns x0..x1-1 and rows y0..y1-1 of the scene's full-resolution image. */
export type PixelWindow = readonly [number, number, number, number];

/** Per selected band, the raw values mapped to 0 and 255 (a linear stretch), for data that is not 8-bit. */
export type BandStretch = readonly { low: number; high: number }[];

export interface OpenSceneOptions {
  /** 1-based bands to read: one (shown as grey) or three (red, green, blue). Default: 1,2,3 with 3 bands or more, else 1. */
  bands?: readonly number[];
  /** The CRS when the file has none or one proj4 is not given here: `EPSG:N`, a proj4 string or WKT. */
  sourceCrs?: string;
  /** The nodata value, overriding the file's GDAL_NODATA tag. */
  nodata?: number;
  /** Percentiles of the linear stretch for data that is not 8-bit. Default [2, 98]. */
  stretchPercentiles?: readonly [number, number];
  signal?: AbortSignal;
}

/** One window read as RGB; `nodataFraction` is the share of its pixels inside the scene that are nodata. */
export type SceneWindow = RgbImage & { nodataFraction: number };

export interface Scene {
  /** The file, or `<array buffer>`. */
  readonly source: string;
  readonly width: number;
  readonly height: number;
  readonly samplesPerPixel: number;
  readonly bitsPerSample: number;
  readonly sampleFormat: 'uint' | 'int' | 'float';
  /** The 1-based bands read, one or three. */
  readonly bands: readonly number[];
  /** Raw value marking pixels without data (NaN allowed for float data), or null. */
  readonly nodata: number | null;
  /** Internally tiled (COG) or striped. */
  readonly layout: 'tiled' | 'striped';
  /**
   * How pixels become RGB: `bands` (the selected bands, stretched when not 8-bit) or, for YCbCr (JPEG-compressed
   * COGs), palette, CMYK and CIELab files, `rgb`: geotiff's `readRGB` colour conversion to 8-bit RGB.
   */
  readonly colour: 'bands' | 'rgb';
  /** Reduced-resolution images in the file (COG overviews). */
  readonly overviews: number;
  /** The scene's CRS, or null when it has no georeferencing (then coordinates are pixels). */
  readonly crs: SceneCrs | null;
  /** Pixel corner to CRS transform (GDAL order), or null without georeferencing. */
  readonly transform: GeoTransform | null;
  /** GTRasterTypeGeoKey: 'area' (the tie point is a pixel's corner, GDAL's default) or 'point' (its centre). */
  readonly rasterType: 'area' | 'point';
  /** Ground sample distance in metres per pixel along columns (x) and rows (y), or null without a CRS. */
  readonly gsd: { x: number; y: number } | null;
  /** The linear stretch applied to data that is not 8-bit, per band; null for 8-bit data (passed through). */
  readonly stretch: BandStretch | null;
  /** CRS coordinates of a pixel-corner position (pixel coordinates themselves without georeferencing). */
  pixelToCrs(col: number, row: number): [number, number];
  /**
   * Reads `window` (it may reach past the scene's edge: that part is black) resampled to `outWidth` x `outHeight`
   * (bilinear; nearest when the scene has nodata, so that nodata stays exact). Only the tiles or strips it touches
   * are read.
   */
  readWindow(window: PixelWindow, outWidth: number, outHeight: number, options?: { signal?: AbortSignal }): Promise<SceneWindow>;
  /** Closes the file. */
  close(): Promise<void>;
}

/** Raster type GeoKey values (GeoTIFF spec 6.3.1.2). */
const RASTER_PIXEL_IS_POINT = 2;
/** GTModelTypeGeoKey: 1 projected, 2 geographic. */
const MODEL_GEOGRAPHIC = 2;
const USER_DEFINED = 32767;

/** WGS 84 ellipsoid, for metres per degree of geographic scenes. */
const WGS84_A = 6378137;
const WGS84_E2 = 0.00669437999014;

/**
 * Opens a GeoTIFF or COG (a file path or its bytes) without reading its pixels: size, bands, nodata, CRS, the pixel
 * to CRS transform (from ModelTransformation, or ModelTiepoint and ModelPixelScale, shifted half a pixel for
 * PixelIsPoint rasters as GDAL does), the ground sample distance in metres, and, for 16-bit and float data, a
 * linear stretch to 8 bits between the 2nd and 98th percentile of each band (from the smallest overview, else from
 * 64 windows spread over the scene). 8-bit data is passed through unchanged.
 *
 * @example
 * ```ts
 * const scene = await openScene('scene.tif', { bands: [4, 3, 2] });
 * const rgb = await scene.readWindow([0, 0, 256, 256], 256, 256);
 * await scene.close();
 * ```
 */
export async function openScene(source: string | ArrayBuffer | Uint8Array, options: OpenSceneOptions = {}): Promise<Scene> {
  const name = typeof source === 'string' ? path.resolve(source) : '<array buffer>';
  let tiff: GeoTIFF;
  if (typeof source === 'string') {
    try {
      const stat = await fsp.stat(name);
      if (stat.isDirectory()) throw new InputError('expected a GeoTIFF file, found a folder', { file: name });
      const handle = await fsp.open(name, 'r');
      await handle.close();
    } catch (error) {
      if (S2CPNetError.isInstance(error)) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      throw new InputError(code === 'ENOENT' ? 'no such file' : describeFsError(code, 'scene file'), { file: name, cause: error });
    }
    tiff = await wrapped(name, () => fromFile(name, options.signal));
  } else {
    const buffer = source instanceof Uint8Array ? (source.buffer.slice(source.byteOffset, source.byteOffset + source.byteLength) as ArrayBuffer) : source;
    tiff = await wrapped(name, () => fromArrayBuffer(buffer, options.signal));
  }
  try {
    return await describeScene(tiff, name, options);
  } catch (error) {
    await closeQuietly(tiff);
    throw error;
  }
}

async function closeQuietly(tiff: GeoTIFF): Promise<void> {
  try {
    await tiff.close();
  } catch {
    // Closing a file we could not use: nothing more to report.
  }
}

/** Runs a geotiff call, turning its errors about the file into an `InputError` naming it. */
async function wrapped<T>(file: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (S2CPNetError.isInstance(error)) throw error;
    if ((error as Error)?.name === 'AbortError') throw new InterruptedError(`reading ${file} was interrupted`);
    const message = error instanceof Error ? error.message : String(error);
    if (/byte order|magic number|Invalid (TIFF|tiff)|offset is outside the bounds|not a (Big)?TIFF/i.test(message)) {
      throw new InputError(`not a TIFF/GeoTIFF file (${message})`, { file, cause: error });
    }
    throw new InputError(`cannot read this TIFF: ${message}`, { file, cause: error });
  }
}

async function describeScene(tiff: GeoTIFF, name: string, options: OpenSceneOptions): Promise<Scene> {
  const image = await wrapped(name, () => tiff.getImage(0));
  const directory = image.getFileDirectory();
  const width = image.getWidth();
  const height = image.getHeight();
  const samplesPerPixel = image.getSamplesPerPixel();
  const bitsPerSample = image.getBitsPerSample(0);
  const formatCode = image.getSampleFormat(0);
  const sampleFormat = formatCode === 3 ? 'float' : formatCode === 2 ? 'int' : 'uint';
  if (formatCode !== 1 && formatCode !== 2 && formatCode !== 3) throw new InputError(`unsupported sample format ${formatCode}; expected unsigned, signed integer or float samples`, { file: name });
  if (![8, 16, 32, 64].includes(bitsPerSample) || (sampleFormat === 'float' && bitsPerSample < 32)) {
    throw new InputError(`unsupported ${bitsPerSample}-bit ${sampleFormat} samples; expected 8, 16 or 32-bit integers or 32/64-bit floats`, { file: name });
  }
  for (let s = 1; s < samplesPerPixel; s++) {
    if (image.getBitsPerSample(s) !== bitsPerSample || image.getSampleFormat(s) !== formatCode) {
      throw new InputError('bands of different sample types are not supported (every band must have the bit depth and format of band 1)', { file: name });
    }
  }
  const photometric = directory.getValue('PhotometricInterpretation') as number | undefined;
  // Palette (3), CMYK (5), YCbCr (6, the JPEG-compressed COGs) and CIELab (8): geotiff's readRGB converts to 8-bit RGB.
  const colour: 'bands' | 'rgb' = photometric !== undefined && [3, 5, 6, 8].includes(photometric) ? 'rgb' : 'bands';
  if (colour === 'rgb' && options.bands !== undefined) {
    throw new ConfigError('--bands', `${name} stores colour as ${PHOTOMETRIC_NAMES[photometric!]}, read as one RGB image: band selection does not apply`);
  }

  const bands = selectBands(options.bands, samplesPerPixel);
  const nodata = options.nodata ?? image.getGDALNoData();

  const geoKeys = (image.getGeoKeys() ?? {}) as Record<string, unknown>;
  const rasterType = geoKeys.GTRasterTypeGeoKey === RASTER_PIXEL_IS_POINT ? 'point' : 'area';
  const transform = geoTransform(image, rasterType, name);
  let crs: SceneCrs | null = null;
  if (options.sourceCrs !== undefined) {
    if (!transform) throw new ConfigError('--source-crs', `${name} has no georeferencing (no ModelTiepoint/ModelPixelScale or ModelTransformation tag), so a CRS cannot place it`);
    crs = crsFromDefinition(options.sourceCrs);
  } else if (transform) {
    crs = crsFromKeys(geoKeys, name);
  }
  const gsd = transform && crs ? groundSampleDistance(transform, crs, width, height) : null;

  const imageCount = await wrapped(name, () => tiff.getImageCount());
  const layout = directory.hasTag('TileWidth') ? 'tiled' : 'striped';
  const samples = bands.map((b) => b - 1);
  const eightBit = colour === 'rgb' || (bitsPerSample === 8 && sampleFormat === 'uint');
  const stretch = eightBit ? null : await computeStretch(tiff, image, imageCount, samples, nodata, options.stretchPercentiles ?? [2, 98], name, options.signal);

  const pixelToCrs = (col: number, row: number): [number, number] =>
    transform ? [transform[0] + col * transform[1] + row * transform[2], transform[3] + col * transform[4] + row * transform[5]] : [col, row];

  const readWindow = async (window: PixelWindow, outWidth: number, outHeight: number, readOptions: { signal?: AbortSignal } = {}): Promise<SceneWindow> => {
    const [x0, y0, x1, y1] = window;
    if (![x0, y0, x1, y1].every(Number.isInteger) || x1 <= x0 || y1 <= y0) throw new ConfigError('window', `expected integer [x0, y0, x1, y1] with x1 > x0 and y1 > y0, found [${window.join(', ')}]`);
    if (x1 <= 0 || y1 <= 0 || x0 >= width || y0 >= height) throw new ConfigError('window', `[${window.join(', ')}] lies outside the ${width}x${height} scene`);
    if (!Number.isInteger(outWidth) || !Number.isInteger(outHeight) || outWidth < 1 || outHeight < 1) throw new ConfigError('size', `expected a positive integer output size, found ${outWidth}x${outHeight}`);
    if (colour === 'rgb') {
      const rgb = await wrapped(name, () =>
        image.readRGB({ window: [x0, y0, x1, y1], width: outWidth, height: outHeight, interleave: true, resampleMethod: 'bilinear', signal: readOptions.signal ?? options.signal }),
      );
      return toRgb(rgb as unknown as ArrayLike<number>, window, outWidth, outHeight, 3, { width, height, nodata: null, stretch: null });
    }
    const raw = await wrapped(name, () =>
      image.readRasters({
        window: [x0, y0, x1, y1],
        width: outWidth,
        height: outHeight,
        samples,
        interleave: true,
        resampleMethod: nodata === null ? 'bilinear' : 'nearest',
        signal: readOptions.signal ?? options.signal,
      }),
    );
    return toRgb(raw as unknown as ArrayLike<number>, window, outWidth, outHeight, samples.length, { width, height, nodata, stretch });
  };

  return {
    source: name,
    width,
    height,
    samplesPerPixel,
    bitsPerSample,
    sampleFormat,
    bands,
    nodata,
    layout,
    colour,
    overviews: imageCount - 1,
    crs,
    transform,
    rasterType,
    gsd,
    stretch,
    pixelToCrs,
    readWindow,
    close: () => closeQuietly(tiff),
  };
}

const PHOTOMETRIC_NAMES: Record<number, string> = { 3: 'a palette', 5: 'CMYK', 6: 'YCbCr', 8: 'CIELab' };

function selectBands(requested: readonly number[] | undefined, samplesPerPixel: number): number[] {
  if (requested === undefined) return samplesPerPixel >= 3 ? [1, 2, 3] : [1];
  if (requested.length !== 1 && requested.length !== 3) throw new ConfigError('--bands', `expected one band (grey) or three (red,green,blue), found ${requested.length}: ${requested.join(',')}`);
  for (const band of requested) {
    if (!Number.isInteger(band) || band < 1 || band > samplesPerPixel) {
      throw new ConfigError('--bands', `band ${band} is out of range: expected 1 to ${samplesPerPixel} (the scene has ${samplesPerPixel} band${samplesPerPixel === 1 ? '' : 's'})`);
    }
  }
  return [...requested];
}

function geoTransform(image: GeoTIFFImage, rasterType: 'area' | 'point', name: string): GeoTransform | null {
  const directory = image.getFileDirectory();
  const tiepoints = directory.getValue('ModelTiepoint') as ArrayLike<number> | undefined;
  const scale = directory.getValue('ModelPixelScale') as ArrayLike<number> | undefined;
  const matrix = directory.getValue('ModelTransformation') as ArrayLike<number> | undefined;
  let t: [number, number, number, number, number, number] | null = null;
  if (tiepoints && tiepoints.length >= 6 && scale && scale.length >= 2) {
    if (tiepoints.length > 6) throw new InputError(`has ${tiepoints.length / 6} tie points with a pixel scale; expected one (warp ground control points first: gdalwarp IN OUT)`, { file: name });
    const [i, j, , x, y] = Array.from(tiepoints);
    t = [x! - i! * scale[0]!, scale[0]!, 0, y! + j! * scale[1]!, 0, -scale[1]!];
  } else if (matrix && matrix.length >= 12) {
    t = [matrix[3]!, matrix[0]!, matrix[1]!, matrix[7]!, matrix[4]!, matrix[5]!];
  } else if (tiepoints && tiepoints.length >= 6) {
    throw new InputError(`is placed by ${tiepoints.length / 6} ground control points, not an affine transform; warp it first (gdalwarp IN OUT)`, { file: name });
  }
  if (!t) return null;
  if (!t.every(Number.isFinite) || t[1] * t[5] - t[2] * t[4] === 0) throw new InputError(`has a degenerate pixel-to-map transform [${t.join(', ')}]`, { file: name });
  if (rasterType === 'point') {
    // The tie point is the centre of its pixel: the top-left corner is half a pixel up and left (GDAL's reading).
    t[0] -= 0.5 * t[1] + 0.5 * t[2];
    t[3] -= 0.5 * t[4] + 0.5 * t[5];
  }
  return t;
}

function crsFromKeys(keys: Record<string, unknown>, name: string): SceneCrs {
  const projected = keys.ProjectedCSTypeGeoKey as number | undefined;
  const geographic = keys.GeographicTypeGeoKey as number | undefined;
  const code = keys.GTModelTypeGeoKey === MODEL_GEOGRAPHIC ? geographic : (projected ?? geographic);
  const hint = 'give it with --source-crs "<proj4 string or WKT>" (gdalsrsinfo -o proj4 FILE prints it)';
  if (code === undefined || code === USER_DEFINED) {
    const citation = (keys.GTCitationGeoKey ?? keys.PCSCitationGeoKey ?? keys.GeogCitationGeoKey) as string | undefined;
    throw new InputError(`is georeferenced but its CRS is ${code === USER_DEFINED ? 'user-defined' : 'not given by an EPSG code'}${citation ? ` (${JSON.stringify(citation)})` : ''}; ${hint}`, { file: name });
  }
  const crs = crsFromEpsg(code);
  if (!crs) throw new InputError(`has CRS EPSG:${code}, which is not built in (built in: ${KNOWN_EPSG_CODES}); ${hint}`, { file: name });
  return crs;
}

function groundSampleDistance(t: GeoTransform, crs: SceneCrs, width: number, height: number): { x: number; y: number } {
  const alongColumns = Math.hypot(t[1], t[4]);
  const alongRows = Math.hypot(t[2], t[5]);
  if (!crs.geographic) return { x: alongColumns * crs.metresPerUnit!, y: alongRows * crs.metresPerUnit! };
  // Degrees to metres at the scene's centre on the WGS 84 ellipsoid (good to a fraction of a percent for a scene).
  const latitude = ((t[3] + (width / 2) * t[4] + (height / 2) * t[5]) * Math.PI) / 180;
  const s2 = Math.sin(latitude) ** 2;
  const perDegreeLon = ((Math.PI / 180) * WGS84_A * Math.cos(latitude)) / Math.sqrt(1 - WGS84_E2 * s2);
  const perDegreeLat = ((Math.PI / 180) * WGS84_A * (1 - WGS84_E2)) / (1 - WGS84_E2 * s2) ** 1.5;
  return { x: Math.hypot(t[1] * perDegreeLon, t[4] * perDegreeLat), y: Math.hypot(t[2] * perDegreeLon, t[5] * perDegreeLat) };
}

function isNodata(value: number, nodata: number | null): boolean {
  if (Number.isNaN(value)) return true;
  return nodata !== null && value === nodata;
}

/**
 * The stretch of data that is not 8-bit: per band, the given percentiles of its valid values, read from the smallest
 * overview when the file has one, else from an 8 x 8 grid of 64 px windows (never the whole scene).
 */
async function computeStretch(
  tiff: GeoTIFF,
  image: GeoTIFFImage,
  imageCount: number,
  samples: readonly number[],
  nodata: number | null,
  percentiles: readonly [number, number],
  name: string,
  signal?: AbortSignal,
): Promise<BandStretch> {
  const [lowP, highP] = percentiles;
  if (!(lowP >= 0 && highP <= 100 && lowP < highP)) throw new ConfigError('stretchPercentiles', `expected 0 <= low < high <= 100, found [${lowP}, ${highP}]`);
  const values: number[][] = samples.map(() => []);
  const collect = (raw: ArrayLike<number>) => {
    for (let p = 0; p < raw.length / samples.length; p++) {
      const pixel = samples.map((_, b) => raw[p * samples.length + b]!);
      if (pixel.every((v) => isNodata(v, nodata))) continue;
      pixel.forEach((v, b) => {
        if (Number.isFinite(v)) values[b]!.push(v);
      });
    }
  };
  let overview: GeoTIFFImage | null = null;
  for (let i = 1; i < imageCount; i++) {
    const candidate = await wrapped(name, () => tiff.getImage(i));
    if (candidate.getSamplesPerPixel() !== image.getSamplesPerPixel() || candidate.getWidth() < 64) continue;
    if (!overview || candidate.getWidth() < overview.getWidth()) overview = candidate;
  }
  if (overview && overview.getWidth() * overview.getHeight() <= 4_000_000) {
    collect((await wrapped(name, () => overview!.readRasters({ samples: [...samples], interleave: true, signal }))) as unknown as ArrayLike<number>);
  } else {
    const width = image.getWidth();
    const height = image.getHeight();
    const side = Math.min(64, width, height);
    const grid = width * height <= 512 * 512 ? 1 : 8;
    for (let gy = 0; gy < grid; gy++) {
      for (let gx = 0; gx < grid; gx++) {
        const x0 = grid === 1 ? 0 : Math.round(((width - side) * gx) / (grid - 1));
        const y0 = grid === 1 ? 0 : Math.round(((height - side) * gy) / (grid - 1));
        const window = grid === 1 ? [0, 0, width, height] : [x0, y0, x0 + side, y0 + side];
        collect((await wrapped(name, () => image.readRasters({ window, samples: [...samples], interleave: true, signal }))) as unknown as ArrayLike<number>);
      }
    }
  }
  return values.map((band) => {
    if (band.length === 0) return { low: 0, high: 1 };
    const sorted = Float64Array.from(band).sort();
    const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round((p / 100) * (sorted.length - 1))))]!;
    const low = at(lowP);
    const high = at(highP);
    return { low, high: high > low ? high : low + 1 };
  });
}

function toRgb(
  raw: ArrayLike<number>,
  window: PixelWindow,
  outWidth: number,
  outHeight: number,
  bandCount: number,
  scene: { width: number; height: number; nodata: number | null; stretch: BandStretch | null },
): SceneWindow {
  const { nodata, stretch } = scene;
  const data = new Uint8Array(outWidth * outHeight * 3);
  const [x0, y0, x1, y1] = window;
  // Output pixels whose centre falls inside the scene: padding past the edge is not counted as nodata.
  const insideX = (i: number) => x0 + ((i + 0.5) * (x1 - x0)) / outWidth < scene.width && x0 + ((i + 0.5) * (x1 - x0)) / outWidth >= 0;
  const insideY = (j: number) => y0 + ((j + 0.5) * (y1 - y0)) / outHeight < scene.height && y0 + ((j + 0.5) * (y1 - y0)) / outHeight >= 0;
  const columnsInside = Array.from({ length: outWidth }, (_, i) => insideX(i));
  let inside = 0;
  let missing = 0;
  const scale = stretch?.map((s) => 255 / (s.high - s.low));
  for (let j = 0; j < outHeight; j++) {
    const rowInside = insideY(j);
    for (let i = 0; i < outWidth; i++) {
      const p = j * outWidth + i;
      const at = p * bandCount;
      const counted = rowInside && columnsInside[i]!;
      if (counted) inside++;
      let allMissing = true;
      for (let b = 0; b < bandCount; b++) if (!isNodata(raw[at + b]!, nodata)) allMissing = false;
      if (allMissing && (nodata !== null || Number.isNaN(raw[at]!))) {
        if (counted) missing++;
        continue; // stays black
      }
      for (let c = 0; c < 3; c++) {
        const b = bandCount === 1 ? 0 : c;
        const v = raw[at + b]!;
        data[p * 3 + c] = scale ? (Number.isFinite(v) ? Math.max(0, Math.min(255, Math.round((v - stretch![b]!.low) * scale[b]!))) : 0) : v;
      }
    }
  }
  return { width: outWidth, height: outHeight, data, nodataFraction: inside === 0 ? 0 : missing / inside };
}
