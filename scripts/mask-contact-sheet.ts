/**
 * Contact sheet of the built-in masks, v1 against v2, on UCM: for N train/val images of each of the 21 classes, one
 * row of image | v1 mask view | v2 mask view | v2 targets over the image, under a label line, in one PNG; and
 * per-version statistics (background share, targets per image, largest target share, grey-level correlation of
 * the mask view with the image) on stdout.
 *
 *   npx tsx --conditions=@s2cpnet/source scripts/mask-contact-sheet.ts [--per-class 1] [--size 224] [--out FILE]
 *     [--v2 '{"lightnessWeight":0.5}']   (v2 settings other than the defaults, to try them out)
 *
 * Data: `S2CPNET_SHARED_DIR`/data/ucm (dataset.json, classes.csv, images/), else ../shared beside the repository.
 * Only train and val images are used (the test split is never looked at). Default output:
 * /tmp/mask-contact-sheet.png (not committed).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import {
  decodeImageFile,
  encodePng,
  FelzenszwalbSegmenter,
  renderMaskView,
  resizeBilinear,
  TargetSegmenter,
  type LabelMap,
  type RgbImage,
  type TargetSegmenterOptions,
} from '@s2cpnet/data';
import { sharedRoot } from './shared-dir';

const { values } = parseArgs({
  options: {
    'per-class': { type: 'string', default: '1' },
    size: { type: 'string', default: '224' },
    out: { type: 'string', default: '/tmp/mask-contact-sheet.png' },
    v2: { type: 'string', default: '{}' },
  },
});
const perClass = Number(values['per-class']);
const size = Number(values.size);
if (!(Number.isInteger(perClass) && perClass >= 1)) throw new Error(`--per-class: expected an integer >= 1, found ${values['per-class']}`);
if (!(Number.isInteger(size) && size >= 32)) throw new Error(`--size: expected an integer >= 32, found ${values.size}`);

const ucm = path.join(sharedRoot(), 'data', 'ucm');
const dataset = JSON.parse(readFileSync(path.join(ucm, 'dataset.json'), 'utf8')) as { images: Array<{ filename: string; split: string; imgid: number }> };
const classOf = new Map<string, string>();
for (const line of readFileSync(path.join(ucm, 'classes.csv'), 'utf8').trim().split('\n').slice(1)) {
  const [file, cls] = line.split(',');
  classOf.set(file!, cls!);
}
const byClass = new Map<string, string[]>();
for (const image of [...dataset.images].sort((a, b) => a.imgid - b.imgid)) {
  if (image.split !== 'train' && image.split !== 'val') continue;
  const cls = classOf.get(image.filename);
  if (!cls) continue;
  const list = byClass.get(cls) ?? [];
  if (list.length < perClass) list.push(image.filename);
  byClass.set(cls, list);
}
const picked = [...byClass.entries()].sort(([a], [b]) => a.localeCompare(b)).flatMap(([cls, files]) => files.map((file) => ({ cls, file })));

// -- a 3x5 bitmap font, drawn at 2x (labels only need capitals, digits and a little punctuation)
const GLYPHS: Record<string, string> = {
  A: '010101111101101', B: '110101110101110', C: '011100100100011', D: '110101101101110', E: '111100110100111',
  F: '111100110100100', G: '011100101101011', H: '101101111101101', I: '111010010010111', J: '001001001101010',
  K: '101101110101101', L: '100100100100111', M: '101111111101101', N: '110101101101101', O: '010101101101010',
  P: '110101110100100', Q: '010101101110011', R: '110101110101101', S: '011100010001110', T: '111010010010010',
  U: '101101101101111', V: '101101101101010', W: '101101111111101', X: '101101010101101', Y: '101101010010010',
  Z: '111001010100111', '0': '111101101101111', '1': '010110010010111', '2': '110001010100111', '3': '110001010001110',
  '4': '101101111001001', '5': '111100110001110', '6': '011100111101111', '7': '111001010010010', '8': '111101111101111',
  '9': '111101111001110', '.': '000000000000010', ':': '000010000010000', '%': '101001010100101', '-': '000000111000000',
  '|': '010010010010010', '/': '001001010100100', ',': '000000000010100', '=': '000111000111000', '(': '010100100100010',
  ')': '010001001001010', ' ': '000000000000000',
};
const SCALE = 2;
const LABEL_HEIGHT = 5 * SCALE + 6;

function drawText(canvas: RgbImage, text: string, x0: number, y0: number, color: readonly number[]): void {
  let x = x0;
  for (const ch of text.toUpperCase()) {
    const glyph = GLYPHS[ch] ?? GLYPHS[' ']!;
    for (let row = 0; row < 5; row++) {
      for (let col = 0; col < 3; col++) {
        if (glyph[row * 3 + col] !== '1') continue;
        for (let dy = 0; dy < SCALE; dy++) {
          for (let dx = 0; dx < SCALE; dx++) {
            const px = x + col * SCALE + dx;
            const py = y0 + row * SCALE + dy;
            if (px >= canvas.width || py >= canvas.height) continue;
            canvas.data.set(color, 3 * (py * canvas.width + px));
          }
        }
      }
    }
    x += 4 * SCALE;
  }
}

function blit(canvas: RgbImage, tile: RgbImage, x0: number, y0: number): void {
  for (let y = 0; y < tile.height; y++) {
    canvas.data.set(tile.data.subarray(3 * y * tile.width, 3 * (y + 1) * tile.width), 3 * ((y0 + y) * canvas.width + x0));
  }
}

/** v2 targets over the image: background dimmed to 35 %, each target tinted with a palette colour, outlines yellow. */
function overlay(image: RgbImage, labels: LabelMap): RgbImage {
  const { width: w, height: h } = image;
  const ids = labels.labels;
  const out = new Uint8Array(image.data.length);
  const palette = [[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60]];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = y * w + x;
      const label = ids[p]!;
      const edge = (x + 1 < w && ids[p + 1] !== label) || (y + 1 < h && ids[p + w] !== label);
      for (let c = 0; c < 3; c++) {
        const v = image.data[3 * p + c]!;
        if (edge && (label !== 0 || ids[p + 1] !== 0 || ids[p + w] !== 0)) out[3 * p + c] = [255, 255, 0][c]!;
        else if (label === 0) out[3 * p + c] = Math.round(0.35 * v);
        else out[3 * p + c] = Math.round(0.6 * v + 0.4 * palette[(label - 1) % palette.length]![c]!);
      }
    }
  }
  return { width: w, height: h, data: out };
}

