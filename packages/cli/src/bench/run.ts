import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { countFlops, type ProfiledKernel } from './flops';
import type { SkippedWorkload } from './onnx-workloads';
import type { Workload } from './workloads';

export interface BenchResult {
  name: string;
  /** The PyTorch workload it matches, when named differently. */
  twin?: string;
  description: string;
  /** Median milliseconds of one repetition. */
  ms: number;
  /** `ms` divided by the units one repetition processes (e.g. per image). */
  msPerUnit: number;
  unit: string;
  reps: number;
  /** FLOPs of one repetition, counted from the executed kernels (null when not tensor work). */
  gflop: number | null;
  /** gflop / median seconds. */
  gflops: number | null;
  /** Caption samples per second (training workloads). */
  samplesPerSecond?: number;
  /** Size of the wasm heap after the workload (it only grows: the peak so far), MiB. */
  wasmHeapMiB?: number;
  /** Peak resident set size of the process so far, MiB. */
  maxRssMiB: number;
  /** Tensors left over after the timed repetitions (0 = no leak). */
  leakedTensors: number;
  extra?: Record<string, number>;
}

export interface BenchReport {
  /** What ran the workloads: TensorFlow.js (`backend` is its backend) or ONNX Runtime (`backend` is onnxruntime-PROVIDER). */
  runtime: 'tfjs' | 'onnx';
  backend: string;
  threads: number;
  tfjsVersion: string;
  node: string;
  cpus: number;
  /** onnxruntime-node's version (`--runtime onnx`). */
  onnxruntimeVersion?: string;
  results: BenchResult[];
  /** Selected workloads the runtime does not run, with the reason (`--runtime onnx`: the training workloads). */
  skipped?: SkippedWorkload[];
}

export interface BenchOptions {
  /** Timed repetitions (median reported). Default 3. */
  reps?: number;
  /** Timed repetitions of heavy workloads (ResNet50 training, the paper-preset step, captioning). Default 2. */
  heavyReps?: number;
  /** Untimed runs before timing; the first is profiled to count FLOPs. Default 1. */
  warmup?: number;
  onProgress?: (line: string) => void;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function wasmHeapMiB(): number | undefined {
  const heap = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8;
  return heap ? heap.length / 2 ** 20 : undefined;
}

/** Runs workloads one after the other on the current backend. */
export async function runBench(
  workloads: readonly Workload[],
  info: { backend: string; threads: number; runtime?: BenchReport['runtime'] },
  options: BenchOptions = {},
): Promise<BenchReport> {
  const runtime = info.runtime ?? 'tfjs';
  const results: BenchResult[] = [];
  const log = options.onProgress ?? (() => {});
  for (const workload of workloads) {
    const reps = Math.max(1, workload.heavy ? (options.heavyReps ?? 2) : (options.reps ?? 3));
    const warmup = Math.max(1, options.warmup ?? 1);
    log(`${workload.name}: preparing`);
    const prepared = await workload.prepare();
    try {
      let flops: number | null = null;
      for (let i = 0; i < warmup; i++) {
        const started = performance.now();
        if (i === 0 && workload.countFlops) {
          let failure: unknown = null;
          // tf.profile cannot take an async function whose rejection we see, so capture it.
          const profile = await tf.profile(async () => {
            try {
              await prepared.run();
            } catch (error) {
              failure = error;
            }
          });
          if (failure) throw failure;
          flops = countFlops(profile.kernels as unknown as ProfiledKernel[]);
        } else await prepared.run();
        log(`${workload.name}: warm-up ${i + 1}/${warmup} ${(performance.now() - started).toFixed(0)} ms`);
      }
      const tensorsBefore = tf.memory().numTensors;
      const times: number[] = [];
      for (let i = 0; i < reps; i++) {
        const started = performance.now();
        await prepared.run();
        times.push(performance.now() - started);
        log(`${workload.name}: ${i + 1}/${reps} ${times[i]!.toFixed(0)} ms`);
      }
      const ms = median(times);
      const result: BenchResult = {
        name: workload.name,
        ...(workload.twin ? { twin: workload.twin } : {}),
        description: workload.description,
        ms,
        msPerUnit: ms / workload.units.count,
        unit: workload.units.name,
        reps,
        gflop: flops === null ? null : flops / 1e9,
        gflops: flops === null ? null : flops / 1e9 / (ms / 1000),
        maxRssMiB: process.resourceUsage().maxRSS / 1024,
        leakedTensors: tf.memory().numTensors - tensorsBefore,
      };
      if (workload.captionSamples) result.samplesPerSecond = workload.captionSamples / (ms / 1000);
      const heap = runtime === 'tfjs' ? wasmHeapMiB() : undefined;
      if (heap !== undefined) result.wasmHeapMiB = heap;
      const extra = prepared.extra?.();
      if (extra) result.extra = extra;
      results.push(result);
    } finally {
      await prepared.dispose();
    }
  }
  return {
    runtime,
    backend: info.backend,
    threads: info.threads,
    tfjsVersion: tf.version_core,
    node: process.version,
    cpus: os.availableParallelism?.() ?? os.cpus().length,
    results,
  };
}

/** A fixed-width table of a report, for the terminal. */
export function formatBenchTable(report: BenchReport): string {
  const header = ['workload', 'ms', 'per unit', 'GFLOP', 'GFLOP/s', 'samples/s', 'heap MiB'];
  const rows = report.results.map((r) => [
    r.name,
    r.ms.toFixed(0),
    `${r.msPerUnit.toFixed(r.msPerUnit < 10 ? 2 : 0)} ms/${r.unit}`,
    r.gflop === null ? '-' : r.gflop.toFixed(2),
    r.gflops === null ? '-' : r.gflops.toFixed(1),
    r.samplesPerSecond === undefined ? '-' : r.samplesPerSecond.toFixed(2),
    r.wasmHeapMiB === undefined ? '-' : r.wasmHeapMiB.toFixed(0),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const runtime = report.runtime === 'onnx' ? `runtime onnx (onnxruntime-node ${report.onnxruntimeVersion ?? '?'}), ` : '';
  const skipped = (report.skipped ?? []).map((s) => `skipped ${s.name}: ${s.reason}`);
  return [`${runtime}backend ${report.backend}, ${report.threads} thread(s), tfjs ${report.tfjsVersion}, node ${report.node}, ${report.cpus} cores`, line(header), ...rows.map(line), ...skipped].join('\n') + '\n';
}
