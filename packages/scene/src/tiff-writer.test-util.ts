// A small GeoTIFF writer for the tests (not published): tiled or striped, 8/16-bit integer or 32-bit float samples,
// any band count, optional deflate, GeoKeys, a tie point + pixel scale or a transformation matrix, GDAL_NODATA, and
// reduced-resolution images after the first (COG-style overviews).
import { deflateSync } from 'node:zlib';

export interface TiffImageSpec {
  width: number;
  height: number;
  samples: number;
  /** 8 or 16 (unsigned integers) or 32 (float). */
  bits: 8 | 16 | 32;
  /** Pixel-interleaved values, `width * height * samples` of them. */
  data: ArrayLike<number>;
  /** Internal tile side (multiple of 16); without it the image is striped. */
  tileSize?: number;
  /** Rows per strip for a striped image. Default 16. */
  rowsPerStrip?: number;
  deflate?: boolean;
}

export interface GeoSpec {
  /** EPSG code of a projected (or, with `geographic`, geographic) CRS; 32767 for user-defined. */
  epsg?: number;
  geographic?: boolean;
  /** 'area' (GDAL's default) or 'point'. */
  rasterType?: 'area' | 'point';
  /** Tie point (pixel i, j to x, y) and pixel scale. */
  tiepoint?: { i: number; j: number; x: number; y: number };
  scale?: [number, number];
  /** ModelTransformation, 16 values, instead of tie point + scale. */
  transformation?: number[];
  citation?: string;
}

const SHORT = 3;
const LONG = 4;
const DOUBLE = 12;
const ASCII = 2;

interface Entry {
  tag: number;
  type: number;
  values: number[] | string;
}

function encodeSamples(spec: TiffImageSpec, x0: number, y0: number, w: number, h: number, padW: number, padH: number): Uint8Array {
  const bytesPer = spec.bits / 8;
  const out = new Uint8Array(padW * padH * spec.samples * bytesPer);
  const view = new DataView(out.buffer);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let s = 0; s < spec.samples; s++) {
        const v = spec.data[((y0 + y) * spec.width + (x0 + x)) * spec.samples + s]!;
        const at = ((y * padW + x) * spec.samples + s) * bytesPer;
        if (spec.bits === 8) view.setUint8(at, v);
        else if (spec.bits === 16) view.setUint16(at, v, true);
        else view.setFloat32(at, v, true);
      }
    }
  }
  return spec.deflate ? new Uint8Array(deflateSync(out)) : out;
}

