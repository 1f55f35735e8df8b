/**
 * The reports' colour map for attention: viridis (matplotlib's perceptually uniform map, also readable in grey and
 * by the common colour-vision deficiencies). Ten equally spaced stops of the published map, interpolated linearly:
 * lightness rises monotonically from dark purple (low) to yellow (high), so "brighter" always means "more attention".
 */
export const VIRIDIS_STOPS: readonly (readonly [number, number, number])[] = Object.freeze([
  [0x44, 0x01, 0x54],
  [0x48, 0x28, 0x78],
  [0x3e, 0x4a, 0x89],
  [0x31, 0x68, 0x8e],
  [0x26, 0x82, 0x8e],
  [0x1f, 0x9e, 0x89],
  [0x35, 0xb7, 0x79],
  [0x6d, 0xcd, 0x59],
  [0xb4, 0xde, 0x2c],
  [0xfd, 0xe7, 0x25],
] as const);

/** The viridis colour of `t` in [0, 1] (clamped; NaN counts as 0), as 0..255 RGB. */
export function viridis(t: number): [number, number, number] {
  const n = VIRIDIS_STOPS.length - 1;
  const x = (Number.isFinite(t) ? Math.min(Math.max(t, 0), 1) : 0) * n;
  const i = Math.min(Math.floor(x), n - 1);
  const f = x - i;
  const a = VIRIDIS_STOPS[i]!;
  const b = VIRIDIS_STOPS[i + 1]!;
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/** CIE L* (0..100) of an sRGB colour: the perceptual lightness the map must raise monotonically. */
export function cieLightness([r, g, b]: readonly [number, number, number]): number {
  const lin = (c: number) => {
    const v = c / 255;
    return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  const y = 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  return y > 216 / 24389 ? 116 * Math.cbrt(y) - 16 : (24389 / 27) * y;
}

/** A CSS `linear-gradient` through the stops, left (low) to right (high), for the legend's colour bar. */
export function viridisCssGradient(direction = 'to right'): string {
  const n = VIRIDIS_STOPS.length - 1;
  const stops = VIRIDIS_STOPS.map(([r, g, b], i) => `rgb(${r},${g},${b}) ${((i / n) * 100).toFixed(1)}%`);
  return `linear-gradient(${direction}, ${stops.join(', ')})`;
}