interface MaskStats { backgroundShare: number; targets: number; largestShare: number; correlation: number }

function grey(image: RgbImage): Float64Array {
  const out = new Float64Array(image.width * image.height);
  for (let p = 0; p < out.length; p++) out[p] = 0.299 * image.data[3 * p]! + 0.587 * image.data[3 * p + 1]! + 0.114 * image.data[3 * p + 2]!;
  return out;
}

function correlation(a: Float64Array, b: Float64Array): number {
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < a.length; i++) { ma += a[i]!; mb += b[i]!; }
  ma /= a.length;
  mb /= b.length;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < a.length; i++) {
    const da = a[i]! - ma;
    const db = b[i]! - mb;
    sab += da * db; saa += da * da; sbb += db * db;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : 0;
}

function statsOf(image: RgbImage, labels: LabelMap, view: RgbImage): MaskStats {
  const n = labels.labels.length;
  const areas = new Map<number, number>();
  for (const label of labels.labels) areas.set(label, (areas.get(label) ?? 0) + 1);
  const background = areas.get(0) ?? 0;
  areas.delete(0);
  return {
    backgroundShare: background / n,
    targets: areas.size,
    largestShare: Math.max(0, ...areas.values()) / n,
    correlation: correlation(grey(image), grey(view)),
  };
}

