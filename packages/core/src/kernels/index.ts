/**
 * Correct and fast training on the wasm and cpu backends of TensorFlow.js 4.22.
 *
 * `registerS2CPNetKernels()` is the one explicit call that installs everything (nothing happens on import). It is
 * idempotent, works for whichever of 'cpu' / 'wasm' is loaded when it is called (call it again after loading another
 * backend), and `restoreStockKernels()` undoes it. What is installed and why is listed in `KERNELS.md`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig, KernelConfig, KernelFunc } from '@tensorflow/tfjs-core';
import { kernelLookupFor, type KernelLookup } from './backend-access';
import {
  CONV_BACKPROP_KERNELS_NEEDED,
  DEPTHWISE_BACKPROP_INPUT_KERNELS_NEEDED,
  makeConv2DBackpropFilter,
  makeConv2DBackpropInput,
  makeDepthwiseBackpropInput,
} from './conv-backprop';
import { depthwiseBackpropFilterKernel, depthwiseBackpropInputKernel } from './depthwise-backprop';
import { fusedBatchNormGradConfig } from './batch-norm';
import { batchMatMulGradConfig, makeMatMulKernel } from './matmul';
import { avgPoolGradConfig, maxPoolGradKernel } from './pooling';
import { resizeBilinearGradKernel, resizeNearestNeighborGradKernel } from './resize';
import { RESIZE_MATRIX_KERNELS_NEEDED, makeResizeGradByMatrices } from './resize-matrices';
import { unsortedSegmentSumKernel } from './segment-sum';

export { upsampleNearest, matMulExplicit } from './ops';
export { reduceToShape } from './matmul';

/** The backends S²CPNet installs kernels for. */
export type S2CPNetKernelBackend = 'cpu' | 'wasm' | 'webgpu';

export interface RegisterKernelsOptions {
  /** Backends to install kernels for; default ['cpu', 'wasm', 'webgpu']. A backend that is not loaded is skipped. */
  backends?: string[];
}

export interface BackendKernelReport {
  /** Kernels the backend lacked, now provided by S²CPNet. */
  added: string[];
  /** Stock kernels replaced or wrapped by S²CPNet (the stock kernel is kept for `restoreStockKernels`). */
  replaced: string[];
  /** Why no kernel was installed for this backend, when none was. */
  skipped?: string;
}

export interface KernelReport {
  /** Per backend name: what S²CPNet kernels are installed (after this call, including earlier calls). */
  backends: Record<string, BackendKernelReport>;
  /** Kernel names whose gradient S²CPNet overrides; a gradient applies to every backend. */
  gradients: string[];
  /** True when tfjs' stock gradients were not registered (tfjs-layers or `@tensorflow/tfjs` was never imported). */
  stockGradientsMissing: boolean;
}

/** How one kernel is provided: from the backend's own kernels (`lookup`) and the stock kernel, if any. */
interface KernelPlan {
  kernelName: string;
  /** Kernels of the same backend this one is composed from. */
  needs: readonly string[];
  /** True if the stock kernel must exist (wrappers). */
  wrapsStock: boolean;
  build(stock: KernelFunc | undefined, lookup: KernelLookup): KernelFunc;
}

/** A self-contained JS kernel (it reads and writes the backend's memory directly). */
function jsKernel(kernelName: string, kernelFunc: KernelFunc): KernelPlan {
  return { kernelName, needs: [], wrapsStock: false, build: () => kernelFunc };
}

const conv2DBackpropFilterPlan: KernelPlan = {
  kernelName: 'Conv2DBackpropFilter',
  needs: CONV_BACKPROP_KERNELS_NEEDED,
  wrapsStock: false,
  build: (_stock, lookup) => makeConv2DBackpropFilter(lookup),
};

const conv2DBackpropInputPlan: KernelPlan = {
  kernelName: 'Conv2DBackpropInput',
  needs: CONV_BACKPROP_KERNELS_NEEDED,
  wrapsStock: false,
  build: (_stock, lookup) => makeConv2DBackpropInput(lookup),
};

function matMulPlan(kernelName: string, explicitTranspose: boolean): KernelPlan {
  return {
    kernelName,
    needs: ['Transpose', 'Reshape', 'Tile'],
    wrapsStock: true,
    build: (stock, lookup) => makeMatMulKernel(kernelName, stock!, lookup, explicitTranspose),
  };
}

