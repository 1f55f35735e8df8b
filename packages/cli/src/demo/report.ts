/**
 * The demo's self-contained HTML report: the scores, the training curves (loss per optimiser step, validation
 * scores per epoch), the distribution of per-image CIDEr and every evaluated image in a paged, sortable and
 * filterable gallery (image, mask view, generated caption, labelled references, categories with probabilities,
 * per-image CIDEr and the attention of each word over the image, with its colour legend). Images are inlined as
 * data URIs and the page script is inline, so the file can be opened or mailed on its own.
 */
import { chartSvg, formatTick, movingAverage, niceTicks, type ChartSeries, type CurvePoint } from '../report/charts';
import { GALLERY_CSS, attentionLegendHtml, escapeHtml, galleryHtml, type GalleryItem } from '../report/gallery';

export { escapeHtml } from '../report/gallery';
export type { CurvePoint } from '../report/charts';

export interface ReportItem {
  id: string;
  /** PNG/JPEG data URIs (small: the image at its own size, e.g. 64 px; the page scales it up). */
  image: string;
  mask: string;
  generated: string;
  references: string[];
  categories: { name: string; probability: number }[];
  /** This image's CIDEr(-D) within the evaluated set (what "best"/"worst" sort by). */
  cider?: number;
  /** More per-image scores to show (e.g. Bleu_4, ROUGE_L). */
  scores?: Record<string, number>;
  /** Side G of the attention grid. */
  grid: number;
  /** Attention of each generated word over the G x G grid, row-major. */
  attention: { word: string; weights: ArrayLike<number> }[];
}

export interface ReportCurve {
  name: string;
  /** The points of a single-series chart (ignored when `series` is given). */
  points: CurvePoint[];
  /** x axis title (e.g. "optimiser step", "epoch"). */
  axis: string;
  /** y axis title. Default: the chart's name. */
  yLabel?: string;
  /** Several series in one chart (e.g. per-step loss and its moving average). */
  series?: ChartSeries[];
}

export interface ReportInput {
  title: string;
  subtitle: string;
  scores: Record<string, number>;
  curves: ReportCurve[];
  items: ReportItem[];
  settings: Record<string, string | number>;
  /** Items per gallery page. Default 24. */
  pageSize?: number;
}

/** A small line chart as inline SVG (markers, ticks and labels on both axes). */
export function lineChartSvg(name: string, points: readonly CurvePoint[], axis: string, width = 440, height = 260, yLabel = name): string {
  return chartSvg({ title: name, xLabel: axis, yLabel, series: [{ name, points }], width, height });
}

/** The per-step loss as faint markers with a moving average over them. */
export function stepLossSeries(points: readonly CurvePoint[]): ChartSeries[] {
  const window = Math.max(1, Math.round(points.length / 25));
  if (points.length < 8) return [{ name: 'loss', points }];
  return [
    { name: 'loss per step', points, line: false, markerRadius: 1.6, opacity: 0.45, color: '#0072b2' },
    { name: `moving average (${window} steps)`, points: movingAverage(points, window), markers: false, color: '#d55e00', lineWidth: 2.5 },
  ];
}

