/**
 * Backend selection, shared by the `s2cpnet` command and the library (`loadCaptioner` in `@s2cpnet/model` sets a
 * backend up on first use, so a program that imports only the library never meets tfjs' bare "No backend found in
 * registry"). Published as the subpath `@s2cpnet/core/backend` so the main entry stays free of `node:os` and the
 * backend packages, which are optional peer dependencies loaded by dynamic `import()` only when chosen.
 */
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { BackendError } from './errors';
import { registerS2CPNetKernels } from './kernels/index';
import { setUpWebGpu, type WebGpuAdapterReport } from './webgpu';

export { setUpWebGpu, webGpuAdapterReport, type WebGpuAdapterReport, type WebGpuSetup, type WebGpuSetupOptions } from './webgpu';

/** Backends the toolkit can run on, fastest first. */
export const BACKEND_NAMES = ['tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export interface InitBackendOptions {
  /**
   * Backend to use; default: `S2CPNET_BACKEND`, else the fastest available (tensorflow > webgpu on a hardware
   * adapter > wasm > cpu).
   */
  backend?: string;
  /**
   * wasm threads; default `S2CPNET_THREADS`, else one per core. More than one needs the `@s2cpnet/cli/wasm-threads`
   * preload (`node --require @s2cpnet/cli/wasm-threads ...`; the `s2cpnet` command adds it itself): without it
   * tfjs runs its single-threaded build under Node, and a note says so.
   */
  threads?: number;
  /** Log lines (e.g. why a backend was skipped) go here. */
  log?: (line: string) => void;
}

export interface BackendInfo {
  backend: BackendName;
  tfjsVersion: string;
  /** Threads the backend computes with (wasm: the XNNPACK pool; tensorflow/cpu: as reported). */
  threads: number;
  /** Why faster backends were skipped. */
  notes: string[];
  /** What registerS2CPNetKernels() installed. */
  kernels: unknown;
  /** webgpu: the adapter it runs on. */
  adapter?: WebGpuAdapterReport;
}

// Names in variables so neither tsc nor bundlers try to resolve optional packages that are usually absent.
const NODE_BACKEND_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];

async function tryImport(name: string): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    await import(/* @vite-ignore */ name);
    return { ok: true };
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0]! : String(error);
    return { ok: false, reason: message };
  }
}

function parseBackendName(value: string, source: string): BackendName {
  if ((BACKEND_NAMES as readonly string[]).includes(value)) return value as BackendName;
  throw new BackendError(`unknown backend ${JSON.stringify(value)} (from ${source}); valid backends: ${BACKEND_NAMES.join(', ')}`);
}

/**
 * Picks and initialises the TensorFlow.js backend, then installs the project's kernel and gradient fixes.
 * Order: `tensorflow` (via @tensorflow/tfjs-node-gpu or -node when the user installed one), `webgpu` (when the
 * optional `webgpu` package finds a hardware adapter), `wasm`, `cpu`. `options.backend` or `S2CPNET_BACKEND` forces
 * one (a forced `webgpu` also accepts a software adapter, e.g. Mesa's llvmpipe, for correctness checks); an unknown
 * name is an error listing the valid ones.
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendInfo> {
  tf.env().set('PROD', true);
  const log = options.log ?? (() => {});
  const requested = options.backend ?? process.env.S2CPNET_BACKEND;
  const forced = requested ? parseBackendName(requested, options.backend ? '--backend' : 'S2CPNET_BACKEND') : undefined;
  const notes: string[] = [];
  const candidates: BackendName[] = forced ? [forced] : [...BACKEND_NAMES];
  let chosen: BackendName | undefined;
  let adapter: WebGpuAdapterReport | undefined;
  for (const name of candidates) {
    if (name === 'tensorflow') {
      for (const pkg of NODE_BACKEND_PACKAGES) {
        const imported = await tryImport(pkg);
        if (!imported.ok) {
          notes.push(`${pkg}: not available (${imported.reason})`);
          continue;
        }
        if (await safeSetBackend('tensorflow')) {
          chosen = 'tensorflow';
          break;
        }
        notes.push(`${pkg}: imported, but the 'tensorflow' backend did not initialise (two copies of @tensorflow/tfjs-core?)`);
      }
    } else if (name === 'webgpu') {
      const setup = await setUpWebGpu({ allowSoftware: forced === 'webgpu' });
      if (!setup.ok) notes.push(setup.reason);
      else if (await safeSetBackend('webgpu')) {
        chosen = 'webgpu';
        adapter = setup.adapter;
      } else notes.push(`webgpu: the backend failed to initialise on ${setup.adapter.description || setup.adapter.vendor || 'the adapter found'}`);
    } else if (name === 'wasm') {
      const imported = await tryImport('@tensorflow/tfjs-backend-wasm');
      if (!imported.ok) {
        notes.push(`@tensorflow/tfjs-backend-wasm: not available (${imported.reason}); npm install @tensorflow/tfjs-backend-wasm@${tf.version_core}`);
      } else {
        const wasm = (await import('@tensorflow/tfjs-backend-wasm')) as typeof import('@tensorflow/tfjs-backend-wasm');
        const threads = requestedThreads(options.threads);
        const threaded = threads > 1 && wasmThreadsPreloaded();
        if (threads > 1 && !threaded) {
          notes.push(`wasm: ${threads} threads asked for, running 1: start node with --require @s2cpnet/cli/wasm-threads (the s2cpnet command does this itself)`);
        }
        tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', threaded);
        wasm.setThreadsCount(threaded ? threads : 1);
        if (await safeSetBackend('wasm')) chosen = 'wasm';
        else if (threaded) {
          // The threaded build depends on bundle internals; if it does not start, run single-threaded.
          notes.push('wasm: the multi-threaded build failed to start; running 1 thread');
          tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
          wasm.setThreadsCount(1);
          if (await safeSetBackend('wasm')) chosen = 'wasm';
          else notes.push('wasm: backend failed to initialise');
        } else notes.push('wasm: backend failed to initialise');
      }
    } else {
      const imported = await tryImport('@tensorflow/tfjs-backend-cpu');
      if (!imported.ok) notes.push(`@tensorflow/tfjs-backend-cpu: not available (${imported.reason}); npm install @tensorflow/tfjs-backend-cpu@${tf.version_core}`);
      else if (await safeSetBackend('cpu')) chosen = 'cpu';
    }
    if (chosen) break;
  }
  if (!chosen) {
    throw new BackendError(`could not initialise backend ${forced ?? candidates.join(' / ')}:\n  ${notes.join('\n  ')}`);
  }
  for (const note of notes) log(note);
  const kernels = registerS2CPNetKernels();
  return { backend: chosen, tfjsVersion: tf.version_core, threads: await backendThreads(chosen), notes, kernels, ...(adapter ? { adapter } : {}) };
}

/**
 * Sets a backend up unless the program already has one: with `options.backend` (or `S2CPNET_BACKEND`) that backend
 * is initialised as `initBackend` does; otherwise a backend the program already set (`tf.setBackend`) is kept and
 * only the kernel fixes are installed; with none, `initBackend` picks the fastest available. Returns the backend in
 * use. Libraries call this on first use.
 */
