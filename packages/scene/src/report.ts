/**
 * The scene report: one self-contained HTML page with the scene shrunk to at most 1024 px (a PNG data URL), the tile
 * grid drawn over it, each tile's caption on hover, and a category heat layer (a select of the predicted categories;
 * each tile filled in viridis by that category's probability, with a legend).
 */
import { writeFileAtomic } from '@s2cpnet/core';
import { encodePng, VIRIDIS_STOPS, viridisCssGradient } from '@s2cpnet/data';
import type { SceneCaptionResult } from './caption-scene';
import { tilesInOrder } from './writers';

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON that is safe inside a `<script>` element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

export interface SceneReportOptions {
  title?: string;
  /** Extra rows of the settings table (checkpoint, backend, ...). */
  settings?: Record<string, string | number>;
}

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em}
table.settings{border-collapse:collapse;margin-bottom:1em}
table.settings th,table.settings td{text-align:left;padding:2px 10px 2px 0;vertical-align:top}
.layout{display:flex;gap:1.5em;align-items:flex-start;flex-wrap:wrap}
.scene-map{position:relative;display:inline-block;line-height:0;border:1px solid #999}
.scene-map img{display:block;image-rendering:auto}
.scene-map svg{position:absolute;left:0;top:0;width:100%;height:100%}
.scene-map rect{fill:transparent;stroke:rgba(255,255,255,.75);stroke-width:1;vector-effect:non-scaling-stroke;cursor:pointer}
.scene-map rect.skipped{stroke:rgba(255,80,80,.8);stroke-dasharray:3 3}
.scene-map rect.active{stroke:#ff0;stroke-width:3}
.panel{min-width:18em;max-width:28em}
#tile-info{min-height:6em;border:1px solid #ccc;padding:.6em;border-radius:4px;background:#fafafa}
#tile-info .caption{font-size:1.1em;font-weight:600}
.legend{margin-top:.8em}
.legend-bar{height:12px;width:220px;background:${viridisCssGradient()}}
.legend-labels{display:flex;justify-content:space-between;width:220px;font-size:.85em}
.note{color:#555;font-size:.9em}
`;

/** The page script: hover shows a tile's caption; the select fills tiles by a category's probability. */
const SCRIPT = `(() => {
  const data = JSON.parse(document.getElementById('scene-data').textContent);
  const stops = ${JSON.stringify(VIRIDIS_STOPS)};
  const viridis = (t) => {
    const x = Math.min(Math.max(t, 0), 1) * 9, i = Math.min(Math.floor(x), 8), f = x - i, a = stops[i], b = stops[i + 1];
    return 'rgb(' + [0, 1, 2].map((k) => Math.round(a[k] + (b[k] - a[k]) * f)).join(',') + ')';
  };
  const info = document.getElementById('tile-info');
  const select = document.getElementById('category');
  const legend = document.querySelector('.legend');
  const rects = Array.from(document.querySelectorAll('.scene-map rect'));
  const byIndex = new Map(data.tiles.map((t) => [t.i, t]));
  const text = (tag, cls, value) => { const e = document.createElement(tag); if (cls) e.className = cls; e.textContent = value; return e; };
  const show = (tile) => {
    info.replaceChildren();
    info.append(text('div', 'where', 'tile ' + tile.i + ' (row ' + tile.r + ', col ' + tile.c + '), pixels [' + tile.w.join(', ') + ']'));
    if (tile.s) { info.append(text('div', 'caption skipped', 'skipped: ' + tile.s)); return; }
    info.append(text('div', 'caption', tile.cap));
    info.append(text('div', 'categories', tile.cats.length ? tile.cats.map((c) => c[0] + ' ' + c[1].toFixed(2)).join(', ') : 'no category predicted'));
  };
  for (const rect of rects) {
    rect.addEventListener('mouseenter', () => {
      rects.forEach((r) => r.classList.remove('active'));
      rect.classList.add('active');
      show(byIndex.get(Number(rect.dataset.index)));
    });
  }
  const paint = () => {
    const name = select.value;
    legend.hidden = !name;
    for (const rect of rects) {
      const tile = byIndex.get(Number(rect.dataset.index));
      const hit = name && !tile.s ? tile.cats.find((c) => c[0] === name) : undefined;
      rect.style.fill = hit ? viridis(hit[1]) : 'transparent';
      rect.style.fillOpacity = hit ? '0.6' : '0';
      rect.dataset.probability = hit ? String(hit[1]) : '';
    }
  };
  select.addEventListener('change', paint);
  paint();
  document.querySelector('.scene-map').dataset.ready = 'true';
})();`;

/** The HTML of the scene report (needs `result.preview`). */
export function renderSceneReport(result: SceneCaptionResult, options: SceneReportOptions = {}): string {
  const { scene, plan } = result;
  const preview = result.preview;
  if (!preview) throw new Error('renderSceneReport: the result has no preview (captionScene with previewSize 0)');
  const png = Buffer.from(encodePng(preview)).toString('base64');
  const tiles = tilesInOrder(result);
  const categories = [...new Set(result.tiles.flatMap((t) => t.categories.map((c) => c.name)))].sort();
  const title = options.title ?? `s2cpnet caption-scene: ${scene.source}`;
  const settings: Record<string, string | number> = {
    scene: scene.source,
    size: `${scene.width} x ${scene.height} px, bands ${scene.bands.join(',')}, ${scene.bitsPerSample}-bit ${scene.sampleFormat}`,
    CRS: scene.crs ? scene.crs.name : 'none (pixel coordinates)',
    'ground sample distance': scene.gsd ? `${scene.gsd.x.toFixed(3)} x ${scene.gsd.y.toFixed(3)} m/px` : 'unknown',
    tiles: `${plan.total} of ${plan.tile} px (${plan.columns} x ${plan.rows} grid), overlap ${plan.overlap}${plan.gsd ? `, read at ${plan.gsd} m/px` : ''}; ${result.tiles.length} captioned, ${result.skipped.length} skipped (nodata)`,
    ...options.settings,
  };
  const data = {
    width: scene.width,
    height: scene.height,
    tiles: tiles.map((t) =>
      'caption' in t
        ? { i: t.index, r: t.row, c: t.col, w: t.window, cap: t.caption, cats: t.categories.map((c) => [c.name, Math.round(c.probability * 1000) / 1000]) }
        : { i: t.index, r: t.row, c: t.col, w: t.window, s: `${Math.round(t.nodataFraction * 100)}% nodata`, cats: [] },
    ),
  };
  const rects = tiles
    .map((t) => {
      const [x0, y0, x1, y1] = t.window;
      const label = 'caption' in t ? t.caption : 'skipped (nodata)';
      return `<rect data-index="${t.index}" class="${'caption' in t ? 'tile' : 'tile skipped'}" x="${x0}" y="${y0}" width="${x1 - x0}" height="${y1 - y0}"><title>${escapeHtml(label)}</title></rect>`;
    })
    .join('');
  return [
    '<!doctype html><html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title><style>${CSS}</style></head><body>`,
    `<h1>${escapeHtml(title)}</h1>`,
    `<table class="settings">${Object.entries(settings)
      .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(String(v))}</td></tr>`)
      .join('')}</table>`,
    '<div class="layout">',
    `<div class="scene-map" style="width:${preview.width}px;height:${preview.height}px">`,
    `<img alt="the scene, shrunk to ${preview.width} x ${preview.height} px" width="${preview.width}" height="${preview.height}" src="data:image/png;base64,${png}">`,
    `<svg viewBox="0 0 ${scene.width} ${scene.height}" preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">${rects}</svg>`,
    '</div>',
    '<div class="panel">',
    `<label>Category heat layer <select id="category"><option value="">none</option>${categories.map((c) => `<option value="${escapeHtml(c)}">${escapeHtml(c)}</option>`).join('')}</select></label>`,
    '<div class="legend" hidden><div class="legend-bar"></div><div class="legend-labels"><span>0</span><span>probability</span><span>1</span></div>',
    '<p class="note">Unfilled tiles: the category is not predicted there (probability below 0.5).</p></div>',
    '<h2>Tile</h2><div id="tile-info"><span class="note">Point at a tile to see its caption.</span></div>',
    result.coordinates === 'pixel' ? '<p class="note">The scene has no georeferencing: the GeoJSON/CSV positions are pixels, not longitude/latitude.</p>' : '',
    '<p class="note">Dashed red outlines: tiles skipped because mostly nodata (more than the --max-nodata share, 0.5 by default).</p>',
    '</div></div>',
    `<script type="application/json" id="scene-data">${scriptJson(data)}</script>`,
    `<script>${SCRIPT}</script>`,
    '</body></html>',
  ].join('\n');
}

/** Writes the scene report atomically (a temporary file, then a rename). */
export async function writeSceneReport(file: string, result: SceneCaptionResult, options: SceneReportOptions = {}): Promise<void> {
  await writeFileAtomic(file, renderSceneReport(result, options));
}
