import { ConfigError, InterruptedError } from '@s2cpnet/core';
import type { RgbImage } from '@s2cpnet/data';
import type { Captioner } from '@s2cpnet/model';
import { toWgs84, type SceneCrs } from './crs';
import { openScene, type GeoTransform, type OpenSceneOptions, type PixelWindow, type Scene, type SceneWindow } from './scene';
import { planTiles, type PlannedTile, type TilePlan, type TilePlanOptions } from './tiles';

/** A closed ring of `[x, y]` positions (first = last), counter-clockwise: RFC 7946's exterior ring. */
export type Ring = [number, number][];

/** One captioned tile. */
export interface SceneTileCaption {
  index: number;
  row: number;
  col: number;
  /** Source pixels covered, `[x0, y0, x1, y1]` (x1, y1 exclusive). */
  window: PixelWindow;
  /**
   * The tile's outline: its four corners in WGS84 `[longitude, latitude]` for a georeferenced scene, else in pixel
   * coordinates `[column, -row]` (y up, where QGIS places a raster without georeferencing).
   */
  polygon: Ring;
  caption: string;
  /** Predicted categories (probability >= 0.5), most probable first. */
  categories: { name: string; probability: number }[];
}

/** A tile left out: more than `maxNodata` of its pixels are nodata. */
export interface SkippedSceneTile {
  index: number;
  row: number;
  col: number;
  window: PixelWindow;
  polygon: Ring;
  reason: 'nodata';
  nodataFraction: number;
}

/** What is known about the scene, for outputs. */
export interface SceneSummary {
  source: string;
  width: number;
  height: number;
  bands: readonly number[];
  bitsPerSample: number;
  sampleFormat: Scene['sampleFormat'];
  nodata: number | null;
  crs: Pick<SceneCrs, 'epsg' | 'name' | 'proj4'> | null;
  transform: GeoTransform | null;
  rasterType: Scene['rasterType'];
  /** Metres per pixel along x and y, or null. */
  gsd: { x: number; y: number } | null;
  stretch: Scene['stretch'];
}

export interface SceneCaptionResult {
  scene: SceneSummary;
  /** 'wgs84': polygons are EPSG:4326 lon/lat; 'pixel': the scene has no georeferencing. */
  coordinates: 'wgs84' | 'pixel';
  plan: Omit<TilePlan, 'tiles'> & { total: number };
  tiles: SceneTileCaption[];
  skipped: SkippedSceneTile[];
  /** The scene shrunk to at most `previewSize` px on its long side, filled in from the tiles as they are read. */
  preview: RgbImage | null;
  seconds: number;
}

/** What `captionScene` needs of a captioner (`loadCaptioner` gives one). */
export type SceneCaptioner = Pick<Captioner, 'caption' | 'inputSize'>;

export interface CaptionSceneOptions extends OpenSceneOptions, TilePlanOptions {
  /** Tiles read and captioned together. Default 8. */
  batchSize?: number;
  /** A tile with more than this share of nodata pixels is skipped. Default 0.5. */
  maxNodata?: number;
  /** Caption only the first N tiles of the plan (row by row). Default: all. */
  limit?: number;
  /** Long side of `preview` in pixels; 0: none. Default 1024. */
  previewSize?: number;
  /** Called with each captioned or skipped tile, in plan order, as each batch is done. */
  onTile?: (tile: SceneTileCaption | SkippedSceneTile) => void | Promise<void>;
  /** Tiles done (captioned or skipped) of the total, after each batch. */
  onProgress?: (done: number, total: number) => void;
}

/** True for a tile `captionScene` skipped. */
export function isSkippedTile(tile: SceneTileCaption | SkippedSceneTile): tile is SkippedSceneTile {
  return (tile as SkippedSceneTile).reason !== undefined;
}