/** wasm's own `ResizeBilinearGrad` is right (and native) unless `halfPixelCenters`. */
const halfPixelResizeBilinearGradPlan: KernelPlan = {
  kernelName: 'ResizeBilinearGrad',
  needs: [],
  wrapsStock: true,
  build: (stock) => (args) => (args.attrs?.['halfPixelCenters'] === true ? resizeBilinearGradKernel(args) : stock!(args)),
};

/**
 * webgpu: the resize gradients with `halfPixelCenters` as two matrix products (the stock kernels are wrong there,
 * as on wasm; a JS loop cannot run on GPU memory).
 */
function halfPixelResizeGradByMatricesPlan(kind: 'bilinear' | 'nearest'): KernelPlan {
  return {
    kernelName: kind === 'bilinear' ? 'ResizeBilinearGrad' : 'ResizeNearestNeighborGrad',
    needs: RESIZE_MATRIX_KERNELS_NEEDED,
    wrapsStock: true,
    build: (stock, lookup) => {
      const byMatrices = makeResizeGradByMatrices(kind, lookup);
      return (args) => (args.attrs?.['halfPixelCenters'] === true ? byMatrices(args) : stock!(args));
    },
  };
}

/** What is installed per backend; measured reasons are in the package README ("What is installed, and why"). */
const KERNEL_PLANS: Record<S2CPNetKernelBackend, KernelPlan[]> = {
  wasm: [
    conv2DBackpropFilterPlan,
    conv2DBackpropInputPlan,
    jsKernel('DepthwiseConv2dNativeBackpropFilter', depthwiseBackpropFilterKernel),
    {
      kernelName: 'DepthwiseConv2dNativeBackpropInput',
      needs: DEPTHWISE_BACKPROP_INPUT_KERNELS_NEEDED,
      wrapsStock: false,
      build: (_stock, lookup) => makeDepthwiseBackpropInput(lookup, depthwiseBackpropInputKernel),
    },
    jsKernel('UnsortedSegmentSum', unsortedSegmentSumKernel),
    matMulPlan('BatchMatMul', true),
    matMulPlan('_FusedMatMul', true),
    jsKernel('MaxPoolGrad', maxPoolGradKernel),
    halfPixelResizeBilinearGradPlan,
    jsKernel('ResizeNearestNeighborGrad', resizeNearestNeighborGradKernel),
  ],
  // cpu keeps its own Conv2DBackpropInput and DepthwiseConv2dNativeBackpropInput (as fast as the composed ones
  // there) and its own pooling gradients (correct).
  cpu: [
    conv2DBackpropFilterPlan,
    jsKernel('DepthwiseConv2dNativeBackpropFilter', depthwiseBackpropFilterKernel),
    jsKernel('UnsortedSegmentSum', unsortedSegmentSumKernel),
    jsKernel('ResizeBilinearGrad', resizeBilinearGradKernel),
    jsKernel('ResizeNearestNeighborGrad', resizeNearestNeighborGradKernel),
    // cpu has no penalty for transpose flags; the wrapper only fixes double-sided batch broadcasting.
    matMulPlan('BatchMatMul', false),
  ],
  // webgpu: only kernels composed of the backend's own (no JS loop can read GPU memory synchronously). Its stock
  // kernels pass every other gradient case of the finite-difference suite.
  webgpu: [
    // double-sided batch broadcasting ([2,1,m,k]·[1,3,k,n]) fails there as on cpu and wasm: tile first
    matMulPlan('BatchMatMul', false),
    halfPixelResizeGradByMatricesPlan('bilinear'),
    halfPixelResizeGradByMatricesPlan('nearest'),
  ],
};

const GRADIENT_OVERRIDES: GradConfig[] = [batchMatMulGradConfig, avgPoolGradConfig, fusedBatchNormGradConfig];

interface InstalledKernel {
  /** The kernel registered before ours (undefined when the backend lacked it). */
  stock: KernelConfig | undefined;
  ours: KernelConfig;
}

interface InstalledGradient {
  stock: GradConfig | undefined;
  ours: GradConfig;
}

/**
 * What is installed, kept on `globalThis` under a registered symbol: a bundle that inlines a second copy of this
 * module (the `@s2cpnet/core/testing` entry does) then sees the same state instead of wrapping our own kernels.
 */
