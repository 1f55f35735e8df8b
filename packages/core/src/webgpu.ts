/**
 * The WebGPU backend under Node: `@tensorflow/tfjs-backend-webgpu` on Dawn, the WebGPU implementation shipped as a
 * prebuilt binary inside the optional `webgpu` npm package. On a machine with an NVIDIA, AMD or Intel GPU Dawn runs
 * on the driver's Vulkan (no CUDA install). Without a GPU, Mesa's software OpenGL ES (llvmpipe) runs it for
 * correctness only: `S2CPNET_WEBGPU_DAWN=opengl` (set by `--backend webgpu` when no other adapter is found).
 *
 * Node has no `navigator`: `navigator.gpu` and the WebGPU globals (`GPUBufferUsage`, ...) are installed before the
 * backend package is imported, and tfjs' own registration (which asks for a core-feature-level adapter with the
 * default limits) is replaced by one that takes the adapter found here and its raised limits. Synchronous reads
 * (`dataSync`, `arraySync`) do not work on this backend under Node ("OffscreenCanvas is not defined"): read with
 * `await tensor.data()`.
 */
import { existsSync, readdirSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';

/** What `s2cpnet doctor` and `initBackend` report about the adapter WebGPU runs on. */
export interface WebGpuAdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** Dawn's backend: 'vulkan', 'opengl', 'opengles', 'metal', 'd3d12' (from the flag asked for, or 'default'). */
  dawnBackend: string;
  /** WebGPU feature level the adapter was obtained with. */
  featureLevel: 'core' | 'compatibility';
  /** A software rasteriser (llvmpipe, lavapipe, SwiftShader, WARP): correct but slower than wasm. */
  software: boolean;
  /** The limits the device was created with (those that bound tfjs' kernels). */
  limits: Record<string, number>;
}

export interface WebGpuSetupOptions {
  /**
   * Accept a software adapter and fall back to Dawn's OpenGL ES backend (Mesa) when no other adapter is found.
   * `initBackend` sets this when webgpu is asked for by name; the automatic choice never takes a software adapter.
   */
  allowSoftware?: boolean;
  /** Dawn backend flag (`backend=<name>`); default `S2CPNET_WEBGPU_DAWN`, else Dawn's own choice. */
  dawnBackend?: string;
  env?: NodeJS.ProcessEnv;
}

export type WebGpuSetup = { ok: true; adapter: WebGpuAdapterReport } | { ok: false; reason: string };

/** Limits tfjs' webgpu kernels are bounded by; the device is created with the adapter's values for each. */
const RAISED_LIMITS = [
  'maxComputeWorkgroupStorageSize',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupSizeX',
  'maxComputeInvocationsPerWorkgroup',
  'maxStorageBuffersPerShaderStage',
] as const;

const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|softpipe|swiftshader|microsoft basic render|\bwarp\b/i;

// Minimal structural types of the WebGPU objects used here (the full types are in @webgpu/types, which core does
// not depend on).
interface GpuAdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}
interface GpuAdapterLike {
  info?: GpuAdapterInfoLike;
  isFallbackAdapter?: boolean;
  features: { has(name: string): boolean };
  limits: Record<string, number>;
  requestDevice(descriptor: { requiredFeatures?: string[]; requiredLimits?: Record<string, number> }): Promise<unknown>;
}
interface GpuLike {
  requestAdapter(options?: { powerPreference?: string; featureLevel?: string }): Promise<GpuAdapterLike | null>;
}
interface DawnModule {
  create(flags: string[]): GpuLike;
  globals: Record<string, unknown>;
}

// Names in variables so neither tsc nor bundlers resolve these optional packages.
const DAWN_PACKAGE = 'webgpu';
const TFJS_WEBGPU_PACKAGE = '@tensorflow/tfjs-backend-webgpu';

/** The adapter the current 'webgpu' backend was registered with (undefined before `setUpWebGpu` succeeds). */
let current: WebGpuAdapterReport | undefined;

export function webGpuAdapterReport(): WebGpuAdapterReport | undefined {
  return current;
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}

function describe(adapter: GpuAdapterLike, dawnBackend: string, featureLevel: 'core' | 'compatibility'): WebGpuAdapterReport {
  const info = adapter.info ?? {};
  const text = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
  const software = info.isFallbackAdapter === true || adapter.isFallbackAdapter === true || SOFTWARE_ADAPTER.test(text);
  const limits: Record<string, number> = {};
  for (const name of RAISED_LIMITS) if (typeof adapter.limits[name] === 'number') limits[name] = adapter.limits[name]!;
  return {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    dawnBackend,
    featureLevel,
    software,
    limits,
  };
}

async function requestAdapter(gpu: GpuLike, featureLevel: 'core' | 'compatibility'): Promise<GpuAdapterLike | null> {
  try {
    return await gpu.requestAdapter({ powerPreference: 'high-performance', ...(featureLevel === 'compatibility' ? { featureLevel } : {}) });
  } catch {
    return null;
  }
}

/**
 * Linux only: whether a GPU device node exists (`/dev/dri/renderD*` for Mesa's and AMD/Intel drivers, `/dev/nvidia*`
 * for NVIDIA's). Without one Dawn can find only software adapters, so the automatic choice does not probe (probing
 * Vulkan on a machine without a GPU costs time and prints driver errors).
 */
