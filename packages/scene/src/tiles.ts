import { ConfigError } from '@s2cpnet/core';
import type { PixelWindow, Scene } from './scene';

export interface TilePlanOptions {
  /** Side of the tiles the model is given, in pixels. Default 256. */
  tile?: number;
  /** Overlap of neighbouring tiles in tile pixels (source pixels without `gsd`). Default 0. */
  overlap?: number;
  /**
   * Ground sample distance to caption at, in metres per pixel (the training data's: UCM is about 0.3): a tile then
   * covers `tile * gsd / scene gsd` source pixels, read resampled to `tile` x `tile`. Default: the scene's own.
   */
  gsd?: number;
}

/** One tile of a plan. */
export interface PlannedTile {
  index: number;
  row: number;
  col: number;
  /** The source pixels the tile covers, inside the scene: `[x0, y0, x1, y1]`, x1 and y1 exclusive. */
  window: PixelWindow;
  /** The window read: `window`, or larger when the scene is narrower or shorter than one tile (padded black). */
  readWindow: PixelWindow;
}

export interface TilePlan {
  tile: number;
  overlap: number;
  /** The target ground sample distance, or null when tiles are read at the scene's own. */
  gsd: number | null;
  /** Source pixels per tile along x and y. */
  span: { x: number; y: number };
  /** Source pixels from one tile to the next along x and y. */
  step: { x: number; y: number };
  columns: number;
  rows: number;
  tiles: PlannedTile[];
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new ConfigError(name, `expected a positive integer, found ${value}`);
  return value;
}

/** Tile origins along one axis: `step` apart, the last one moved back to end at the scene's edge. */
function origins(size: number, span: number, step: number): number[] {
  if (size <= span) return [0];
  const count = Math.ceil((size - span) / step) + 1;
  return Array.from({ length: count }, (_, i) => Math.min(i * step, size - span));
}

/**
 * Cuts a scene into tiles, row by row from the top-left. Tiles are `step` source pixels apart; the last column and
 * row are shifted back to end exactly at the scene's right and bottom edges (overlapping their neighbours a little
 * more) rather than padded, so every tile holds only scene pixels. A scene narrower or shorter than one tile is one
 * tile padded with black past its edge (its `window` is clipped to the scene).
 *
 * @example
 * ```ts
 * const plan = planTiles(scene, { tile: 256, overlap: 32, gsd: 0.3 });
 * console.log(plan.tiles.length, plan.tiles[0].window);
 * ```
 */
export function planTiles(scene: Pick<Scene, 'width' | 'height' | 'gsd'>, options: TilePlanOptions = {}): TilePlan {
  const tile = positiveInteger(options.tile ?? 256, '--tile');
  const overlap = options.overlap ?? 0;
  if (!Number.isInteger(overlap) || overlap < 0 || overlap >= tile) throw new ConfigError('--overlap', `expected an integer from 0 to ${tile - 1} (less than --tile), found ${overlap}`);
  let span = { x: tile, y: tile };
  let gsd: number | null = null;
  if (options.gsd !== undefined) {
    if (!(Number.isFinite(options.gsd) && options.gsd > 0)) throw new ConfigError('--gsd', `expected a positive number of metres per pixel, found ${options.gsd}`);
    if (!scene.gsd) throw new ConfigError('--gsd', 'the scene has no georeferencing, so its ground sample distance is unknown (give --source-crs if it has a transform but no CRS, or leave --gsd out)');
    gsd = options.gsd;
    span = { x: Math.max(1, Math.round((tile * gsd) / scene.gsd.x)), y: Math.max(1, Math.round((tile * gsd) / scene.gsd.y)) };
  }
  const overlapSource = { x: Math.round((overlap * span.x) / tile), y: Math.round((overlap * span.y) / tile) };
  const step = { x: Math.max(1, span.x - overlapSource.x), y: Math.max(1, span.y - overlapSource.y) };
  const xs = origins(scene.width, span.x, step.x);
  const ys = origins(scene.height, span.y, step.y);
  const tiles: PlannedTile[] = [];
  ys.forEach((y0, row) =>
    xs.forEach((x0, col) => {
      const readWindow: PixelWindow = [x0, y0, x0 + span.x, y0 + span.y];
      tiles.push({ index: tiles.length, row, col, readWindow, window: [x0, y0, Math.min(x0 + span.x, scene.width), Math.min(y0 + span.y, scene.height)] });
    }),
  );
  return { tile, overlap, gsd, span, step, columns: xs.length, rows: ys.length, tiles };
}