interface RegistryState {
  kernels: Map<string, InstalledKernel>;
  gradients: Map<string, InstalledGradient>;
}

const STATE_KEY = Symbol.for('s2cpnet.kernels.registry');

function registryState(): RegistryState {
  const holder = globalThis as unknown as Record<symbol, RegistryState | undefined>;
  let state = holder[STATE_KEY];
  if (state === undefined) {
    state = { kernels: new Map(), gradients: new Map() };
    holder[STATE_KEY] = state;
  }
  return state;
}

const keyOf = (backendName: string, kernelName: string) => `${backendName}/${kernelName}`;

function isOurs(backendName: string, kernelName: string): boolean {
  const entry = registryState().kernels.get(keyOf(backendName, kernelName));
  return entry !== undefined && tf.getKernel(kernelName, backendName) === entry.ours;
}

/** The backend's own kernel for `kernelName`, looking through any S²CPNet kernel installed over it. */
function stockKernel(backendName: string, kernelName: string): KernelConfig | undefined {
  if (isOurs(backendName, kernelName)) return registryState().kernels.get(keyOf(backendName, kernelName))!.stock;
  return tf.getKernel(kernelName, backendName);
}

function backendIsLoaded(backendName: string): boolean {
  return tf.findBackendFactory(backendName) != null && tf.getKernel('Reshape', backendName) !== undefined;
}

function installKernels(backendName: S2CPNetKernelBackend): void {
  // Resolve every stock kernel first, so wrappers capture the backend's own kernels and not each other.
  const stock = new Map<string, KernelConfig | undefined>();
  for (const plan of KERNEL_PLANS[backendName]) {
    stock.set(plan.kernelName, stockKernel(backendName, plan.kernelName));
    for (const name of plan.needs) stock.set(name, stockKernel(backendName, name));
  }
  for (const plan of KERNEL_PLANS[backendName]) {
    if (isOurs(backendName, plan.kernelName)) continue;
    const stockConfig = stock.get(plan.kernelName);
    if (plan.wrapsStock && stockConfig === undefined) continue;
    const lookup = kernelLookupFor(backendName, (name) => stock.get(name)?.kernelFunc, plan.needs);
    if (typeof lookup !== 'function') continue; // a kernel it is composed from is missing in this tfjs version
    const ours: KernelConfig = {
      kernelName: plan.kernelName,
      backendName,
      kernelFunc: plan.build(stockConfig?.kernelFunc, lookup),
    };
    // Keep the stock setup/dispose hooks: a wrapper calls the stock kernel, whose native function is bound in setup.
    if (stockConfig?.setupFunc !== undefined) ours.setupFunc = stockConfig.setupFunc;
    if (stockConfig?.disposeFunc !== undefined) ours.disposeFunc = stockConfig.disposeFunc;
    if (tf.getKernel(plan.kernelName, backendName) !== undefined) tf.unregisterKernel(plan.kernelName, backendName);
    tf.registerKernel(ours);
    registryState().kernels.set(keyOf(backendName, plan.kernelName), { stock: stockConfig, ours });
  }
}

function installGradients(): void {
  const installed = registryState().gradients;
  for (const ours of GRADIENT_OVERRIDES) {
    const current = tf.getGradient(ours.kernelName);
    const previous = installed.get(ours.kernelName);
    if (previous !== undefined && current === previous.ours) continue;
    // If tfjs-layers was loaded after us it re-registered the stock gradient: that one is the stock to restore.
    installed.set(ours.kernelName, { stock: current ?? previous?.stock, ours });
    tf.registerGradient(ours);
  }
}

function reportFor(backendName: string): BackendKernelReport {
  const added: string[] = [];
  const replaced: string[] = [];
  for (const [key, entry] of registryState().kernels) {
    if (!key.startsWith(`${backendName}/`)) continue;
    if (tf.getKernel(entry.ours.kernelName, backendName) !== entry.ours) continue;
    (entry.stock === undefined ? added : replaced).push(entry.ours.kernelName);
  }
  return { added, replaced };
}

