/**
 * A speed benchmark of all metrics on a deterministic synthetic corpus of remote-sensing captions
 * (by default 10,000 images x 5 references), for `s2cpnet bench`.
 */
import { scoreCaptionsSync } from './score.js';
import type { CaptionItem, CaptionScores, MetricName } from './types.js';
import { ALL_METRICS } from './types.js';

export interface MetricsBenchmarkOptions {
  /** Number of images. Default 10,000. */
  images?: number;
  /** References per image. Default 5. */
  referencesPerImage?: number;
  /** Seed of the synthetic corpus. Default 1. */
  seed?: number;
  /** Metrics to time. Default all. */
  metrics?: readonly MetricName[];
  /** Include PTB tokenization (the toolkit's first step). Default true. */
  tokenize?: boolean;
}

export interface MetricsBenchmarkResult {
  images: number;
  referencesPerImage: number;
  /** Milliseconds per stage: tokenize, Bleu, METEOR (including loading WordNet), ROUGE_L, CIDEr. */
  msPerMetric: Record<string, number>;
  /** Wall-clock milliseconds for the whole scoring call. */
  totalMs: number;
  /** CPU milliseconds (user + system) of this process during the call; less than totalMs when the machine is busy. */
  cpuMs: number;
  /** The corpus scores, so a caller can check the run did real work. */
  corpus: CaptionScores;
}

/** mulberry32: a tiny deterministic PRNG (the metrics package has no dependency on core's SeededRng). */
function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SCENES: readonly { subject: readonly string[]; detail: readonly string[] }[] = [
  { subject: ['bridge', 'viaduct'], detail: ['over the river', 'across the water', 'with cars on it', 'near the road'] },
  { subject: ['ships', 'boats'], detail: ['in the harbour', 'on the blue sea', 'docked at the pier', 'near the port'] },
  { subject: ['pond', 'lake'], detail: ['surrounded by green trees', 'next to a meadow', 'with an island', 'in the park'] },
  { subject: ['stadium', 'playground'], detail: ['with white stands', 'with a green pitch', 'near a parking lot', 'beside some roads'] },
  { subject: ['houses', 'buildings'], detail: ['with red roofs', 'arranged densely', 'along the streets', 'in the residential area'] },
  { subject: ['desert', 'farmland'], detail: ['covered with sand', 'with a few trees', 'divided into pieces', 'beside a road'] },
  { subject: ['church', 'square'], detail: ['with a cross-shaped roof', 'in the center', 'among many houses', 'next to a street'] },
  { subject: ['solar panels', 'storage tanks'], detail: ['arranged in rows', 'on the ground', 'near the factory', 'in the industrial area'] },
];
const OPENERS = ['there is a', 'there are many', 'a', 'some', 'several', 'many', 'the', 'an image of a'];
const ADJECTIVES = ['large', 'big', 'small', 'long', 'green', 'white', 'dense', 'wide', 'old', 'new', 'dark', 'bright'];
const SWAPS: ReadonlyMap<string, string> = new Map([
  ['large', 'big'],
  ['big', 'large'],
  ['small', 'little'],
  ['many', 'lots of'],
  ['near', 'beside'],
  ['houses', 'homes'],
  ['ships', 'vessels'],
  ['sea', 'ocean'],
  ['trees', 'tree'],
  ['arranged', 'placed'],
]);

function pick<T>(random: () => number, values: readonly T[]): T {
  return values[Math.floor(random() * values.length)]!;
}

function sentence(random: () => number, sceneIndex: number): string {
  const scene = SCENES[sceneIndex]!;
  const words = [pick(random, OPENERS), pick(random, ADJECTIVES), pick(random, scene.subject), pick(random, scene.detail)];
  if (random() < 0.5) words.push('and', pick(random, scene.detail));
  let text = words.join(' ');
  if (random() < 0.3) text = text.charAt(0).toUpperCase() + text.slice(1);
  if (random() < 0.5) text += random() < 0.5 ? '.' : ' .';
  return text;
}

/** Perturb a caption the way a model's output differs from a reference: swaps, drops, repeats. */
function perturb(random: () => number, caption: string): string {
  const words = caption.split(' ');
  const out: string[] = [];
  for (const word of words) {
    const roll = random();
    if (roll < 0.08) continue;
    const swap = SWAPS.get(word);
    if (roll < 0.2 && swap !== undefined) out.push(swap);
    else out.push(word);
    if (roll > 0.97) out.push(word);
  }
  return out.join(' ');
}

/** The synthetic benchmark corpus: deterministic for a seed. */
export function syntheticCaptionCorpus(images = 10_000, referencesPerImage = 5, seed = 1): CaptionItem[] {
  const random = createRandom(seed);
  const items: CaptionItem[] = [];
  for (let index = 0; index < images; index++) {
    const sceneIndex = Math.floor(random() * SCENES.length);
    const references = Array.from({ length: referencesPerImage }, () => sentence(random, sceneIndex));
    const roll = random();
    let candidate: string;
    if (roll < 0.1) candidate = references[0]!;
    else if (roll < 0.85) candidate = perturb(random, pick(random, references));
    else candidate = sentence(random, (sceneIndex + 1 + Math.floor(random() * (SCENES.length - 1))) % SCENES.length);
    items.push({ imageId: index, candidate, references });
  }
  return items;
}

/**
 * Time every metric on the synthetic corpus in this process.
 *
 * @example
 * const { totalMs, msPerMetric } = runMetricsBenchmark({ images: 1000 });
 */
export function runMetricsBenchmark(options: MetricsBenchmarkOptions = {}): MetricsBenchmarkResult {
  const images = options.images ?? 10_000;
  const referencesPerImage = options.referencesPerImage ?? 5;
  const items = syntheticCaptionCorpus(images, referencesPerImage, options.seed ?? 1);
  const cpuStart = process.cpuUsage();
  const started = performance.now();
  const report = scoreCaptionsSync(items, {
    tokenize: options.tokenize ?? true,
    metrics: options.metrics ?? ALL_METRICS,
  });
  const totalMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuStart);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  return { images, referencesPerImage, msPerMetric: report.timingsMs, totalMs, cpuMs, corpus: report.corpus };
}
