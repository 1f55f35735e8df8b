/**
 * `s2cpnet caption --report out.html`: a self-contained HTML page for your own images (each image, its mask view,
 * the caption, the predicted categories and per-word attention), in the demo report's style.
 */
import { writeFileAtomic } from '@s2cpnet/core';
import { encodePng, type RgbImage } from '@s2cpnet/data';
import { attentionOverlay, pngDataUri } from '../demo/heatmap';
import { escapeHtml } from '../demo/report';

/** One captioned image of the report. */
export interface CaptionReportItem {
  /** The name shown (the input path as the user gave it). */
  file: string;
  /** The decoded image (any size: the report shows it as is). */
  image: RgbImage;
  /** The mask view the model read, or null for a single-view model. */
  maskView: RgbImage | null;
  caption: string;
  categories: { name: string; probability: number }[];
  /** Attention of each generated word over the G x G grid (`grid`), row-major; empty when not collected. */
  attention: { word: string; weights: Float32Array | readonly number[] }[];
  /** Side G of the attention grid. */
  grid: number;
}

/** A failed input (with `--on-error skip`), listed in the report. */
export interface CaptionReportFailure {
  file: string;
  error: string;
}

export interface CaptionReportInput {
  title: string;
  /** Lines about the run (checkpoint, beam, backend, ...). */
  settings: Record<string, string | number>;
  items: CaptionReportItem[];
  failures?: CaptionReportFailure[];
}

/** The report page as one HTML string (images inlined as PNG data URIs). */
export function renderCaptionReport(input: CaptionReportInput): string {
  const rows = input.items.map((item) => {
    const words = item.attention
      .map((a) => {
        const overlay = attentionOverlay(item.image, Float32Array.from(a.weights), item.grid);
        return `<figure class="word"><img src="${pngDataUri(encodePng(overlay))}" alt="attention of ${escapeHtml(a.word)}"><figcaption>${escapeHtml(a.word)}</figcaption></figure>`;
      })
      .join('');
    const categories = item.categories.map((c) => `<li>${escapeHtml(c.name)} ${(c.probability * 100).toFixed(0)}%</li>`).join('');
    return [
      '<section class="item">',
      `<h2>${escapeHtml(item.file)}</h2>`,
      `<div class="views"><img src="${pngDataUri(encodePng(item.image))}" alt="image">`,
      item.maskView ? `<img src="${pngDataUri(encodePng(item.maskView))}" alt="mask view">` : '',
      '</div>',
      `<p class="caption">${escapeHtml(item.caption)}</p>`,
      categories ? `<ul class="categories">${categories}</ul>` : '',
      words ? `<div class="words">${words}</div>` : '',
      '</section>',
    ].join('');
  });
  const failures = (input.failures ?? []).map((f) => `<li><code>${escapeHtml(f.file)}</code>: ${escapeHtml(f.error)}</li>`).join('');
  const settings = Object.entries(input.settings)
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(String(v))}</td></tr>`)
    .join('');
  return [
    '<!doctype html><html lang="en"><head><meta charset="utf-8">',
    `<title>${escapeHtml(input.title)}</title>`,
    '<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px}.views img,.word img{image-rendering:auto;max-width:224px;margin-right:8px}.word{display:inline-block;margin:0 6px 6px 0;text-align:center}.word img{width:112px}.caption{font-size:1.1rem}section.item{border-top:1px solid #ddd;padding:1rem 0}</style>',
    `</head><body><h1>${escapeHtml(input.title)}</h1>`,
    `<table class="settings">${settings}</table>`,
    rows.join('\n'),
    failures ? `<h2>Not captioned</h2><ul class="failures">${failures}</ul>` : '',
    '</body></html>\n',
  ].join('\n');
}

/** Writes the report atomically. */
export async function writeCaptionReport(file: string, input: CaptionReportInput): Promise<void> {
  await writeFileAtomic(file, renderCaptionReport(input));
}
