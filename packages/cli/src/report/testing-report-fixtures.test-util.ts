/** Hand-built report inputs for the report tests: synthetic scenes, random (but peaked) attention, no training. */
import { generateSyntheticAerialSet, encodePng, renderMaskView, type RgbImage } from '@s2cpnet/data';
import { pngDataUri } from '../demo/heatmap';
import { stepLossSeries, type ReportInput, type ReportItem } from '../demo/report';
import type { CaptionReportInput, CaptionReportItem } from './caption-report';

/** A small deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Softmax attention over a G x G grid peaked around a random cell. */
export function peakedWeights(grid: number, random: () => number): Float32Array {
  const cy = random() * grid;
  const cx = random() * grid;
  const sharp = 0.3 + random() * 1.5;
  const raw = Array.from({ length: grid * grid }, (_, i) => Math.exp(-sharp * ((Math.floor(i / grid) + 0.5 - cy) ** 2 + ((i % grid) + 0.5 - cx) ** 2)));
  const sum = raw.reduce((a, b) => a + b, 0);
  return Float32Array.from(raw, (v) => v / sum);
}

export function syntheticScenes(count: number, seed = 5) {
  return generateSyntheticAerialSet({ seed, count, size: 64 }).images;
}

export function demoReportInput(count: number, grid = 2, seed = 11): ReportInput {
  const random = rng(seed);
  const scenes = syntheticScenes(count, seed);
  const items: ReportItem[] = scenes.map((scene, k) => {
    const generated = scene.captions[Math.floor(random() * scene.captions.length)]!.split(' ').slice(0, 4 + Math.floor(random() * 6)).join(' ');
    return {
      id: scene.fileName,
      image: pngDataUri(encodePng(scene.image)),
      mask: pngDataUri(encodePng(renderMaskView(scene.image, scene.objectLabels))),
      generated,
      references: scene.captions,
      categories: scene.objects.slice(0, 3).map((o) => ({ name: o.className, probability: 0.5 + random() * 0.5 })),
      cider: k === 3 ? 0 : random() * 3,
      scores: { Bleu_4: random(), ROUGE_L: random() },
      grid,
      attention: generated.split(' ').map((word) => ({ word, weights: peakedWeights(grid, random) })),
    };
  });
  const loss = Array.from({ length: 400 }, (_, i) => ({ x: i + 1, y: 5 * Math.exp(-i / 80) + 1 + random() * 0.6 }));
  return {
    title: 'Synthetic report (test)',
    subtitle: `${count} hand-built items with random attention on a ${grid}x${grid} grid.`,
    scores: { Bleu_1: 0.7, Bleu_4: 0.3, METEOR: 0.25, ROUGE_L: 0.5, CIDEr: 1.2 },
    curves: [
      { name: 'training loss', axis: 'optimiser step', yLabel: 'loss (per batch)', points: loss, series: stepLossSeries(loss) },
      { name: 'val METEOR (greedy)', axis: 'epoch', yLabel: 'METEOR', points: [{ x: 1, y: 0.18 }, { x: 2, y: 0.24 }] },
    ],
    items,
    settings: { seed, images: count },
  };
}

function stretch(image: RgbImage, width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const sx = Math.floor((x / width) * image.width);
      const sy = Math.floor((y / height) * image.height);
      data.set(image.data.subarray((sy * image.width + sx) * 3, (sy * image.width + sx) * 3 + 3), (y * width + x) * 3);
    }
  return { width, height, data };
}

export function captionReportInput(count: number, grid = 7, seed = 13): CaptionReportInput {
  const random = rng(seed);
  const scenes = syntheticScenes(count, seed);
  const items: CaptionReportItem[] = scenes.map((scene, k) => {
    const caption = scene.captions[0]!.split(' ').slice(0, 7).join(' ');
    // one large, non-square input: the report must scale it down and keep its shape
    const image = k === 1 ? stretch(scene.image, 600, 400) : scene.image;
    return {
      file: `photos/${scene.fileName}`,
      image,
      maskView: k === 2 ? null : renderMaskView(scene.image, scene.objectLabels),
      caption,
      categories: [
        { name: 'building', probability: 0.4 + random() * 0.6 },
        { name: 'road', probability: random() },
      ].sort((a, b) => b.probability - a.probability),
      attention: caption.split(' ').map((word) => ({ word, weights: Array.from(peakedWeights(grid, random)) })),
      grid,
    };
  });
  // resize the big one's mask view too
  items[1]!.maskView = stretch(items[1]!.maskView!, 600, 400);
  return { title: 'Captions (test)', settings: { checkpoint: 'runs/x/best', beam: 3 }, items, failures: [{ file: 'broken.png', error: 'not an image' }] };
}
