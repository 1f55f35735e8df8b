/**
 * Scene jobs: the tiles of a GeoTIFF scene (planned by `@s2cpnet/scene` exactly as `s2cpnet caption-scene` plans
 * them) as batches on a queue. Each tile is an item of the queue's list named `<scene path>#<x0>,<y0>,<x1>,<y1>`
 * (its pixel window); its outline in WGS84 and the scene's description are stored at enqueue time, so `export` can
 * write GeoJSON without opening the scene.
 */
import { createHash } from 'node:crypto';
import { ConfigError } from '@s2cpnet/core';
import {
  openScene,
  planTiles,
  summarizeScene,
  tilePolygon,
  toWgs84,
  type PixelWindow,
  type Ring,
  type Scene,
  type SceneCaptionResult,
  type SceneSummary,
  type TilePlan,
} from '@s2cpnet/scene';

/** How a scene is read and cut: the `caption-scene` options that change what a tile holds. */
export interface SceneJobSettings {
  /** Tile side given to the model, in pixels. Default 256. */
  tile?: number;
  /** Overlap of neighbouring tiles, in tile pixels. Default 0. */
  overlap?: number;
  /** Target ground sample distance in metres per pixel. Default: the scene's own. */
  gsd?: number;
  /** 1-based bands (three for RGB, or one). Default: 1,2,3 (or 1). */
  bands?: number[];
  /** The scene's CRS as proj4 text, WKT or `EPSG:N`, when the file does not say it. */
  sourceCrs?: string;
  /** The nodata value, when the file does not say it (`'nan'` for NaN, which JSON cannot hold as a number). */
  nodata?: number | 'nan';
  /** A tile with more than this share of nodata pixels is skipped. Default 0.5. */
  maxNodata?: number;
}

/** One tile of a scene job. */
export interface SceneJobTile {
  /** Its item name in the queue's list: `<scene>#<x0>,<y0>,<x1>,<y1>`. */
  key: string;
  index: number;
  /** The window read (`planTiles`' `readWindow`: the window, padded for a scene smaller than a tile). */
  readWindow: [number, number, number, number];
}

/** What is stored per tile at enqueue time, for export. */
export interface StoredSceneTile {
  scene: string;
  index: number;
  row: number;
  col: number;
  window: [number, number, number, number];
  polygon: Ring;
}

/** What is stored per scene at enqueue time, for export. */
export interface StoredScene {
  summary: SceneSummary;
  coordinates: SceneCaptionResult['coordinates'];
  plan: Omit<TilePlan, 'tiles'> & { total: number };
  settings: SceneJobSettings;
}

/** The item name of a tile in the queue's list. */
export function sceneTileKey(scene: string, window: PixelWindow): string {
  return `${scene}#${window.join(',')}`;
}

/** The settings as given, with defaults filled in and nothing undefined (they go into job data and ids). */
export function normalizeSceneSettings(settings: SceneJobSettings): SceneJobSettings {
  const maxNodata = settings.maxNodata ?? 0.5;
  if (!(maxNodata >= 0 && maxNodata <= 1)) throw new ConfigError('maxNodata', `expected a share from 0 to 1, found ${settings.maxNodata}`);
  const out: SceneJobSettings = { tile: settings.tile ?? 256, overlap: settings.overlap ?? 0, maxNodata };
  if (settings.gsd !== undefined) out.gsd = settings.gsd;
  if (settings.bands !== undefined) out.bands = [...settings.bands];
  if (settings.sourceCrs !== undefined) out.sourceCrs = settings.sourceCrs;
  if (settings.nodata !== undefined) out.nodata = typeof settings.nodata === 'number' && Number.isNaN(settings.nodata) ? 'nan' : settings.nodata;
  return out;
}

/** Opens a scene with the settings that change how it is read. */
export function openSceneWith(file: string, settings: SceneJobSettings, signal?: AbortSignal): Promise<Scene> {
  const nodata = settings.nodata === 'nan' ? Number.NaN : settings.nodata;
  return openScene(file, { bands: settings.bands, sourceCrs: settings.sourceCrs, nodata, signal });
}

/** Plans a scene's tiles as `caption-scene` does, with each tile's key, outline and the scene's description. */
export async function planScene(file: string, settings: SceneJobSettings, signal?: AbortSignal): Promise<{ scene: StoredScene; tiles: (SceneJobTile & StoredSceneTile)[] }> {
  const scene = await openSceneWith(file, settings, signal);
  try {
    const plan = planTiles(scene, { tile: settings.tile, overlap: settings.overlap, gsd: settings.gsd });
    const project = scene.crs ? toWgs84(scene.crs) : null;
    const tiles = plan.tiles.map((t) => ({
      key: sceneTileKey(file, t.window),
      index: t.index,
      readWindow: [...t.readWindow] as [number, number, number, number],
      scene: file,
      row: t.row,
      col: t.col,
      window: [...t.window] as [number, number, number, number],
      polygon: tilePolygon(scene, t.window, project),
    }));
    const { tiles: _all, ...planSummary } = plan;
    return {
      scene: { summary: summarizeScene(scene), coordinates: scene.crs ? 'wgs84' : 'pixel', plan: { ...planSummary, total: tiles.length }, settings },
      tiles,
    };
  } finally {
    await scene.close();
  }
}

/** The job id of a batch of scene tiles: the hash of the scene, its settings and the tiles' windows. */
export function sceneBatchJobId(scene: string, settings: SceneJobSettings, tiles: readonly SceneJobTile[]): string {
  const text = [scene, JSON.stringify(settings), ...tiles.map((t) => t.readWindow.join(','))].join('\n');
  return `scene-${createHash('sha256').update(text).digest('hex').slice(0, 32)}`;
}

/** The content hash of a tile as read (size and RGB pixels): the key of its stored result. */
export function tileContentHash(image: { width: number; height: number; data: Uint8Array }): string {
  return createHash('sha256').update(`rgb8 ${image.width}x${image.height}\n`).update(image.data).digest('hex');
}
