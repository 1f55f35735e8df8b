/**
 * The paged image gallery shared by the demo report and `caption --report`: the items travel as one compact JSON
 * block inside the HTML (small PNG data URIs and raw attention weights, not one PNG per word), and a small script
 * renders the visible page only: image, mask view, the attention of the chosen word over the image (viridis, with
 * a legend) and one small overlay per word; sorting, a text filter and page buttons. No external resources.
 */
import { VIRIDIS_STOPS, viridisCssGradient } from '@s2cpnet/data';

/** Attention grids this coarse or coarser (G <= 2: each cell is a quarter of the image or more) cannot localise. */
export const COARSE_GRID_MAX = 2;

export const DEFAULT_PAGE_SIZE = 24;

export type GallerySort = 'best' | 'worst' | 'name' | 'order' | 'confidence';

export interface GalleryItem {
  /** The name shown (file name or path). */
  id: string;
  /** Image as a data URI (PNG/JPEG), shown at the report's view size. */
  image: string;
  /** The mask view as a data URI, or null/absent. */
  mask?: string | null;
  caption: string;
  references?: readonly string[];
  categories: readonly { name: string; probability: number }[];
  /** The score that `best`/`worst` sort by (the demo: per-image CIDEr). */
  score?: number | null;
  /** More per-image scores to show, name -> value. */
  scores?: Readonly<Record<string, number>>;
  /** Height / width of the image (default 1): the views keep it. */
  aspect?: number;
  /** Side G of the attention grid. */
  grid: number;
  /** Per generated word: its weights over the G x G grid, row-major. */
  attention: readonly { word: string; weights: ArrayLike<number> }[];
}

export interface GalleryOptions {
  /** Items per page. Default 24. */
  pageSize?: number;
  /** The sorts offered, the first is the initial one. */
  sorts: readonly GallerySort[];
  /** Name of `score` (e.g. "CIDEr"). */
  scoreName?: string;
  /** Label of the caption. Default "generated caption". */
  captionLabel?: string;
  /** Displayed size of the image, mask and main attention view in px. Default 192. */
  viewSize?: number;
  /** Displayed size of the per-word overlays in px. Default 96. */
  wordSize?: number;
}