export async function ensureBackend(options: InitBackendOptions = {}): Promise<{ backend: string; initialized: boolean }> {
  const current = tf.engine().backendName as string | null | undefined;
  if (!options.backend && !process.env.S2CPNET_BACKEND && current) {
    registerS2CPNetKernels();
    return { backend: current, initialized: false };
  }
  const info = await initBackend(options);
  return { backend: info.backend, initialized: true };
}

/** Threads asked for: the option, else `S2CPNET_THREADS`, else one per core. */
export function requestedThreads(option?: number, env: NodeJS.ProcessEnv = process.env): number {
  const fromEnv = env.S2CPNET_THREADS;
  const value = option ?? (fromEnv !== undefined && fromEnv !== '' ? Number(fromEnv) : (os.availableParallelism?.() ?? os.cpus().length));
  if (!Number.isInteger(value) || value < 1) {
    throw new BackendError(`threads must be a positive integer, found ${JSON.stringify(option ?? fromEnv)}${option === undefined ? ' (from S2CPNET_THREADS)' : ''}`);
  }
  return value;
}

/** True when this process was started with the `@s2cpnet/cli/wasm-threads` preload. */
export function wasmThreadsPreloaded(): boolean {
  return typeof (globalThis as { __s2cpnetWasmThreads?: unknown }).__s2cpnetWasmThreads === 'object';
}

async function safeSetBackend(name: string): Promise<boolean> {
  try {
    return await tf.setBackend(name);
  } catch {
    return false;
  }
}

async function backendThreads(name: BackendName): Promise<number> {
  if (name === 'wasm') {
    const wasm = (await import('@tensorflow/tfjs-backend-wasm')) as typeof import('@tensorflow/tfjs-backend-wasm');
    return wasm.getThreadsCount();
  }
  if (name === 'cpu' || name === 'webgpu') return 1;
  return os.availableParallelism?.() ?? os.cpus().length;
}

/** Measures matMul throughput on the current backend: median of `reps` products of two n x n matrices. */
export async function measureMatMulGflops(n = 512, reps = 5): Promise<number> {
  const a = tf.randomUniform([n, n]);
  const b = tf.randomUniform([n, n]);
  try {
    const warm = tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D);
    await warm.data();
    warm.dispose();
    const times: number[] = [];
    for (let i = 0; i < reps; i++) {
      const start = performance.now();
      const c = tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D);
      await c.data();
      times.push(performance.now() - start);
      c.dispose();
    }
    times.sort((x, y) => x - y);
    const median = times[Math.floor(times.length / 2)]!;
    return (2 * n ** 3) / (median / 1000) / 1e9;
  } finally {
    tf.dispose([a, b]);
  }
}