const v1 = new FelzenszwalbSegmenter();
const v2 = new TargetSegmenter(JSON.parse(values.v2!) as TargetSegmenterOptions);
const columns = 4;
const gap = 4;
const rowHeight = LABEL_HEIGHT + size + gap;
const canvas: RgbImage = { width: columns * size + (columns - 1) * gap, height: picked.length * rowHeight, data: new Uint8Array(0) };
canvas.data = new Uint8Array(3 * canvas.width * canvas.height).fill(255);
const collected: Record<'v1' | 'v2', MaskStats[]> = { v1: [], v2: [] };
const time: Record<'v1' | 'v2', number> = { v1: 0, v2: 0 };

for (const [row, { cls, file }] of picked.entries()) {
  const image = resizeBilinear(await decodeImageFile(path.join(ucm, 'images', file)), size, size);
  let start = performance.now();
  const labels1 = await v1.labelMap(image, file);
  time.v1 += performance.now() - start;
  start = performance.now();
  const labels2 = await v2.labelMap(image, file);
  time.v2 += performance.now() - start;
  const view1 = renderMaskView(image, labels1);
  const view2 = renderMaskView(image, labels2, v2.render);
  const s1 = statsOf(image, labels1, view1);
  const s2 = statsOf(image, labels2, view2);
  collected.v1.push(s1);
  collected.v2.push(s2);
  const y0 = row * rowHeight;
  const label =
    `${cls} ${file}   v1: ${s1.targets} segments, corr ${s1.correlation.toFixed(2)}   ` +
    `v2: ${s2.targets} targets, background ${(100 * s2.backgroundShare).toFixed(0)}%, corr ${s2.correlation.toFixed(2)}`;
  drawText(canvas, label, 2, y0 + 3, [0, 0, 0]);
  [image, view1, view2, overlay(image, labels2)].forEach((tile, column) => blit(canvas, tile, column * (size + gap), y0 + LABEL_HEIGHT));
  console.log(
    `${cls.padEnd(18)} ${file.padEnd(9)} v1: ${String(s1.targets).padStart(3)} seg, bg ${(100 * s1.backgroundShare).toFixed(0).padStart(3)}%, largest ${(100 * s1.largestShare).toFixed(0).padStart(3)}%, corr ${s1.correlation.toFixed(2)} | ` +
      `v2: ${String(s2.targets).padStart(3)} targets, bg ${(100 * s2.backgroundShare).toFixed(0).padStart(3)}%, largest ${(100 * s2.largestShare).toFixed(0).padStart(3)}%, corr ${s2.correlation.toFixed(2)}`,
  );
}
writeFileSync(values.out!, encodePng(canvas));

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };
console.log(`\n${picked.length} images (${perClass} per class, train/val), ${size} px; mean (median) per image:`);
for (const version of ['v1', 'v2'] as const) {
  const list = collected[version];
  const line = (name: string, pick: (s: MaskStats) => number, percent = false) => {
    const xs = list.map(pick);
    const f = (v: number) => (percent ? `${(100 * v).toFixed(1)}%` : v.toFixed(2));
    return `${name} ${f(mean(xs))} (${f(median(xs))})`;
  };
  console.log(
    `${version}: ${line('background', (s) => s.backgroundShare, true)}, ${line('targets', (s) => s.targets)}, ` +
      `${line('largest target', (s) => s.largestShare, true)}, ${line('grey correlation', (s) => s.correlation)}, ` +
      `images without targets ${list.filter((s) => s.targets === 0).length}, segmentation ${(time[version] / picked.length).toFixed(1)} ms/image`,
  );
}
console.log(`contact sheet: ${values.out} (${canvas.width}x${canvas.height}; columns: image | v1 mask view | v2 mask view | v2 targets over the image)`);