const SORT_LABELS: Record<GallerySort, (scoreName: string) => string> = {
  best: (s) => `best ${s} first`,
  worst: (s) => `worst ${s} first`,
  name: () => 'by name',
  order: () => 'input order',
  confidence: () => 'most confident category first',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON that is safe inside a `<script>` element. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** The note shown when a G x G grid is too coarse to localise anything, or null when it is fine. */
export function coarseGridNote(grid: number): string | null {
  if (grid > COARSE_GRID_MAX) return null;
  const share = grid <= 1 ? 'the whole image' : `1/${grid * grid} of the image`;
  return (
    `The attention grid is ${grid}×${grid}: each cell covers ${share}, so these maps can at most say which ` +
    `${grid <= 1 ? 'image (all of it)' : 'quadrant'} a word leaned on; they cannot localise objects. ` +
    'They are drawn as flat cells with their borders, not smoothed, so as not to suggest detail that is not there.'
  );
}

/** The colour legend of the attention overlays (and, when any grid is too coarse, the note about it). */
export function attentionLegendHtml(grids: readonly number[]): string {
  const distinct = [...new Set(grids)].sort((a, b) => a - b);
  const coarse = distinct.filter((g) => g <= COARSE_GRID_MAX);
  const gridText = distinct.length ? `Attention grid: ${distinct.map((g) => `${g}×${g}`).join(', ')} cells over the image.` : '';
  return [
    '<div class="legend">',
    '<div class="legend-scale" role="img" aria-label="attention colour scale: dark purple is low, yellow is high">',
    '<span class="legend-end">low</span>',
    `<span class="legend-bar" style="background:${viridisCssGradient()}"></span>`,
    '<span class="legend-end">high attention</span>',
    '</div>',
    '<p class="legend-text">',
    'Colours (viridis, over a grey copy of the image) are normalised per word: dark purple = the cell that word attended to least, yellow = most. ',
    'The number under a word (×N) is its peak weight divided by the uniform weight 1/G²: ×1.0 means the attention ',
    `is spread evenly, higher means focused. Click a word to show it large. ${gridText}`,
    '</p>',
    coarse.length ? `<p class="coarse-note global">⚠ ${escapeHtml(coarseGridNote(coarse[0]!)!)}</p>` : '',
    '</div>',
  ].join('');
}

function round4(value: number): number {
  return Number.isFinite(value) ? Math.round(value * 1e4) / 1e4 : 0;
}

/** The compact JSON form of the items the page script reads. */
export function galleryData(items: readonly GalleryItem[], options: GalleryOptions): unknown {
  return {
    config: {
      pageSize: options.pageSize ?? DEFAULT_PAGE_SIZE,
      sort: options.sorts[0] ?? 'order',
      scoreName: options.scoreName ?? 'score',
      captionLabel: options.captionLabel ?? 'generated caption',
      viewSize: options.viewSize ?? 192,
      wordSize: options.wordSize ?? 96,
      coarseMax: COARSE_GRID_MAX,
    },
    items: items.map((item, i) => ({
      i,
      id: item.id,
      img: item.image,
      mask: item.mask ?? null,
      cap: item.caption,
      refs: item.references ?? [],
      cats: item.categories.map((c) => [c.name, round4(c.probability)]),
      score: item.score === undefined || item.score === null || !Number.isFinite(item.score) ? null : round4(item.score),
      scores: item.scores ? Object.fromEntries(Object.entries(item.scores).map(([k, v]) => [k, round4(v)])) : {},
      aspect: item.aspect && Number.isFinite(item.aspect) && item.aspect > 0 ? round4(item.aspect) : 1,
      grid: item.grid,
      att: item.attention.map((a) => [a.word, Array.from(a.weights, round4)]),
    })),
  };
}

export const GALLERY_CSS = `
.legend { margin: 8px 0 12px; max-width: 980px; }
.legend-scale { display: flex; align-items: center; gap: 8px; font-size: 13px; }
.legend-bar { display: inline-block; width: 240px; height: 14px; border: 1px solid #999; border-radius: 2px; }
.legend-text { font-size: 13px; color: #444; margin: 6px 0; }
.coarse-note { background: #fff4d6; border-left: 4px solid #e0a800; padding: 6px 10px; font-size: 13px; margin: 6px 0; }
.item .coarse-note { display: inline-block; margin: 4px 0; }
.toolbar { display: flex; flex-wrap: wrap; gap: 16px; align-items: center; padding: 8px 0; position: sticky; top: 0; background: #fff; z-index: 2; border-bottom: 1px solid #ddd; }
.toolbar input.filter { width: 280px; padding: 3px 6px; }
.toolbar .count { color: #444; font-size: 13px; }
.toolbar .mini-legend { margin-left: auto; font-size: 12px; color: #444; display: flex; align-items: center; gap: 4px; }
.toolbar .mini-bar { display: inline-block; width: 90px; height: 10px; border: 1px solid #999; }
.pager { display: flex; flex-wrap: wrap; gap: 4px; margin: 10px 0; align-items: center; }
.pager button { min-width: 32px; padding: 3px 8px; border: 1px solid #bbb; background: #f6f6f6; border-radius: 4px; cursor: pointer; }
.pager button.current { background: #0072b2; color: #fff; border-color: #0072b2; font-weight: 600; }
.pager button:disabled { opacity: .45; cursor: default; }
.pager .gap { padding: 0 4px; color: #777; }
.item { border-top: 1px solid #ddd; padding: 12px 0; }
.item header { display: flex; gap: 14px; align-items: baseline; flex-wrap: wrap; }
.item h3 { margin: 0; font-size: 15px; font-family: ui-monospace, monospace; }
.item .score { font-weight: 600; }
.item .score.low { color: #b00020; }
.item .rank, .item .more-scores { color: #555; font-size: 13px; }
.item .body { display: flex; flex-wrap: wrap; gap: 16px; margin-top: 8px; }
.item figure { margin: 0; display: inline-block; text-align: center; vertical-align: top; }
.item figcaption { font-size: 12px; color: #444; margin-top: 2px; }
.item .views { display: flex; gap: 10px; }
.item .views img, .item .views canvas { border: 1px solid #ccc; display: block; }
.item .text { flex: 1 1 360px; min-width: 300px; font-size: 14px; }
.label { display: inline-block; min-width: 92px; font-size: 12px; color: #555; font-weight: 600; }
.generated { margin: 0 0 6px; font-size: 15px; }
.generated .label { color: #0072b2; }
ol.references { list-style: none; padding: 0; margin: 0 0 6px; }
ol.references li { margin: 2px 0; color: #333; }
.categories { margin: 6px 0; display: flex; flex-wrap: wrap; gap: 6px; align-items: center; }
.cat { position: relative; display: inline-block; min-width: 110px; border: 1px solid #c9d7ef; border-radius: 4px; padding: 1px 6px; font-size: 13px; overflow: hidden; }
.cat .bar { position: absolute; left: 0; top: 0; bottom: 0; background: #dbe8fb; z-index: 0; }
.cat .t { position: relative; z-index: 1; }
.words { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 8px; }
.words figure { cursor: pointer; padding: 2px; border: 2px solid transparent; border-radius: 4px; }
.words figure.selected { border-color: #0072b2; }
.words canvas { display: block; }
.words .peak { color: #666; font-size: 11px; }
.empty { color: #666; font-style: italic; }
`;

/**
 * The page script. Pure helpers live on `S2` (unit-tested by running this text in a VM); the DOM part runs only
 * where there is a document with a `#gallery` element.
 */
export const GALLERY_CLIENT_JS = String.raw`(function () {
'use strict';
var VIRIDIS = __VIRIDIS__;
var S2 = {};
S2.viridis = function (t) {
  var n = VIRIDIS.length - 1;
  var x = (isFinite(t) ? Math.min(Math.max(t, 0), 1) : 0) * n;
  var i = Math.min(Math.floor(x), n - 1), f = x - i, a = VIRIDIS[i], b = VIRIDIS[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
};
/** Per-word min-max normalisation; peak = max weight / uniform weight. */
S2.normalise = function (weights) {
  var min = Infinity, max = -Infinity, sum = 0, i;
  for (i = 0; i < weights.length; i++) { min = Math.min(min, weights[i]); max = Math.max(max, weights[i]); sum += weights[i]; }
  var values = new Array(weights.length), span = max - min;
  for (i = 0; i < weights.length; i++) values[i] = span > 1e-9 ? (weights[i] - min) / span : 0.5;
  var peak = weights.length && sum > 0 ? max / (sum / weights.length) : 1;
  return { values: values, peak: peak };
};
/** Values on a G x G grid to a w x h raster: bilinear between cell centres (smooth) or flat cells. */
S2.upsample = function (values, grid, w, h, smooth) {
  var out = new Float32Array(w * h);
  function at(r, c) { r = Math.min(grid - 1, Math.max(0, r)); c = Math.min(grid - 1, Math.max(0, c)); return values[r * grid + c]; }
  for (var y = 0; y < h; y++) {
    var gy = ((y + 0.5) / h) * grid - 0.5, r0 = Math.floor(gy), fy = gy - r0;
    for (var x = 0; x < w; x++) {
      var gx = ((x + 0.5) / w) * grid - 0.5, c0 = Math.floor(gx), fx = gx - c0;
      out[y * w + x] = smooth
        ? (1 - fy) * ((1 - fx) * at(r0, c0) + fx * at(r0, c0 + 1)) + fy * ((1 - fx) * at(r0 + 1, c0) + fx * at(r0 + 1, c0 + 1))
        : at(Math.floor((y / h) * grid), Math.floor((x / w) * grid));
    }
  }
  return out;
};
function byName(a, b) { return a.id.localeCompare(b.id, undefined, { numeric: true, sensitivity: 'base' }) || a.i - b.i; }
function topProbability(item) { var best = -1; for (var k = 0; k < item.cats.length; k++) best = Math.max(best, item.cats[k][1]); return best; }
/** A sorted copy: best/worst by score (items without one last), name, input order, most confident category. */
S2.sortItems = function (items, sort) {
  var list = items.slice();
  function scored(dir) {
    return function (a, b) {
      if (a.score === null && b.score === null) return byName(a, b);
      if (a.score === null) return 1;
      if (b.score === null) return -1;
      return dir * (a.score - b.score) || byName(a, b);
    };
  }
  if (sort === 'best') list.sort(scored(-1));
  else if (sort === 'worst') list.sort(scored(1));
  else if (sort === 'name') list.sort(byName);
  else if (sort === 'confidence') list.sort(function (a, b) { return topProbability(b) - topProbability(a) || byName(a, b); });
  else list.sort(function (a, b) { return a.i - b.i; });
  return list;
};
/** Items whose name, caption, references or categories contain every word of the query (case-insensitive). */
S2.filterItems = function (items, query) {
  var terms = String(query || '').toLowerCase().split(/\s+/).filter(Boolean);
  if (!terms.length) return items.slice();
  return items.filter(function (item) {
    var text = [item.id, item.cap].concat(item.refs, item.cats.map(function (c) { return c[0]; })).join('\n').toLowerCase();
    return terms.every(function (t) { return text.indexOf(t) >= 0; });
  });
};
S2.pageCount = function (n, size) { return Math.max(1, Math.ceil(n / size)); };
S2.pageSlice = function (list, page, size) { return list.slice(page * size, page * size + size); };
/** Page indices to show as buttons (0-based), null for a gap: first, last and two either side of the current. */
S2.pageButtons = function (page, total) {
  var out = [], last = -1;
  for (var p = 0; p < total; p++) {
    if (total <= 9 || p === 0 || p === total - 1 || Math.abs(p - page) <= 2) {
      if (last >= 0 && p - last > 1) out.push(null);
      out.push(p);
      last = p;
    }
  }
  return out;
};

function el(tag, cls, text) {
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
var imageCache = {};
function loadImage(src) {
  if (!imageCache[src]) {
    imageCache[src] = new Promise(function (resolve, reject) {
      var img = new Image();
      img.onload = function () { resolve(img); };
      img.onerror = function () { reject(new Error('image failed to load')); };
      img.src = src;
    });
  }
  return imageCache[src];
}
/** Draws the image with one word's attention blended over it. */
S2.drawOverlay = function (canvas, img, weights, grid, coarseMax) {
  var w = canvas.width, h = canvas.height, ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(img, 0, 0, w, h);
  var px = ctx.getImageData(0, 0, w, h), d = px.data;
  var coarse = grid <= coarseMax;
  var heat = S2.upsample(S2.normalise(weights).values, grid, w, h, !coarse);
  for (var i = 0; i < w * h; i++) {
    var c = S2.viridis(heat[i]), o = i * 4;
    // the map over a grey copy of the image (so hue comes from the map only); more opaque where attention is high
    var grey = 0.299 * d[o] + 0.587 * d[o + 1] + 0.114 * d[o + 2], a = 0.45 + 0.35 * heat[i];
    d[o] = (1 - a) * grey + a * c[0];
    d[o + 1] = (1 - a) * grey + a * c[1];
    d[o + 2] = (1 - a) * grey + a * c[2];
  }
  ctx.putImageData(px, 0, 0);
  if (coarse && grid > 1) {
    ctx.strokeStyle = 'rgba(255,255,255,0.85)';
    ctx.lineWidth = 1;
    for (var k = 1; k < grid; k++) {
      ctx.beginPath(); ctx.moveTo(Math.round((k * w) / grid) + 0.5, 0); ctx.lineTo(Math.round((k * w) / grid) + 0.5, h); ctx.stroke();
      ctx.beginPath(); ctx.moveTo(0, Math.round((k * h) / grid) + 0.5); ctx.lineTo(w, Math.round((k * h) / grid) + 0.5); ctx.stroke();
    }
  }
};

function start(root) {
  var data = JSON.parse(document.getElementById(root.getAttribute('data-source')).textContent);
  var config = data.config, all = data.items;
  var state = { sort: config.sort, query: '', page: 0 };
  var rankOf = {};
  S2.sortItems(all, 'best').forEach(function (item, r) { if (item.score !== null) rankOf[item.i] = r + 1; });
  var scored = all.filter(function (item) { return item.score !== null; }).map(function (item) { return item.score; }).sort(function (a, b) { return a - b; });
  var lowCut = scored.length ? scored[Math.floor(scored.length * 0.1)] : -Infinity;
  var sortSelect = root.querySelector('select.sort');
  var filterInput = root.querySelector('input.filter');
  var count = root.querySelector('.count');
  var list = root.querySelector('.items');
  var pagers = root.querySelectorAll('.pager');

  function renderPager(pager, page, total) {
    pager.textContent = '';
    var prev = el('button', 'prev', '‹ prev');
    prev.disabled = page === 0;
    prev.onclick = function () { go(state.page - 1); };
    pager.appendChild(prev);
    S2.pageButtons(page, total).forEach(function (p) {
      if (p === null) { pager.appendChild(el('span', 'gap', '…')); return; }
      var b = el('button', 'page' + (p === page ? ' current' : ''), String(p + 1));
      b.setAttribute('data-page', String(p));
      b.onclick = function () { go(p); };
      pager.appendChild(b);
    });
    var next = el('button', 'next', 'next ›');
    next.disabled = page >= total - 1;
    next.onclick = function () { go(state.page + 1); };
    pager.appendChild(next);
  }

  function renderItem(item) {
    var section = el('section', 'item');
    section.setAttribute('data-id', item.id);
    if (item.score !== null) section.setAttribute('data-score', String(item.score));
    var header = el('header');
    header.appendChild(el('h3', null, item.id));
    if (item.score !== null) {
      header.appendChild(el('span', 'score' + (item.score <= lowCut ? ' low' : ''), config.scoreName + ' ' + item.score.toFixed(3)));
      header.appendChild(el('span', 'rank', 'rank ' + rankOf[item.i] + ' of ' + scored.length));
    }
    var extra = Object.keys(item.scores).filter(function (k) { return k !== config.scoreName; });
    if (extra.length) header.appendChild(el('span', 'more-scores', extra.map(function (k) { return k + ' ' + item.scores[k].toFixed(3); }).join(' · ')));
    section.appendChild(header);

    var body = el('div', 'body');
    var views = el('div', 'views');
    var size = config.viewSize, tall = Math.round(size * item.aspect), wordTall = Math.round(config.wordSize * item.aspect);
    function figure(node, caption) { var f = el('figure'); f.appendChild(node); f.appendChild(el('figcaption', null, caption)); return f; }
    var image = el('img', 'image');
    image.src = item.img; image.alt = 'image ' + item.id; image.width = size; image.height = tall;
    views.appendChild(figure(image, 'image'));
    if (item.mask) {
      var mask = el('img', 'mask');
      mask.src = item.mask; mask.alt = 'mask view ' + item.id; mask.width = size; mask.height = tall;
      views.appendChild(figure(mask, 'mask view'));
    }
    var main = null, mainCaption = null;
    if (item.att.length) {
      main = el('canvas', 'overlay main');
      main.width = size; main.height = tall;
      var mainFigure = figure(main, '');
      mainCaption = mainFigure.querySelector('figcaption');
      views.appendChild(mainFigure);
    }
    body.appendChild(views);

    var text = el('div', 'text');
    var gen = el('p', 'generated');
    gen.appendChild(el('span', 'label', config.captionLabel));
    gen.appendChild(document.createTextNode(' ' + (item.cap || '(empty)')));
    text.appendChild(gen);
    if (item.refs.length) {
      var refs = el('ol', 'references');
      item.refs.forEach(function (r, k) {
        var li = el('li');
        li.appendChild(el('span', 'label', 'reference ' + (k + 1)));
        li.appendChild(document.createTextNode(' ' + r));
        refs.appendChild(li);
      });
      text.appendChild(refs);
    }
    var cats = el('div', 'categories');
    cats.appendChild(el('span', 'label', 'categories'));
    if (!item.cats.length) cats.appendChild(el('span', 'empty', 'none predicted above the threshold'));
    item.cats.forEach(function (c) {
      var chip = el('span', 'cat');
      var bar = el('span', 'bar');
      bar.style.width = Math.round(c[1] * 100) + '%';
      chip.appendChild(bar);
      chip.appendChild(el('span', 't', c[0] + ' ' + (c[1] * 100).toFixed(0) + '%'));
      chip.title = c[0] + ': probability ' + c[1].toFixed(3);
      cats.appendChild(chip);
    });
    text.appendChild(cats);
    if (item.att.length && item.grid <= config.coarseMax) {
      text.appendChild(el('p', 'coarse-note', 'attention grid ' + item.grid + '×' + item.grid + ': too coarse to localise anything (see the note above the images)'));
    }
    body.appendChild(text);
    section.appendChild(body);

    if (item.att.length) {
      var words = el('div', 'words');
      var figures = [];
      var peaks = item.att.map(function (a) { return S2.normalise(a[1]).peak; });
      var chosen = 0;
      peaks.forEach(function (p, k) { if (p > peaks[chosen]) chosen = k; });
      var select = function (k) {
        figures.forEach(function (f, j) { f.className = j === k ? 'selected' : ''; });
        mainCaption.textContent = 'attention of “' + item.att[k][0] + '” (×' + peaks[k].toFixed(2) + ')';
        loadImage(item.img).then(function (img) { S2.drawOverlay(main, img, item.att[k][1], item.grid, config.coarseMax); });
      };
      item.att.forEach(function (a, k) {
        var canvas = el('canvas', 'overlay word');
        canvas.width = config.wordSize; canvas.height = wordTall;
        var f = figure(canvas, '');
        var cap = f.querySelector('figcaption');
        cap.appendChild(el('span', 'w', a[0]));
        cap.appendChild(document.createTextNode(' '));
        cap.appendChild(el('span', 'peak', '×' + peaks[k].toFixed(2)));
        f.title = 'click to show the attention of “' + a[0] + '” large';
        f.onclick = function () { select(k); };
        figures.push(f);
        words.appendChild(f);
        loadImage(item.img).then(function (img) { S2.drawOverlay(canvas, img, a[1], item.grid, config.coarseMax); });
      });
      section.appendChild(words);
      select(chosen);
    }
    return section;
  }

  function render() {
    var visible = S2.sortItems(S2.filterItems(all, state.query), state.sort);
    var total = S2.pageCount(visible.length, config.pageSize);
    state.page = Math.min(Math.max(0, state.page), total - 1);
    var shown = S2.pageSlice(visible, state.page, config.pageSize);
    list.textContent = '';
    shown.forEach(function (item) { list.appendChild(renderItem(item)); });
    if (!shown.length) list.appendChild(el('p', 'empty', 'No image matches the filter.'));
    var from = visible.length ? state.page * config.pageSize + 1 : 0;
    count.textContent = 'showing ' + from + '–' + (state.page * config.pageSize + shown.length) + ' of ' + visible.length +
      (visible.length !== all.length ? ' matching (' + all.length + ' in all)' : ' images') + ' · page ' + (state.page + 1) + ' of ' + total;
    for (var k = 0; k < pagers.length; k++) renderPager(pagers[k], state.page, total);
    root.setAttribute('data-page', String(state.page));
  }
  function go(page) { state.page = page; render(); root.scrollIntoView({ block: 'start' }); }

  sortSelect.value = state.sort;
  sortSelect.onchange = function () { state.sort = sortSelect.value; state.page = 0; render(); };
  filterInput.oninput = function () { state.query = filterInput.value; state.page = 0; render(); };
  render();
  root.setAttribute('data-ready', 'true');
}
if (typeof document !== 'undefined') {
  var roots = document.querySelectorAll('.gallery[data-source]');
  for (var r = 0; r < roots.length; r++) start(roots[r]);
}
return S2;
})()`;

/** The page script with the colour table filled in. */
export function galleryScript(): string {
  return GALLERY_CLIENT_JS.replace('__VIRIDIS__', JSON.stringify(VIRIDIS_STOPS));
}

/** The gallery block: toolbar, pagers, the item container, the data and the script (include GALLERY_CSS). */
export function galleryHtml(items: readonly GalleryItem[], options: GalleryOptions, id = 'gallery'): string {
  const scoreName = options.scoreName ?? 'score';
  const sorts = options.sorts.map((s) => `<option value="${s}">${escapeHtml(SORT_LABELS[s](scoreName))}</option>`).join('');
  return [
    `<div class="gallery" id="${id}" data-source="${id}-data">`,
    '<div class="toolbar">',
    `<label>sort <select class="sort">${sorts}</select></label>`,
    '<label>filter <input class="filter" type="search" placeholder="words in captions, references, names"></label>',
    '<span class="count"></span>',
    `<span class="mini-legend" title="attention colour scale, normalised per word">attention: low <span class="mini-bar" style="background:${viridisCssGradient()}"></span> high</span>`,
    '</div>',
    '<div class="pager top"></div>',
    '<div class="items"><noscript>The gallery needs JavaScript to show the images.</noscript></div>',
    '<div class="pager bottom"></div>',
    '</div>',
    `<script type="application/json" id="${id}-data">${scriptJson(galleryData(items, options))}</script>`,
    `<script>${galleryScript()}</script>`,
  ].join('\n');
}