function currentReport(requested: readonly string[]): KernelReport {
  const backends: Record<string, BackendKernelReport> = {};
  for (const name of requested) {
    const report = reportFor(name);
    if (!(name in KERNEL_PLANS)) report.skipped = `S²CPNet has no kernels for backend '${name}' (only cpu, wasm and webgpu)`;
    else if (!backendIsLoaded(name)) {
      report.skipped = `backend '${name}' is not loaded: import '@tensorflow/tfjs-backend-${name}' first, then call registerS2CPNetKernels() again`;
    }
    backends[name] = report;
  }
  const gradients = [...registryState().gradients.values()]
    .filter((entry) => tf.getGradient(entry.ours.kernelName) === entry.ours)
    .map((entry) => entry.ours.kernelName);
  return { backends, gradients, stockGradientsMissing: tf.getGradient('Conv2D') === undefined };
}

/**
 * Installs the S²CPNet kernels and gradient fixes for the cpu and wasm backends (one explicit, idempotent call).
 *
 * - wasm, added: `Conv2DBackpropFilter` (im2col + one matMul on XNNPACK; a forward-conv formulation for very large
 *   inputs), `DepthwiseConv2dNativeBackpropInput` (polyphase depthwise convs), `DepthwiseConv2dNativeBackpropFilter`
 *   and `UnsortedSegmentSum` (JS loops);
 * - wasm, replaced: `Conv2DBackpropInput` (polyphase convs, 4–10× faster), `BatchMatMul` / `_FusedMatMul` (no slow
 *   transpose flags; batched products such as attention's per-head ones in a blocked JS loop, 2–4× faster than
 *   wasm's scalar batched path, and a batch of rows times one matrix as one XNNPACK product),
 *   `MaxPoolGrad` (wrong for all-negative windows), `ResizeBilinearGrad` (halfPixelCenters),
 *   `ResizeNearestNeighborGrad` (halfPixelCenters);
 * - cpu, replaced: `Conv2DBackpropFilter` (30–45× faster), `DepthwiseConv2dNativeBackpropFilter` (JS loop, 55–60×
 *   faster), `UnsortedSegmentSum` (O(segments·N·d) → O(N·d)),
 *   `ResizeBilinearGrad` (halfPixelCenters; height ≠ width), `ResizeNearestNeighborGrad` (batch > 1),
 *   `BatchMatMul` (batch dimensions broadcast on both sides);
 * - gradients, every backend: `BatchMatMul` (explicit transposes; broadcast batch dimensions, which the stock
 *   gradient rejects), `AvgPool` (the divisor excludes padding, as in the forward pass) and `FusedBatchNorm` (a
 *   broadcast multiply instead of a full-size tile).
 *
 * Call it after importing the backend packages (a backend that is not loaded is skipped and reported; call again
 * after loading it) and after importing `@tensorflow/tfjs-layers`, which re-registers tfjs' stock gradients when it
 * is first loaded. Returns what is installed.
 *
 * @example
 * import '@tensorflow/tfjs-backend-wasm';
 * await tf.setBackend('wasm');
 * const report = registerS2CPNetKernels();
 * // report.backends.wasm.added → ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', ...]
 */
export function registerS2CPNetKernels(options: RegisterKernelsOptions = {}): KernelReport {
  const requested = options.backends ?? ['cpu', 'wasm', 'webgpu'];
  for (const name of requested) {
    if (!(name in KERNEL_PLANS) || !backendIsLoaded(name)) continue;
    installKernels(name as S2CPNetKernelBackend);
  }
  installGradients();
  return currentReport(requested);
}

/** What `registerS2CPNetKernels` has installed so far, without installing anything. */
export function s2cpnetKernelReport(backends: string[] = ['cpu', 'wasm', 'webgpu']): KernelReport {
  return currentReport(backends);
}

/**
 * Puts back the stock kernels and gradients that `registerS2CPNetKernels` replaced, and removes the ones it added.
 * For benchmarks and for tests that compare against stock tfjs.
 */
export function restoreStockKernels(): void {
  const { kernels, gradients } = registryState();
  for (const [key, entry] of kernels) {
    const { kernelName, backendName } = entry.ours;
    if (tf.getKernel(kernelName, backendName) === entry.ours) {
      tf.unregisterKernel(kernelName, backendName);
      if (entry.stock !== undefined) tf.registerKernel(entry.stock);
    }
    kernels.delete(key);
  }
  for (const [name, entry] of gradients) {
    if (tf.getGradient(name) === entry.ours) {
      if (entry.stock !== undefined) tf.registerGradient(entry.stock);
      else tf.unregisterGradient(name);
    }
    gradients.delete(name);
  }
}
