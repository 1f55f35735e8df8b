/**
 * The demo's self-contained HTML report: every image with its mask view, generated and reference captions,
 * predicted categories, per-word attention heatmaps, the training curves and the scores table. Images are inlined
 * as data URIs so the file can be opened or mailed on its own.
 */

export interface ReportWord {
  word: string;
  /** PNG data URI of the attention heatmap over the image for this word. */
  heatmap: string;
}

export interface ReportItem {
  id: string;
  /** PNG/JPEG data URIs. */
  image: string;
  mask: string;
  generated: string;
  references: string[];
  categories: { name: string; probability: number }[];
  words: ReportWord[];
}

export interface CurvePoint {
  x: number;
  y: number;
}

export interface ReportInput {
  title: string;
  subtitle: string;
  scores: Record<string, number>;
  curves: { name: string; points: CurvePoint[]; axis: string }[];
  items: ReportItem[];
  settings: Record<string, string | number>;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A small line chart as inline SVG. */
export function lineChartSvg(name: string, points: readonly CurvePoint[], axis: string, width = 420, height = 220): string {
  const pad = { left: 48, right: 12, top: 24, bottom: 32 };
  if (points.length === 0) return `<svg width="${width}" height="${height}" role="img" aria-label="${escapeHtml(name)}"><text x="10" y="20">${escapeHtml(name)}: no data</text></svg>`;
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs) === Math.min(...xs) ? Math.min(...xs) + 1 : Math.max(...xs)];
  const [y0raw, y1raw] = [Math.min(...ys), Math.max(...ys)];
  const [y0, y1] = y0raw === y1raw ? [y0raw - 1, y1raw + 1] : [y0raw, y1raw];
  const sx = (x: number) => pad.left + ((x - x0) / (x1 - x0)) * (width - pad.left - pad.right);
  const sy = (y: number) => height - pad.bottom - ((y - y0) / (y1 - y0)) * (height - pad.top - pad.bottom);
  const path = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ');
  const ticks = [y0, (y0 + y1) / 2, y1]
    .map((y) => `<text x="${pad.left - 6}" y="${sy(y) + 4}" text-anchor="end" font-size="11">${y.toPrecision(3)}</text>`)
    .join('');
  return [
    `<svg class="chart" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(name)}">`,
    `<text x="${pad.left}" y="16" font-size="13" font-weight="bold">${escapeHtml(name)}</text>`,
    `<line x1="${pad.left}" y1="${height - pad.bottom}" x2="${width - pad.right}" y2="${height - pad.bottom}" stroke="#888"/>`,
    `<line x1="${pad.left}" y1="${pad.top}" x2="${pad.left}" y2="${height - pad.bottom}" stroke="#888"/>`,
    ticks,
    `<text x="${(width + pad.left) / 2}" y="${height - 6}" text-anchor="middle" font-size="11">${escapeHtml(axis)}</text>`,
    `<path d="${path}" fill="none" stroke="#1f6feb" stroke-width="2"/>`,
    '</svg>',
  ].join('');
}

export function renderReport(input: ReportInput): string {
  const scoreRows = Object.entries(input.scores)
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${v.toFixed(4)}</td></tr>`)
    .join('');
  const settingRows = Object.entries(input.settings)
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(String(v))}</td></tr>`)
    .join('');
  const items = input.items
    .map((item) => {
      const words = item.words
        .map((w) => `<figure class="word"><img src="${w.heatmap}" alt="attention for ${escapeHtml(w.word)}"><figcaption>${escapeHtml(w.word)}</figcaption></figure>`)
        .join('');
      const categories = item.categories.length
        ? item.categories.map((c) => `<span class="cat">${escapeHtml(c.name)} ${(c.probability * 100).toFixed(0)}%</span>`).join(' ')
        : '<em>none above 0.5</em>';
      return [
        `<section class="item" data-id="${escapeHtml(item.id)}">`,
        `<h3>${escapeHtml(item.id)}</h3>`,
        '<div class="views">',
        `<figure><img class="image" src="${item.image}" alt="image ${escapeHtml(item.id)}"><figcaption>image</figcaption></figure>`,
        `<figure><img class="mask" src="${item.mask}" alt="mask ${escapeHtml(item.id)}"><figcaption>mask view</figcaption></figure>`,
        '</div>',
        `<p class="generated"><strong>generated:</strong> ${escapeHtml(item.generated)}</p>`,
        `<ul class="references">${item.references.map((r) => `<li>${escapeHtml(r)}</li>`).join('')}</ul>`,
        `<p class="categories"><strong>categories:</strong> ${categories}</p>`,
        `<div class="words">${words}</div>`,
        '</section>',
      ].join('\n');
    })
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(input.title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 24px; color: #1d1d1f; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: left; }
.views figure, .word { display: inline-block; margin: 4px; text-align: center; }
.views img { width: 192px; height: 192px; image-rendering: pixelated; border: 1px solid #ccc; }
.word img { width: 72px; height: 72px; image-rendering: pixelated; }
.word figcaption { font-size: 12px; }
.item { border-top: 1px solid #ddd; padding: 12px 0; }
.cat { background: #eef4ff; border-radius: 4px; padding: 1px 6px; }
.charts svg { margin-right: 16px; }
</style>
</head>
<body>
<h1>${escapeHtml(input.title)}</h1>
<p>${escapeHtml(input.subtitle)}</p>
<h2>Scores</h2>
<table class="scores">${scoreRows}</table>
<h2>Training curves</h2>
<div class="charts">${input.curves.map((c) => lineChartSvg(c.name, c.points, c.axis)).join('')}</div>
<h2>Settings</h2>
<table class="settings">${settingRows}</table>
<h2>Captioned images</h2>
${items}
</body>
</html>
`;
}
