import type { Ring, SceneCaptionResult, SceneTileCaption, SkippedSceneTile } from './caption-scene';

/** Probabilities are written with 4 decimals; coordinates with 9 (a tenth of a millimetre in degrees). */
const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;

function roundRing(ring: Ring, pixel: boolean): Ring {
  return ring.map(([x, y]) => [pixel ? x : round(x, 9), pixel ? y : round(y, 9)]);
}

/** The tiles of a result in plan order, captioned and skipped together. */
export function tilesInOrder(result: Pick<SceneCaptionResult, 'tiles' | 'skipped'>): (SceneTileCaption | SkippedSceneTile)[] {
  return [...result.tiles, ...result.skipped].sort((a, b) => a.index - b.index);
}

/** The GeoJSON of `sceneToGeoJSON`. */
export interface SceneFeatureCollection {
  type: 'FeatureCollection';
  s2cpnet: Record<string, unknown>;
  features: {
    type: 'Feature';
    id: number;
    geometry: { type: 'Polygon'; coordinates: Ring[] };
    properties: Record<string, unknown>;
  }[];
}

/**
 * A GeoJSON FeatureCollection (RFC 7946): one Polygon per tile, in EPSG:4326 longitude/latitude for a georeferenced
 * scene. Properties: `caption` (null for a skipped tile), `categories` ([{ name, probability }]), `status`
 * ('captioned' or 'skipped'), `row`, `col`, `window` ([x0, y0, x1, y1] source pixels, x1/y1 exclusive),
 * `source_crs` (e.g. 'EPSG:32610', or null), `gsd` (metres per pixel the tile was read at). A top-level `s2cpnet`
 * member (a foreign member, which readers ignore) describes the scene, the tiling and the coordinates: with
 * `"coordinates": "pixel"` the scene had no georeferencing and positions are `[column, -row]`, not longitude and
 * latitude.
 */
export function sceneToGeoJSON(result: SceneCaptionResult): SceneFeatureCollection {
  const pixel = result.coordinates === 'pixel';
  const sourceCrs = result.scene.crs ? (result.scene.crs.epsg !== null ? `EPSG:${result.scene.crs.epsg}` : result.scene.crs.proj4) : null;
  const gsd = result.plan.gsd ?? (result.scene.gsd ? round((result.scene.gsd.x + result.scene.gsd.y) / 2, 6) : null);
  return {
    type: 'FeatureCollection',
    s2cpnet: {
      source: result.scene.source,
      width: result.scene.width,
      height: result.scene.height,
      bands: result.scene.bands,
      coordinates: pixel ? 'pixel' : 'EPSG:4326',
      ...(pixel ? { note: 'the scene has no georeferencing: positions are [column, -row] in pixels (y up, as QGIS places such a raster), not longitude/latitude' } : {}),
      crs: result.scene.crs,
      transform: result.scene.transform,
      raster_type: result.scene.rasterType,
      scene_gsd: result.scene.gsd,
      tile: result.plan.tile,
      overlap: result.plan.overlap,
      target_gsd: result.plan.gsd,
      tiles: result.plan.total,
      captioned: result.tiles.length,
      skipped: result.skipped.length,
    },
    features: tilesInOrder(result).map((t) => ({
      type: 'Feature',
      id: t.index,
      geometry: { type: 'Polygon', coordinates: [roundRing(t.polygon, pixel)] },
      properties: {
        caption: 'caption' in t ? t.caption : null,
        categories: 'categories' in t ? t.categories.map((c) => ({ name: c.name, probability: round(c.probability, 4) })) : [],
        status: 'caption' in t ? 'captioned' : 'skipped',
        ...('reason' in t ? { skipped: t.reason, nodata_fraction: round(t.nodataFraction, 4) } : {}),
        index: t.index,
        row: t.row,
        col: t.col,
        window: [...t.window],
        source_crs: sourceCrs,
        gsd,
      },
    })),
  };
}

/**
 * One CSV cell. A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return would run as a formula in a
 * spreadsheet (CSV injection): it gets a leading `'` (OWASP's advice). Cells holding a quote, comma or line break,
 * or such a prefix, are quoted with quotes doubled (RFC 4180). The same rule as `s2cpnet caption --out x.csv`.
 */
export function csvField(value: string): string {
  const formula = /^[=+\-@\t\r]/.test(value);
  const text = formula ? `'${value}` : value;
  return formula || /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * CSV, one line per tile: index, row, col, the pixel window (x0, y0, x1, y1), the tile centre (lon, lat; or x, y
 * in pixels, y up, without georeferencing), caption, categories (`name:probability` separated by spaces), status and
 * the polygon as WKT (QGIS's "Add Delimited Text Layer" reads the `wkt` column as geometry).
 */
export function sceneToCsv(result: SceneCaptionResult): string {
  const pixel = result.coordinates === 'pixel';
  const header = ['index', 'row', 'col', 'x0', 'y0', 'x1', 'y1', pixel ? 'center_x' : 'center_lon', pixel ? 'center_y' : 'center_lat', 'caption', 'categories', 'status', 'wkt'];
  const lines = tilesInOrder(result).map((t) => {
    const ring = roundRing(t.polygon, pixel);
    const corners = ring.slice(0, 4);
    const cx = corners.reduce((s, p) => s + p[0], 0) / 4;
    const cy = corners.reduce((s, p) => s + p[1], 0) / 4;
    const wkt = `POLYGON((${ring.map(([x, y]) => `${x} ${y}`).join(', ')}))`;
    // Numbers are written as they are (a negative longitude is not a formula); text goes through csvField.
    const numbers = [t.index, t.row, t.col, ...t.window, pixel ? cx : round(cx, 9), pixel ? cy : round(cy, 9)].map(String);
    const text = [
      'caption' in t ? t.caption : '',
      'categories' in t ? t.categories.map((c) => `${c.name}:${round(c.probability, 4)}`).join(' ') : '',
      'caption' in t ? 'captioned' : `skipped (${t.reason})`,
      wkt,
    ].map(csvField);
    return [...numbers, ...text].join(',');
  });
  return `${header.join(',')}\n${lines.map((l) => `${l}\n`).join('')}`;
}