export function gpuDeviceNodePresent(platform: NodeJS.Platform = process.platform): boolean {
  if (platform !== 'linux') return true;
  const listing = (dir: string) => {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  };
  return listing('/dev/dri').some((name) => name.startsWith('renderD')) || listing('/dev').some((name) => /^nvidia\d+$/.test(name)) || existsSync('/dev/dxg');
}

/**
 * Finds a WebGPU adapter through Dawn and registers tfjs' 'webgpu' backend on it (it does not make it current).
 * Returns why not when the packages are missing or no acceptable adapter is found.
 */
export async function setUpWebGpu(options: WebGpuSetupOptions = {}): Promise<WebGpuSetup> {
  const env = options.env ?? process.env;
  let dawn: DawnModule;
  try {
    dawn = (await import(/* @vite-ignore */ DAWN_PACKAGE)) as DawnModule;
  } catch (error) {
    return { ok: false, reason: `the optional package 'webgpu' (Dawn for Node) is not installed (${firstLine(error)}); npm install webgpu@~0.6.2 @tensorflow/tfjs-backend-webgpu@${tf.version_core}` };
  }
  const asked = options.dawnBackend ?? (env['S2CPNET_WEBGPU_DAWN'] || undefined);
  if (!options.allowSoftware && !asked && !gpuDeviceNodePresent()) {
    return { ok: false, reason: 'webgpu: no GPU device (/dev/dri/renderD*, /dev/nvidia*); --backend webgpu runs on Mesa (llvmpipe) for correctness only' };
  }
  // Dawn's choice first; with allowSoftware, then Mesa's OpenGL ES (the one software path Dawn accepts on Debian 12).
  // Without a GPU device node only the software OpenGL ES path can work: skip probing Vulkan.
  const attempts: string[] = asked ? [asked] : !options.allowSoftware ? ['default'] : gpuDeviceNodePresent() ? ['default', 'opengl'] : ['opengl'];
  const reasons: string[] = [];
  let found: { adapter: GpuAdapterLike; gpu: GpuLike; report: WebGpuAdapterReport } | undefined;
  for (const dawnBackend of attempts) {
    // Mesa's EGL needs a platform without a display server.
    if ((dawnBackend === 'opengl' || dawnBackend === 'opengles') && !env['EGL_PLATFORM']) process.env['EGL_PLATFORM'] = 'surfaceless';
    let gpu: GpuLike;
    try {
      gpu = dawn.create(dawnBackend === 'default' ? [] : [`backend=${dawnBackend}`]);
    } catch (error) {
      reasons.push(`${dawnBackend}: ${firstLine(error)}`);
      continue;
    }
    // The GL backends exist only in compatibility mode.
    const levels: ('core' | 'compatibility')[] = dawnBackend.startsWith('opengl') ? ['compatibility'] : ['core', 'compatibility'];
    for (const level of levels) {
      const adapter = await requestAdapter(gpu, level);
      if (!adapter) continue;
      const report = describe(adapter, dawnBackend, level);
      if (report.software && !options.allowSoftware) {
        reasons.push(`${dawnBackend}: only a software adapter (${report.description || report.vendor}), slower than wasm; --backend webgpu takes it anyway`);
        break;
      }
      found = { adapter, gpu, report };
      break;
    }
    if (found) break;
    if (!reasons.some((r) => r.startsWith(`${dawnBackend}:`))) reasons.push(`${dawnBackend}: no adapter`);
  }
  if (!found) {
    const hint = options.allowSoftware ? '' : '; without a GPU, --backend webgpu runs on Mesa (llvmpipe) for correctness only';
    return { ok: false, reason: `webgpu: ${reasons.join('; ')}${hint}` };
  }

  const globals = globalThis as Record<string, unknown>;
  for (const [name, value] of Object.entries(dawn.globals)) if (!(name in globals)) globals[name] = value;
  const nav = (globals['navigator'] ?? (globals['navigator'] = {})) as Record<string, unknown>;
  if (nav['gpu'] === undefined) Object.defineProperty(nav, 'gpu', { value: found.gpu, configurable: true, writable: true });

  let backendModule: { WebGPUBackend: new (device: unknown, adapterInfo?: unknown) => tf.KernelBackend };
  try {
    backendModule = (await import(/* @vite-ignore */ TFJS_WEBGPU_PACKAGE)) as typeof backendModule;
  } catch (error) {
    return { ok: false, reason: `webgpu: @tensorflow/tfjs-backend-webgpu is not installed (${firstLine(error)}); npm install @tensorflow/tfjs-backend-webgpu@${tf.version_core}` };
  }
  const { adapter, report } = found;
  if (tf.findBackendFactory('webgpu') != null) tf.removeBackend('webgpu');
  tf.registerBackend(
    'webgpu',
    async () => {
      const requiredFeatures = adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
      const device = await adapter.requestDevice({ requiredFeatures, requiredLimits: { ...report.limits } });
      return new backendModule.WebGPUBackend(device, adapter.info);
    },
    3,
  );
  current = report;
  return { ok: true, adapter: report };
}
