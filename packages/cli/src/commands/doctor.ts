import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import type { Command, CommandContext } from '../command';
import { ExitCode } from '../command';
import { initBackend, measureMatMulGflops } from '../backend';
import type { WebGpuAdapterReport } from '@s2cpnet/core/backend';

const CUDA_LIBRARIES = ['libcudart.so.11.0', 'libcudnn.so.8'];

/** Where the dynamic loader would find a library: LD_LIBRARY_PATH, then the ldconfig cache. */
function findSharedLibrary(name: string): string | null {
  for (const dir of (process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean)) {
    if (existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  try {
    const cache = execFileSync('ldconfig', ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const line = cache.split('\n').find((l) => l.trim().startsWith(`${name} `));
    if (line) return line.split('=>').pop()!.trim();
  } catch {
    // no ldconfig: fall through
  }
  return null;
}

function isResolvable(name: string): boolean {
  try {
    createRequire(path.join(process.cwd(), 'index.js')).resolve(name);
    return true;
  } catch {
    try {
      createRequire(import.meta.url).resolve(name);
      return true;
    } catch {
      return false;
    }
  }
}

export interface DoctorReport {
  node: string;
  platform: string;
  cpus: number;
  tfjsVersion: string;
  backend: string;
  threads: number;
  matmulGflops: number;
  /** webgpu: the adapter (vendor, architecture, device, Dawn backend, software or not, limits). */
  adapter?: WebGpuAdapterReport;
  nodeBackendPackages: Record<string, boolean>;
  warnings: string[];
  notes: string[];
}

export async function runDoctor(context: CommandContext): Promise<DoctorReport> {
  const info = await initBackend({ ...context.backend });
  const warnings: string[] = [];
  const nodeBackendPackages = {
    '@tensorflow/tfjs-node-gpu': isResolvable('@tensorflow/tfjs-node-gpu'),
    '@tensorflow/tfjs-node': isResolvable('@tensorflow/tfjs-node'),
  };
  if (nodeBackendPackages['@tensorflow/tfjs-node-gpu']) {
    const missing = CUDA_LIBRARIES.filter((lib) => findSharedLibrary(lib) === null);
    if (missing.length > 0) {
      warnings.push(
        `@tensorflow/tfjs-node-gpu is installed but TensorFlow will find no GPU: ${missing.join(', ')} not found ` +
          '(tfjs-node-gpu 4.22 needs CUDA 11.2 and cuDNN 8.1; install them side by side or use a CUDA-11 container). ' +
          'It falls back to the CPU.',
      );
    }
  }
  if (info.backend === 'cpu') warnings.push('running on the pure-JS cpu backend: 25-100x slower than wasm');
  if (info.adapter?.software) {
    warnings.push(`webgpu runs on a software adapter (${info.adapter.device || info.adapter.description}): for correctness checks only, slower than wasm`);
  }
  const cores = logicalCores();
  if (info.backend === 'wasm' && info.threads < cores) {
    info.notes.push(`wasm runs ${info.threads} thread(s) on ${cores} cores (set --threads / S2CPNET_THREADS; threads need the @s2cpnet/cli/wasm-threads preload, which the s2cpnet command adds)`);
  }
  const matmulGflops = await measureMatMulGflops(512, 5);
  return {
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpus: cores,
    tfjsVersion: info.tfjsVersion,
    backend: info.backend,
    threads: info.threads,
    matmulGflops: Math.round(matmulGflops * 100) / 100,
    ...(info.adapter ? { adapter: info.adapter } : {}),
    nodeBackendPackages,
    warnings,
    notes: info.notes,
  };
}

/** The flags `s2cpnet doctor` accepts (its `--help` lists each one, and the global --backend/--threads). */
export const DOCTOR_OPTIONS = {
  json: { type: 'boolean', default: false },
} as const;

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'Show the TensorFlow.js version, backend, threads and measured speed; warn about GPU set-up problems',
  usage: `s2cpnet doctor [options]

Options:
  --json                    print the report as JSON on stdout (default off: a table)
  --backend NAME            (global) tensorflow, webgpu, wasm or cpu (default: S2CPNET_BACKEND, else the fastest installed)
  --threads N               (global) wasm threads (default: S2CPNET_THREADS, else one per core)`,
  async run(argv, context) {
    const { values } = parseArgs({ args: argv, options: DOCTOR_OPTIONS, strict: true });
    const report = await runDoctor(context);
    if (values.json) {
      context.stdout(`${JSON.stringify(report, null, 2)}\n`);
    } else {
      const rows: [string, string][] = [
        ['node', `${report.node} (${report.platform}, ${report.cpus} cores)`],
        ['tfjs', report.tfjsVersion],
        ['backend', report.backend],
        ['threads', String(report.threads)],
        ['matMul 512x512', `${report.matmulGflops} GFLOP/s`],
        ...(report.adapter ? adapterRows(report.adapter) : []),
        ...Object.entries(report.nodeBackendPackages).map(([k, v]) => [k, v ? 'installed' : 'not installed'] as [string, string]),
      ];
      for (const [k, v] of rows) context.stdout(`${k.padEnd(40)} ${v}\n`);
      for (const n of report.notes) context.stdout(`note: ${n}\n`);
      for (const w of report.warnings) context.stdout(`warning: ${w}\n`);
    }
    return ExitCode.ok;
  },
};

function adapterRows(adapter: WebGpuAdapterReport): [string, string][] {
  const name = [adapter.vendor, adapter.architecture, adapter.device].filter((x) => x !== '').join(' / ') || '(not reported)';
  return [
    ['webgpu adapter', `${name}${adapter.software ? ' (software)' : ''}`],
    ['webgpu description', adapter.description || '(none)'],
    ['webgpu Dawn backend', `${adapter.dawnBackend}, ${adapter.featureLevel} feature level`],
    ...Object.entries(adapter.limits).map(([k, v]) => [`webgpu ${k}`, String(v)] as [string, string]),
  ];
}

/** Logical cores; the wasm-threads preload doubles what os.cpus() reports, so prefer availableParallelism. */
function logicalCores(): number {
  const preload = (globalThis as { __s2cpnetWasmThreads?: { logicalCores?: number } }).__s2cpnetWasmThreads;
  return preload?.logicalCores ?? os.availableParallelism?.() ?? os.cpus().length;
}
