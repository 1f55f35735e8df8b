/**
 * Small inline-SVG line charts for the HTML reports: tick marks and tick labels on both axes, axis titles, a marker
 * on every point (with its value as a tooltip) and a legend when there are several series.
 */

export interface CurvePoint {
  x: number;
  y: number;
}

export interface ChartSeries {
  name: string;
  points: readonly CurvePoint[];
  /** CSS colour. Default: the palette in order. */
  color?: string;
  /** Circles on the points. Default true. */
  markers?: boolean;
  /** Marker radius in px. Default 3.5 (2 when the series has more than 60 points). */
  markerRadius?: number;
  /** Join the points. Default true. */
  line?: boolean;
  /** Line width in px. Default 2. */
  lineWidth?: number;
  /** 0..1. Default 1. */
  opacity?: number;
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly ChartSeries[];
  width?: number;
  height?: number;
  /** x values are counts (steps, epochs): ticks only on whole numbers. Default true. */
  integerX?: boolean;
}

/** Colour-blind-safe categorical palette (Okabe-Ito). */
export const CHART_PALETTE = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9'] as const;

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** "Nice" tick positions (steps of 1, 2 or 5 x 10^k) covering [min, max], about `target` of them. */
export function niceTicks(min: number, max: number, target = 5, integer = false): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (min === max) return [min];
  if (min > max) [min, max] = [max, min];
  const raw = (max - min) / Math.max(target, 1);
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step0 = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? 10 * magnitude;
  const step = integer ? Math.max(1, Math.round(step0)) : step0;
  const ticks: number[] = [];
  const first = Math.ceil(min / step - 1e-9) * step;
  for (let v = first; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** A tick label with as many decimals as the tick step needs. */
export function formatTick(value: number, step: number): string {
  if (!Number.isFinite(step) || step <= 0) return String(Number(value.toPrecision(4)));
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
  return value.toFixed(decimals);
}

/** Centred moving average over `window` points (shrinking at the ends). */
export function movingAverage(points: readonly CurvePoint[], window: number): CurvePoint[] {
  const half = Math.max(0, Math.floor(window / 2));
  return points.map((p, i) => {
    const from = Math.max(0, i - half);
    const to = Math.min(points.length - 1, i + half);
    let sum = 0;
    for (let j = from; j <= to; j++) sum += points[j]!.y;
    return { x: p.x, y: sum / (to - from + 1) };
  });
}

export function chartSvg(spec: ChartSpec): string {
  const width = spec.width ?? 440;
  const height = spec.height ?? 260;
  const integerX = spec.integerX ?? true;
  const multi = spec.series.length > 1;
  const pad = { left: 62, right: 14, top: multi ? 44 : 28, bottom: 46 };
  const open = `<svg class="chart" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(spec.title)}" font-family="system-ui, sans-serif">`;
  const title = `<text x="${pad.left}" y="17" font-size="14" font-weight="600">${esc(spec.title)}</text>`;
  const all = spec.series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  if (all.length === 0) return `${open}${title}<text class="no-data" x="${pad.left}" y="${height / 2}" font-size="12" fill="#666">no data</text></svg>`;

  let [x0, x1] = [Math.min(...all.map((p) => p.x)), Math.max(...all.map((p) => p.x))];
  let [y0, y1] = [Math.min(...all.map((p) => p.y)), Math.max(...all.map((p) => p.y))];
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  if (y0 === y1) [y0, y1] = [y0 - Math.max(Math.abs(y0) * 0.1, 0.05), y1 + Math.max(Math.abs(y1) * 0.1, 0.05)];
  const yMargin = (y1 - y0) * 0.06;
  [y0, y1] = [y0 - yMargin, y1 + yMargin];
  const xTicks = niceTicks(x0, x1, Math.min(6, Math.max(2, Math.round((width - pad.left - pad.right) / 70))), integerX).filter((v) => v >= x0 && v <= x1);
  const yTicks = niceTicks(y0, y1, 5).filter((v) => v >= y0 && v <= y1);
  const xStep = xTicks.length > 1 ? xTicks[1]! - xTicks[0]! : 1;
  const yStep = yTicks.length > 1 ? yTicks[1]! - yTicks[0]! : Math.abs(y1 - y0) / 4 || 1;
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const sx = (x: number) => pad.left + ((x - x0) / (x1 - x0)) * plotW;
  const sy = (y: number) => pad.top + plotH - ((y - y0) / (y1 - y0)) * plotH;
  const bottom = pad.top + plotH;

  const parts: string[] = [open, title];
  // grid, ticks and tick labels
  for (const v of yTicks) {
    const y = sy(v).toFixed(1);
    parts.push(`<line x1="${pad.left}" y1="${y}" x2="${width - pad.right}" y2="${y}" stroke="#eee"/>`);
    parts.push(`<line x1="${pad.left - 5}" y1="${y}" x2="${pad.left}" y2="${y}" stroke="#555"/>`);
    parts.push(`<text class="tick y" x="${pad.left - 8}" y="${(Number(y) + 4).toFixed(1)}" text-anchor="end" font-size="11">${formatTick(v, yStep)}</text>`);
  }
  for (const v of xTicks) {
    const x = sx(v).toFixed(1);
    parts.push(`<line x1="${x}" y1="${bottom}" x2="${x}" y2="${bottom + 5}" stroke="#555"/>`);
    parts.push(`<text class="tick x" x="${x}" y="${bottom + 18}" text-anchor="middle" font-size="11">${formatTick(v, xStep)}</text>`);
  }
  parts.push(`<line x1="${pad.left}" y1="${bottom}" x2="${width - pad.right}" y2="${bottom}" stroke="#555"/>`);
  parts.push(`<line x1="${pad.left}" y1="${pad.top}" x2="${pad.left}" y2="${bottom}" stroke="#555"/>`);
  // axis titles
  parts.push(`<text class="axis-label x" x="${pad.left + plotW / 2}" y="${height - 8}" text-anchor="middle" font-size="12">${esc(spec.xLabel)}</text>`);
  parts.push(
    `<text class="axis-label y" x="14" y="${pad.top + plotH / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 14 ${pad.top + plotH / 2})">${esc(spec.yLabel)}</text>`,
  );
  // series
  spec.series.forEach((s, index) => {
    const color = s.color ?? CHART_PALETTE[index % CHART_PALETTE.length]!;
    const points = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    const opacity = s.opacity ?? 1;
    if ((s.line ?? true) && points.length > 1) {
      const d = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join('');
      parts.push(`<path class="series" d="${d}" fill="none" stroke="${color}" stroke-width="${s.lineWidth ?? 2}" stroke-opacity="${opacity}" stroke-linejoin="round"/>`);
    }
    if (s.markers ?? true) {
      const r = s.markerRadius ?? (points.length > 60 ? 2 : 3.5);
      const circles = points.map(
        (p) =>
          `<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="${r}"><title>${esc(s.name)}: ${esc(spec.xLabel)} ${Number(p.x.toPrecision(6))}, ${Number(p.y.toPrecision(4))}</title></circle>`,
      );
      parts.push(`<g class="markers" fill="${color}" fill-opacity="${opacity}" stroke="#fff" stroke-width="0.7">${circles.join('')}</g>`);
    }
  });
  if (multi) {
    let x = pad.left;
    spec.series.forEach((s, index) => {
      const color = s.color ?? CHART_PALETTE[index % CHART_PALETTE.length]!;
      parts.push(`<rect x="${x}" y="26" width="12" height="4" fill="${color}"/><text class="legend-entry" x="${x + 16}" y="31" font-size="11">${esc(s.name)}</text>`);
      x += 28 + s.name.length * 6;
    });
  }
  parts.push('</svg>');
  return parts.join('');
}
