/**
 * `s2cpnet caption --report out.html`: a self-contained HTML page for your own images, in the demo report's visual
 * language: each image with its mask view, the generated caption, the predicted categories with their
 * probabilities and the attention of each word over the image (viridis with a legend, and a note when the grid is
 * too coarse to localise anything). Many images are paged, sortable and filterable in the page.
 */
import { writeFileAtomic } from '@s2cpnet/core';
import { encodePng, resizeBilinear, type RgbImage } from '@s2cpnet/data';
import { pngDataUri } from '../demo/heatmap';
import { GALLERY_CSS, attentionLegendHtml, escapeHtml, galleryHtml, type GalleryItem } from './gallery';

/** One captioned image of the report. */
export interface CaptionReportItem {
  /** The name shown (the input path as the user gave it). */
  file: string;
  /** The decoded image (any size: the report embeds it at most `maxImageSide` px on its longer side). */
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
  /** Images per page. Default 24. */
  pageSize?: number;
  /** Longest side, in px, of the images embedded in the file (larger ones are scaled down). Default 256. */
  maxImageSide?: number;
}

/** The image scaled down (bilinear) so that its longer side is at most `maxSide`; smaller images are kept. */
export function thumbnail(image: RgbImage, maxSide: number): RgbImage {
  const longer = Math.max(image.width, image.height);
  if (longer <= maxSide) return image;
  const scale = maxSide / longer;
  return resizeBilinear(image, Math.max(1, Math.round(image.width * scale)), Math.max(1, Math.round(image.height * scale)));
}

function toGalleryItem(item: CaptionReportItem, maxSide: number): GalleryItem {
  return {
    id: item.file,
    image: pngDataUri(encodePng(thumbnail(item.image, maxSide))),
    mask: item.maskView ? pngDataUri(encodePng(thumbnail(item.maskView, maxSide))) : null,
    caption: item.caption,
    categories: item.categories,
    aspect: item.image.height / item.image.width,
    grid: item.grid,
    attention: item.attention,
  };
}

/** The report page as one HTML string (images inlined as PNG data URIs, overlays drawn in the page). */
export function renderCaptionReport(input: CaptionReportInput): string {
  const maxSide = input.maxImageSide ?? 256;
  const items = input.items.map((item) => toGalleryItem(item, maxSide));
  const failures = (input.failures ?? []).map((f) => `<li><code>${escapeHtml(f.file)}</code>: ${escapeHtml(f.error)}</li>`).join('');
  const settings = Object.entries(input.settings)
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(String(v))}</td></tr>`)
    .join('');
  const grids = input.items.filter((i) => i.attention.length > 0).map((i) => i.grid);
  return [
    '<!doctype html><html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(input.title)}</title>`,
    `<style>body{font-family:system-ui,sans-serif;margin:24px;color:#1d1d1f;max-width:1280px}table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #ccc;padding:4px 10px;text-align:left}${GALLERY_CSS}</style>`,
    `</head><body><h1>${escapeHtml(input.title)}</h1>`,
    `<table class="settings">${settings}</table>`,
    `<h2>Captioned images (${input.items.length})</h2>`,
    grids.length ? attentionLegendHtml(grids) : '',
    input.items.length
      ? galleryHtml(items, { sorts: ['order', 'name', 'confidence'], captionLabel: 'generated caption', pageSize: input.pageSize })
      : '<p class="empty">No image was captioned.</p>',
    failures ? `<h2>Not captioned</h2><ul class="failures">${failures}</ul>` : '',
    '</body></html>\n',
  ].join('\n');
}

/** Writes the report atomically. */
export async function writeCaptionReport(file: string, input: CaptionReportInput): Promise<void> {
  await writeFileAtomic(file, renderCaptionReport(input));
}