/** Writes one or more images (the first full resolution, the rest overviews) as a little-endian TIFF. */
export function writeTiff(images: TiffImageSpec[], geo: GeoSpec | null = null, nodata: string | null = null): Uint8Array {
  const chunks: Uint8Array[] = [];
  let offset = 8;
  const push = (bytes: Uint8Array) => {
    const at = offset;
    chunks.push(bytes);
    offset += bytes.length;
    if (offset % 2) {
      chunks.push(new Uint8Array(1));
      offset += 1;
    }
    return at;
  };
  const ifdEntries: Entry[][] = [];
  images.forEach((spec, index) => {
    const blocks: { at: number; length: number }[] = [];
    const entries: Entry[] = [];
    if (index > 0) entries.push({ tag: 254, type: LONG, values: [1] });
    entries.push({ tag: 256, type: LONG, values: [spec.width] }, { tag: 257, type: LONG, values: [spec.height] });
    entries.push({ tag: 258, type: SHORT, values: Array(spec.samples).fill(spec.bits) });
    entries.push({ tag: 259, type: SHORT, values: [spec.deflate ? 8 : 1] });
    entries.push({ tag: 262, type: SHORT, values: [spec.samples >= 3 ? 2 : 1] });
    if (spec.tileSize) {
      const t = spec.tileSize;
      for (let ty = 0; ty < Math.ceil(spec.height / t); ty++) {
        for (let tx = 0; tx < Math.ceil(spec.width / t); tx++) {
          const bytes = encodeSamples(spec, tx * t, ty * t, Math.min(t, spec.width - tx * t), Math.min(t, spec.height - ty * t), t, t);
          blocks.push({ at: push(bytes), length: bytes.length });
        }
      }
      entries.push({ tag: 277, type: SHORT, values: [spec.samples] });
    } else {
      const rows = spec.rowsPerStrip ?? 16;
      for (let y = 0; y < spec.height; y += rows) {
        const h = Math.min(rows, spec.height - y);
        const bytes = encodeSamples(spec, 0, y, spec.width, h, spec.width, h);
        blocks.push({ at: push(bytes), length: bytes.length });
      }
      entries.push({ tag: 273, type: LONG, values: blocks.map((b) => b.at) });
      entries.push({ tag: 277, type: SHORT, values: [spec.samples] });
      entries.push({ tag: 278, type: LONG, values: [rows] });
      entries.push({ tag: 279, type: LONG, values: blocks.map((b) => b.length) });
    }
    entries.push({ tag: 284, type: SHORT, values: [1] });
    if (spec.tileSize) {
      entries.push({ tag: 322, type: SHORT, values: [spec.tileSize] }, { tag: 323, type: SHORT, values: [spec.tileSize] });
      entries.push({ tag: 324, type: LONG, values: blocks.map((b) => b.at) }, { tag: 325, type: LONG, values: blocks.map((b) => b.length) });
    }
    const extra = spec.samples >= 3 ? spec.samples - 3 : spec.samples - 1;
    if (extra > 0) entries.push({ tag: 338, type: SHORT, values: Array(extra).fill(0) });
    entries.push({ tag: 339, type: SHORT, values: Array(spec.samples).fill(spec.bits === 32 ? 3 : 1) });
    if (geo && index === 0) {
      if (geo.scale) entries.push({ tag: 33550, type: DOUBLE, values: [geo.scale[0], geo.scale[1], 0] });
      if (geo.tiepoint) entries.push({ tag: 33922, type: DOUBLE, values: [geo.tiepoint.i, geo.tiepoint.j, 0, geo.tiepoint.x, geo.tiepoint.y, 0] });
      if (geo.transformation) entries.push({ tag: 34264, type: DOUBLE, values: geo.transformation });
      const keys: [number, number][] = [[1024, geo.geographic ? 2 : 1], [1025, geo.rasterType === 'point' ? 2 : 1]];
      if (geo.epsg !== undefined) keys.push(geo.geographic ? [2048, geo.epsg] : [3072, geo.epsg]);
      keys.sort((a, b) => a[0] - b[0]);
      entries.push({ tag: 34735, type: SHORT, values: [1, 1, 0, keys.length, ...keys.flatMap(([k, v]) => [k, 0, 1, v])] });
    }
    if (nodata !== null && index === 0) entries.push({ tag: 42113, type: ASCII, values: `${nodata}\0` });
    entries.sort((a, b) => a.tag - b.tag);
    ifdEntries.push(entries);
  });
  // IFDs with their out-of-line values after the pixel data.
  const ifdOffsets: number[] = [];
  const ifdBytes: Uint8Array[] = [];
  for (const entries of ifdEntries) {
    const size = 2 + entries.length * 12 + 4;
    const at = offset;
    ifdOffsets.push(at);
    let extraAt = at + size;
    const extras: Uint8Array[] = [];
    const ifd = new DataView(new ArrayBuffer(size));
    ifd.setUint16(0, entries.length, true);
    entries.forEach((e, k) => {
      const count = typeof e.values === 'string' ? e.values.length : e.values.length;
      const unit = e.type === SHORT ? 2 : e.type === LONG ? 4 : e.type === DOUBLE ? 8 : 1;
      const bytes = new Uint8Array(count * unit);
      const view = new DataView(bytes.buffer);
      if (typeof e.values === 'string') for (let i = 0; i < count; i++) bytes[i] = e.values.charCodeAt(i);
      else
        e.values.forEach((v, i) => {
          if (e.type === SHORT) view.setUint16(i * 2, v, true);
          else if (e.type === LONG) view.setUint32(i * 4, v, true);
          else view.setFloat64(i * 8, v, true);
        });
      const base = 2 + k * 12;
      ifd.setUint16(base, e.tag, true);
      ifd.setUint16(base + 2, e.type, true);
      ifd.setUint32(base + 4, count, true);
      if (bytes.length <= 4) new Uint8Array(ifd.buffer).set(bytes, base + 8);
      else {
        ifd.setUint32(base + 8, extraAt, true);
        const padded = bytes.length % 2 ? new Uint8Array([...bytes, 0]) : bytes;
        extras.push(padded);
        extraAt += padded.length;
      }
    });
    ifdBytes.push(new Uint8Array(ifd.buffer));
    ifdBytes.push(...extras);
    offset = extraAt;
    ifdBytes.push(new Uint8Array(0));
  }
  // Link each IFD to the next.
  let k = 0;
  for (let i = 0; i < ifdBytes.length; i++) {
    const bytes = ifdBytes[i]!;
    if (bytes.length === 0) continue;
    if (i === 0 || ifdBytes[i - 1]!.length === 0) {
      const next = ifdOffsets[k + 1] ?? 0;
      new DataView(bytes.buffer).setUint32(bytes.length - 4, next, true);
      k++;
    }
  }
  const header = new Uint8Array(8);
  const hv = new DataView(header.buffer);
  header[0] = 0x49;
  header[1] = 0x49;
  hv.setUint16(2, 42, true);
  hv.setUint32(4, ifdOffsets[0]!, true);
  const all = [header, ...chunks, ...ifdBytes];
  const out = new Uint8Array(all.reduce((s, c) => s + c.length, 0));
  let at = 0;
  for (const c of all) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Inverse transverse Mercator (UTM) by Krüger's series to n^3 (Karney 2011, eqs. 11-15), independent of proj4. */
export function utmToLonLat(easting: number, northing: number, zone: number, south = false): [number, number] {
  const a = 6378137;
  const f = 1 / 298.257223563;
  const k0 = 0.9996;
  const n = f / (2 - f);
  const A = (a / (1 + n)) * (1 + n ** 2 / 4 + n ** 4 / 64);
  const beta = [n / 2 - (2 / 3) * n ** 2 + (37 / 96) * n ** 3, (1 / 48) * n ** 2 + (1 / 15) * n ** 3, (17 / 480) * n ** 3];
  const delta = [2 * n - (2 / 3) * n ** 2 - 2 * n ** 3, (7 / 3) * n ** 2 - (8 / 5) * n ** 3, (56 / 15) * n ** 3];
  const xi = (northing - (south ? 10_000_000 : 0)) / (k0 * A);
  const eta = (easting - 500_000) / (k0 * A);
  let xiP = xi;
  let etaP = eta;
  beta.forEach((b, j) => {
    const m = 2 * (j + 1);
    xiP -= b * Math.sin(m * xi) * Math.cosh(m * eta);
    etaP -= b * Math.cos(m * xi) * Math.sinh(m * eta);
  });
  const chi = Math.asin(Math.sin(xiP) / Math.cosh(etaP));
  let phi = chi;
  delta.forEach((d, j) => {
    phi += d * Math.sin(2 * (j + 1) * chi);
  });
  const lambda0 = ((zone - 1) * 6 - 180 + 3) * (Math.PI / 180);
  const lambda = lambda0 + Math.atan2(Math.sinh(etaP), Math.cos(xiP));
  return [(lambda * 180) / Math.PI, (phi * 180) / Math.PI];
}

/** Images of `cell` x `cell` px laid out `columns` to a row, left to right and top to bottom, as one RGB image. */
export function mosaic(images: readonly { data: Uint8Array }[], columns: number, cell: number): { width: number; height: number; data: Uint8Array } {
  const rows = Math.ceil(images.length / columns);
  const width = columns * cell;
  const data = new Uint8Array(width * rows * cell * 3);
  images.forEach((image, k) => {
    const ox = (k % columns) * cell;
    const oy = Math.floor(k / columns) * cell;
    for (let y = 0; y < cell; y++) data.set(image.data.subarray(y * cell * 3, (y + 1) * cell * 3), ((oy + y) * width + ox) * 3);
  });
  return { width, height: rows * cell, data };
}