/** Histogram of per-image scores as an SVG bar chart. */
export function histogramSvg(title: string, values: readonly number[], xLabel: string, bins = 20, width = 440, height = 260): string {
  const pad = { left: 52, right: 14, top: 28, bottom: 46 };
  const finite = values.filter(Number.isFinite);
  const head = `<svg class="chart histogram" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(title)}" font-family="system-ui, sans-serif"><text x="${pad.left}" y="17" font-size="14" font-weight="600">${escapeHtml(title)}</text>`;
  if (finite.length === 0) return `${head}<text x="${pad.left}" y="${height / 2}" font-size="12" fill="#666">no data</text></svg>`;
  const lo = Math.min(0, ...finite);
  let hi = Math.max(...finite);
  if (hi === lo) hi = lo + 1;
  // round the range up to a nice tick step so the tick labels are round numbers
  const rough = niceTicks(lo, hi, 5);
  const tickStep = rough.length > 1 ? rough[1]! - rough[0]! : hi - lo;
  hi = lo + Math.ceil((hi - lo) / tickStep - 1e-9) * tickStep;
  if (finite.some((v) => v >= hi)) hi += tickStep;
  const counts = new Array<number>(bins).fill(0);
  for (const v of finite) counts[Math.min(bins - 1, Math.floor(((v - lo) / (hi - lo)) * bins))]! += 1;
  const maxCount = Math.max(...counts);
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const bottom = pad.top + plotH;
  const parts = [head];
  const yTicks = [0, Math.round(maxCount / 2), maxCount].filter((v, i, a) => a.indexOf(v) === i);
  for (const t of yTicks) {
    const y = bottom - (t / maxCount) * plotH;
    parts.push(`<line x1="${pad.left - 5}" y1="${y.toFixed(1)}" x2="${pad.left}" y2="${y.toFixed(1)}" stroke="#555"/><text class="tick y" x="${pad.left - 8}" y="${(y + 4).toFixed(1)}" text-anchor="end" font-size="11">${t}</text>`);
  }
  counts.forEach((c, i) => {
    const x = pad.left + (i / bins) * plotW;
    const h = (c / maxCount) * plotH;
    const from = lo + ((hi - lo) * i) / bins;
    const to = lo + ((hi - lo) * (i + 1)) / bins;
    parts.push(`<rect x="${(x + 1).toFixed(1)}" y="${(bottom - h).toFixed(1)}" width="${Math.max(1, plotW / bins - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="#0072b2"><title>${from.toFixed(2)}–${to.toFixed(2)}: ${c} image${c === 1 ? '' : 's'}</title></rect>`);
  });
  for (const v of niceTicks(lo, hi, 5).filter((t) => t >= lo && t <= hi)) {
    const x = pad.left + ((v - lo) / (hi - lo)) * plotW;
    parts.push(`<line x1="${x.toFixed(1)}" y1="${bottom}" x2="${x.toFixed(1)}" y2="${bottom + 5}" stroke="#555"/><text class="tick x" x="${x.toFixed(1)}" y="${bottom + 18}" text-anchor="middle" font-size="11">${formatTick(v, tickStep)}</text>`);
  }
  parts.push(`<line x1="${pad.left}" y1="${bottom}" x2="${width - pad.right}" y2="${bottom}" stroke="#555"/><line x1="${pad.left}" y1="${pad.top}" x2="${pad.left}" y2="${bottom}" stroke="#555"/>`);
  parts.push(`<text class="axis-label x" x="${pad.left + plotW / 2}" y="${height - 8}" text-anchor="middle" font-size="12">${escapeHtml(xLabel)}</text>`);
  parts.push(`<text class="axis-label y" x="14" y="${pad.top + plotH / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 14 ${pad.top + plotH / 2})">images</text>`);
  parts.push('</svg>');
  return parts.join('');
}

export function toGalleryItem(item: ReportItem): GalleryItem {
  return {
    id: item.id,
    image: item.image,
    mask: item.mask,
    caption: item.generated,
    references: item.references,
    categories: item.categories,
    score: item.cider ?? null,
    scores: item.scores,
    grid: item.grid,
    attention: item.attention,
  };
}

export function renderReport(input: ReportInput): string {
  const scoreRows = Object.entries(input.scores)
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${v.toFixed(4)}</td></tr>`)
    .join('');
  const settingRows = Object.entries(input.settings)
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(String(v))}</td></tr>`)
    .join('');
  const charts = input.curves.map((c) => chartSvg({ title: c.name, xLabel: c.axis, yLabel: c.yLabel ?? c.name, series: c.series ?? [{ name: c.name, points: c.points }] }));
  const ciders = input.items.map((i) => i.cider).filter((v): v is number => v !== undefined && Number.isFinite(v));
  if (ciders.length) charts.push(histogramSvg(`per-image CIDEr (${ciders.length} images)`, ciders, 'CIDEr of one image'));
  const hasScores = ciders.length > 0;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(input.title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 24px; color: #1d1d1f; max-width: 1280px; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: left; }
td { font-variant-numeric: tabular-nums; }
.top { display: flex; flex-wrap: wrap; gap: 32px; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
${GALLERY_CSS}
</style>
</head>
<body>
<h1>${escapeHtml(input.title)}</h1>
<p>${escapeHtml(input.subtitle)}</p>
<div class="top">
<div><h2>Scores (test split)</h2>
<table class="scores">${scoreRows}</table></div>
<div><h2>Settings</h2>
<table class="settings">${settingRows}</table></div>
</div>
<h2>Training curves</h2>
<div class="charts">${charts.join('\n')}</div>
<h2>Captioned images</h2>
<p>All ${input.items.length} evaluated images${hasScores ? ', each with its own CIDEr within this set (sort by best or worst to see what the model gets right and wrong)' : ''}.</p>
${attentionLegendHtml(input.items.filter((i) => i.attention.length > 0).map((i) => i.grid))}
${galleryHtml(input.items.map(toGalleryItem), { sorts: hasScores ? ['best', 'worst', 'name'] : ['name', 'order'], scoreName: 'CIDEr', pageSize: input.pageSize })}
</body>
</html>
`;
}
