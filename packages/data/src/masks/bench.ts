import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { generateSyntheticAerialSet } from '../synthetic/index';
import { decodeImageFile } from '../image/codec';
import { segmentFelzenszwalb, type FelzenszwalbOptions } from './felzenszwalb';
import type { RgbImage } from './types';

/**
 * Timing of the built-in segmenter. The target is a 256x256 mask in under 50 ms on one core.
 *
 * Run as a script: `npx tsx --conditions=@s2cpnet/source src/masks/bench.ts [runs] [imageDir]` from packages/data.
 */

export interface SegmenterBenchmarkOptions extends FelzenszwalbOptions {
  /** Timed runs per image (after one warm-up run). Default 20. */
  runs?: number;
  /** Images to time; default one deterministic synthetic 256x256 aerial scene. */
  images?: readonly RgbImage[];
}

export interface SegmenterBenchmarkResult {
  /** Median wall time of one segmentation over all runs of all images, in milliseconds. */
  medianMs: number;
  /**
   * Median CPU time (user + system) of the process per segmentation, in milliseconds. On a machine shared with
   * other work this is closer to "one core" than wall time, which also counts waiting for the core.
   */
  medianCpuMs: number;
  minMs: number;
  maxMs: number;
  runs: number;
  images: number;
  /** Mean number of segments per image. */
  meanSegments: number;
}

/** A deterministic 256x256 test image: one synthetic aerial scene (roads, buildings, trees, texture noise). */
export function benchmarkImage(size = 256, seed = 7): RgbImage {
  return generateSyntheticAerialSet({ seed, count: 1, size }).images[0]!.image;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Times `segmentFelzenszwalb` (label map only, no rendering or IO) and reports the median. Synchronous work on the
 * calling thread, so it measures one core.
 *
 * @example
 * ```ts
 * const { medianMs } = benchmarkSegmenter({ runs: 20 });
 * console.log(`256x256 mask in ${medianMs.toFixed(1)} ms`);
 * ```
 */
export function benchmarkSegmenter(options: SegmenterBenchmarkOptions = {}): SegmenterBenchmarkResult {
  const runs = options.runs ?? 20;
  if (!(Number.isInteger(runs) && runs >= 1)) throw new RangeError(`benchmarkSegmenter: runs must be an integer >= 1, found ${runs}`);
  const images = options.images ?? [benchmarkImage()];
  const times: number[] = [];
  const cpuTimes: number[] = [];
  let segments = 0;
  for (const image of images) {
    segmentFelzenszwalb(image, options); // warm-up: JIT and workspace allocation
    for (let run = 0; run < runs; run++) {
      const cpuStart = process.cpuUsage();
      const start = performance.now();
      const labels = segmentFelzenszwalb(image, options);
      times.push(performance.now() - start);
      const cpu = process.cpuUsage(cpuStart);
      cpuTimes.push((cpu.user + cpu.system) / 1000);
      if (run === 0) {
        let max = 0;
        for (const label of labels.labels) if (label > max) max = label;
        segments += max;
      }
    }
  }
  return {
    medianMs: median(times),
    medianCpuMs: median(cpuTimes),
    minMs: Math.min(...times),
    maxMs: Math.max(...times),
    runs: times.length,
    images: images.length,
    meanSegments: images.length ? segments / images.length : 0,
  };
}

/** Decodes up to `limit` images of a folder (sorted by name) for benchmarking on real data. */
export async function loadBenchmarkImages(dir: string, limit = 5): Promise<RgbImage[]> {
  const names = readdirSync(dir)
    .filter((name) => /\.(jpe?g|png|tiff?)$/i.test(name))
    .sort()
    .slice(0, limit);
  return Promise.all(names.map((name) => decodeImageFile(path.join(dir, name))));
}

function format(label: string, result: SegmenterBenchmarkResult): string {
  return (
    `${label}: median ${result.medianMs.toFixed(2)} ms (min ${result.minMs.toFixed(2)}, max ${result.maxMs.toFixed(2)}; ` +
    `median CPU ${result.medianCpuMs.toFixed(2)} ms) ` +
    `over ${result.runs} runs on ${result.images} image(s), ${result.meanSegments.toFixed(1)} segments per image`
  );
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 20);
  // the project's shared test data: S2CPNET_SHARED_DIR, else shared/ beside the repository (run from packages/data)
  const shared = process.env['S2CPNET_SHARED_DIR'] ?? path.resolve('..', '..', '..', 'shared');
  const ucmDir = process.argv[3] ?? path.join(shared, 'data', 'ucm', 'images');
  console.log(format('synthetic 256x256', benchmarkSegmenter({ runs })));
  if (existsSync(ucmDir)) {
    const images = await loadBenchmarkImages(ucmDir, 5);
    const sizes = images.map((image) => `${image.width}x${image.height}`).join(', ');
    console.log(format(`real images from ${ucmDir} (${sizes})`, benchmarkSegmenter({ runs, images })));
  } else {
    console.log(`(no real images: ${ucmDir} does not exist)`);
  }
}

// Runs only when this file is the script being executed (not when bundled into the package or imported by tests).
if (typeof process !== 'undefined' && /[\\/]masks[\\/]bench\.[cm]?[jt]s$/.test(process.argv[1] ?? '')) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