/** The outline of a pixel window: its corners in WGS84 (or pixel coordinates, y up), closed, counter-clockwise. */
export function tilePolygon(scene: Pick<Scene, 'crs' | 'pixelToCrs'>, window: PixelWindow, project = scene.crs ? toWgs84(scene.crs) : null): Ring {
  const [x0, y0, x1, y1] = window;
  const corners: [number, number][] = [
    [x0, y0],
    [x0, y1],
    [x1, y1],
    [x1, y0],
  ];
  // Four corners: a tile of a few hundred metres has edges straight to far below a millionth of a degree in lon/lat.
  const ring: Ring = corners.map(([col, row]) => (project ? project(...scene.pixelToCrs(col, row)) : [col, row === 0 ? 0 : -row]));
  let twiceArea = 0;
  for (let i = 0; i < 4; i++) {
    const [ax, ay] = ring[i]!;
    const [bx, by] = ring[(i + 1) % 4]!;
    twiceArea += ax * by - bx * ay;
  }
  if (twiceArea < 0) ring.reverse();
  ring.push([...ring[0]!] as [number, number]);
  return ring;
}

export function summarizeScene(scene: Scene): SceneSummary {
  return {
    source: scene.source,
    width: scene.width,
    height: scene.height,
    bands: scene.bands,
    bitsPerSample: scene.bitsPerSample,
    sampleFormat: scene.sampleFormat,
    nodata: scene.nodata,
    crs: scene.crs ? { epsg: scene.crs.epsg, name: scene.crs.name, proj4: scene.crs.proj4 } : null,
    transform: scene.transform,
    rasterType: scene.rasterType,
    gsd: scene.gsd,
    stretch: scene.stretch,
  };
}

/**
 * Captions a GeoTIFF/COG scene tile by tile: plans the tiles (`planTiles`), reads `batchSize` of them at a time
 * (only the file's tiles or strips they touch; the scene is never decoded whole), skips tiles that are mostly
 * nodata, captions the rest with `captioner`, and gives each tile's outline in WGS84. `source` is a file, its bytes,
 * or a scene already opened with `openScene` (then it is not closed here).
 *
 * @example
 * ```ts
 * import { loadCaptioner } from '@s2cpnet/model';
 * import { captionScene, sceneToGeoJSON } from '@s2cpnet/scene';
 * const captioner = await loadCaptioner('@s2cpnet/weights-ucm-mobilenet');
 * const result = await captionScene(captioner, 'scene.tif', { gsd: 0.3, onProgress: (d, t) => console.log(d, t) });
 * console.log(JSON.stringify(sceneToGeoJSON(result)));
 * ```
 */
