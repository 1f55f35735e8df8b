/**
 * Coordinate reference systems of scenes: EPSG codes from GeoTIFF GeoKeys turned into proj4 definitions, and the
 * reprojection of pixel corners to WGS84 longitude/latitude.
 */
import proj4 from 'proj4';
import { ConfigError } from '@s2cpnet/core';

/** The coordinate reference system of a scene. */
export interface SceneCrs {
  /** The EPSG code, when the file names one (or `--source-crs EPSG:N` does); null for a definition given as text. */
  epsg: number | null;
  /** The proj4 definition (a proj4 string, or WKT as given). */
  proj4: string;
  /** A readable name, e.g. `EPSG:32610 (WGS 84 / UTM zone 10N)`. */
  name: string;
  /** True for a geographic (longitude/latitude) CRS: its coordinates are degrees. */
  geographic: boolean;
  /** Metres per CRS unit for a projected CRS (1 for metres); null for a geographic CRS. */
  metresPerUnit: number | null;
}

const WGS84 = '+proj=longlat +datum=WGS84 +no_defs';

/**
 * The proj4 definition of an EPSG code proj4 can be given without a database: WGS 84 / UTM (32601-32660 north,
 * 32701-32760 south), ETRS89 / UTM (25828-25838), NAD83 / UTM (26901-26923), Web Mercator (3857), and the
 * geographic WGS 84 (4326), NAD83 (4269) and ETRS89 (4258). Other codes: null (give the definition yourself).
 */
export function epsgDefinition(code: number): { proj4: string; name: string; geographic: boolean } | null {
  if (code >= 32601 && code <= 32660) return utm(code - 32600, false, '+datum=WGS84', `WGS 84 / UTM zone ${code - 32600}N`);
  if (code >= 32701 && code <= 32760) return utm(code - 32700, true, '+datum=WGS84', `WGS 84 / UTM zone ${code - 32700}S`);
  if (code >= 25828 && code <= 25838) return utm(code - 25800, false, '+ellps=GRS80 +towgs84=0,0,0,0,0,0,0', `ETRS89 / UTM zone ${code - 25800}N`);
  if (code >= 26901 && code <= 26923) return utm(code - 26900, false, '+datum=NAD83', `NAD83 / UTM zone ${code - 26900}N`);
  switch (code) {
    case 3857:
      return {
        proj4: '+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m +nadgrids=@null +wktext +no_defs',
        name: 'WGS 84 / Pseudo-Mercator',
        geographic: false,
      };
    case 4326:
      return { proj4: WGS84, name: 'WGS 84', geographic: true };
    case 4269:
      return { proj4: '+proj=longlat +datum=NAD83 +no_defs', name: 'NAD83', geographic: true };
    case 4258:
      return { proj4: '+proj=longlat +ellps=GRS80 +towgs84=0,0,0,0,0,0,0 +no_defs', name: 'ETRS89', geographic: true };
    default:
      return null;
  }
}

function utm(zone: number, south: boolean, datum: string, name: string) {
  return { proj4: `+proj=utm +zone=${zone}${south ? ' +south' : ''} ${datum} +units=m +no_defs`, name, geographic: false };
}

/** The EPSG codes `epsgDefinition` knows, for messages. */
export const KNOWN_EPSG_CODES = 'WGS 84 / UTM (EPSG:32601-32660, 32701-32760), ETRS89 / UTM (25828-25838), NAD83 / UTM (26901-26923), 3857, 4326, 4269, 4258';

function parsed(definition: string): { projName?: string; to_meter?: number; units?: string } {
  try {
    return new proj4.Proj(definition) as unknown as { projName?: string; to_meter?: number; units?: string };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError('--source-crs', `proj4 cannot read the definition ${JSON.stringify(definition.slice(0, 120))}${reason && reason !== 'undefined' ? ` (${reason})` : ''}; give a proj4 string or WKT`);
  }
}

/**
 * A CRS from text: `EPSG:N` for a code `epsgDefinition` knows, a proj4 string (`+proj=...`) or WKT (what
 * `gdalsrsinfo -o wkt1` prints). The argument is named in errors as `--source-crs`.
 */
export function crsFromDefinition(text: string): SceneCrs {
  const trimmed = text.trim();
  const epsg = /^EPSG:(\d+)$/i.exec(trimmed);
  if (epsg) {
    const crs = crsFromEpsg(Number(epsg[1]));
    if (!crs) throw new ConfigError('--source-crs', `EPSG:${epsg[1]} is not built in (built in: ${KNOWN_EPSG_CODES}); give its proj4 string or WKT instead (gdalsrsinfo -o proj4 EPSG:${epsg[1]})`);
    return crs;
  }
  if (!trimmed) throw new ConfigError('--source-crs', 'expected EPSG:N, a proj4 string or WKT, found an empty string');
  const proj = parsed(trimmed);
  const geographic = proj.projName === 'longlat';
  const name = /^\s*(?:PROJCS|GEOGCS|PROJCRS|GEOGCRS|GEODCRS)\s*\[\s*"([^"]*)"/i.exec(trimmed)?.[1] ?? trimmed;
  return { epsg: null, proj4: trimmed, name, geographic, metresPerUnit: geographic ? null : unitToMetres(proj) };
}

function unitToMetres(proj: { to_meter?: number; units?: string }): number {
  if (typeof proj.to_meter === 'number' && Number.isFinite(proj.to_meter) && proj.to_meter > 0) return proj.to_meter;
  const units = (proj.units ?? 'm').toLowerCase();
  if (units === 'us-ft') return 1200 / 3937;
  if (units === 'ft') return 0.3048;
  return 1;
}

/** The CRS of an EPSG code proj4 is given a definition for here, or null. */
export function crsFromEpsg(code: number): SceneCrs | null {
  const known = epsgDefinition(code);
  if (!known) return null;
  return { epsg: code, proj4: known.proj4, name: `EPSG:${code} (${known.name})`, geographic: known.geographic, metresPerUnit: known.geographic ? null : 1 };
}

/** Converts points of a CRS to WGS84 `[longitude, latitude]`. */
export function toWgs84(crs: SceneCrs): (x: number, y: number) => [number, number] {
  if (crs.epsg === 4326) return (x, y) => [x, y];
  const converter = proj4(crs.proj4, WGS84);
  return (x, y) => {
    const [lon, lat] = converter.forward([x, y]) as [number, number];
    return [lon, lat];
  };
}