export async function captionScene(captioner: SceneCaptioner, source: string | ArrayBuffer | Uint8Array | Scene, options: CaptionSceneOptions = {}): Promise<SceneCaptionResult> {
  const batchSize = options.batchSize ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new ConfigError('--batch-size', `expected a positive integer, found ${batchSize}`);
  const maxNodata = options.maxNodata ?? 0.5;
  if (!(maxNodata >= 0 && maxNodata <= 1)) throw new ConfigError('maxNodata', `expected a share from 0 to 1, found ${maxNodata}`);
  if (options.limit !== undefined && (!Number.isInteger(options.limit) || options.limit < 1)) throw new ConfigError('--limit', `expected a positive integer, found ${options.limit}`);
  const previewSize = options.previewSize ?? 1024;
  const started = Date.now();
  const owned = !isScene(source);
  const scene = isScene(source) ? source : await openScene(source, options);
  try {
    const plan = planTiles(scene, options);
    const todo = options.limit === undefined ? plan.tiles : plan.tiles.slice(0, options.limit);
    const project = scene.crs ? toWgs84(scene.crs) : null;
    const preview = previewSize > 0 ? createPreview(scene, previewSize) : null;
    const tiles: SceneTileCaption[] = [];
    const skipped: SkippedSceneTile[] = [];
    for (let from = 0; from < todo.length; from += batchSize) {
      if (options.signal?.aborted) throw new InterruptedError(`captioning ${scene.source} interrupted after ${from} of ${todo.length} tiles`);
      const batch = todo.slice(from, from + batchSize);
      const read: { tile: PlannedTile; image: SceneWindow }[] = [];
      for (const tile of batch) {
        const image = await scene.readWindow(tile.readWindow, plan.tile, plan.tile, { signal: options.signal });
        if (preview) pastePreview(preview, image, tile.readWindow);
        read.push({ tile, image });
      }
      const kept = read.filter((r) => r.image.nodataFraction <= maxNodata);
      const results = kept.length > 0 ? await captioner.caption(kept.map((r) => ({ width: r.image.width, height: r.image.height, data: r.image.data })), { signal: options.signal }) : [];
      const byIndex = new Map(kept.map((r, i) => [r.tile.index, results[i]!]));
      for (const { tile, image } of read) {
        const polygon = tilePolygon(scene, tile.window, project);
        const result = byIndex.get(tile.index);
        const base = { index: tile.index, row: tile.row, col: tile.col, window: tile.window, polygon };
        const record: SceneTileCaption | SkippedSceneTile = result
          ? { ...base, caption: result.caption, categories: result.categories.map((c) => ({ name: c.name, probability: c.probability })) }
          : { ...base, reason: 'nodata', nodataFraction: image.nodataFraction };
        if (isSkippedTile(record)) skipped.push(record);
        else tiles.push(record);
        await options.onTile?.(record);
      }
      options.onProgress?.(from + batch.length, todo.length);
    }
    const { tiles: _all, ...planSummary } = plan;
    return {
      scene: summarizeScene(scene),
      coordinates: scene.crs ? 'wgs84' : 'pixel',
      plan: { ...planSummary, total: todo.length },
      tiles,
      skipped,
      preview: preview?.image ?? null,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    if (owned) await scene.close();
  }
}

function isScene(value: unknown): value is Scene {
  return typeof value === 'object' && value !== null && typeof (value as Scene).readWindow === 'function';
}

interface Preview {
  image: RgbImage;
  scale: number;
}

function createPreview(scene: Pick<Scene, 'width' | 'height'>, maxSide: number): Preview {
  const scale = Math.min(1, maxSide / Math.max(scene.width, scene.height));
  const width = Math.max(1, Math.round(scene.width * scale));
  const height = Math.max(1, Math.round(scene.height * scale));
  return { image: { width, height, data: new Uint8Array(width * height * 3) }, scale };
}

/** Copies a tile read at any size into the preview (nearest neighbour). */
function pastePreview(preview: Preview, tile: RgbImage, window: PixelWindow): void {
  const { image, scale } = preview;
  const [x0, y0, x1, y1] = window;
  const px0 = Math.max(0, Math.floor(x0 * scale));
  const py0 = Math.max(0, Math.floor(y0 * scale));
  const px1 = Math.min(image.width, Math.ceil(x1 * scale));
  const py1 = Math.min(image.height, Math.ceil(y1 * scale));
  for (let py = py0; py < py1; py++) {
    const sy = (py + 0.5) / scale;
    if (sy < y0 || sy >= y1) continue;
    const ty = Math.min(tile.height - 1, Math.floor(((sy - y0) * tile.height) / (y1 - y0)));
    for (let px = px0; px < px1; px++) {
      const sx = (px + 0.5) / scale;
      if (sx < x0 || sx >= x1) continue;
      const tx = Math.min(tile.width - 1, Math.floor(((sx - x0) * tile.width) / (x1 - x0)));
      const from = (ty * tile.width + tx) * 3;
      const to = (py * image.width + px) * 3;
      image.data[to] = tile.data[from]!;
      image.data[to + 1] = tile.data[from + 1]!;
      image.data[to + 2] = tile.data[from + 2]!;
    }
  }
}
