import * as tf from '@tensorflow/tfjs-core';
import { registerS2CPNetKernels, type KernelReport } from '../kernels/index';
import { setUpWebGpu, webGpuAdapterReport } from '../webgpu';

export type TestBackend = 'cpu' | 'wasm' | 'webgpu';

const DEFAULT_BACKENDS: readonly TestBackend[] = ['cpu', 'wasm'];
const KNOWN_BACKENDS: readonly TestBackend[] = ['cpu', 'wasm', 'webgpu'];

/**
 * The backends tests should run on: `S2CPNET_TEST_BACKENDS` (comma separated, e.g. `wasm`, `cpu,wasm` or
 * `webgpu`), default `cpu,wasm`. webgpu is opt-in: it needs the optional `webgpu` package and an adapter (Mesa's
 * llvmpipe will do), and only tests written with asynchronous reads run on it (`npm test` runs the webgpu group).
 *
 * @example
 * for (const backend of testBackends()) describe(`on ${backend}`, () => { beforeAll(() => useBackend(backend)); ... });
 */
export function testBackends(): TestBackend[] {
  const raw = process.env['S2CPNET_TEST_BACKENDS'];
  if (raw === undefined || raw.trim() === '') return [...DEFAULT_BACKENDS];
  const names = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const name of names) {
    if (!(KNOWN_BACKENDS as readonly string[]).includes(name)) {
      throw new Error(`S2CPNET_TEST_BACKENDS: unknown backend '${name}', expected a comma-separated subset of ${KNOWN_BACKENDS.join(', ')}`);
    }
  }
  return names as TestBackend[];
}

let lastReport: KernelReport | undefined;

/**
 * Loads a backend package (dynamically, so libraries never depend on one), makes it current, installs the S²CPNet
 * kernels and silences tfjs' console banner. Also loads `@tensorflow/tfjs-layers`, which registers tfjs' stock
 * gradients (tfjs-core alone has none).
 */
export async function useBackend(name: TestBackend): Promise<KernelReport> {
  if (!(KNOWN_BACKENDS as readonly string[]).includes(name)) {
    throw new Error(`useBackend: unknown backend '${String(name)}', expected one of ${KNOWN_BACKENDS.join(', ')}`);
  }
  tf.env().set('PROD', true);
  await import('@tensorflow/tfjs-layers');
  if (name === 'webgpu') {
    if (webGpuAdapterReport() === undefined) {
      const setup = await setUpWebGpu({ allowSoftware: true });
      if (!setup.ok) throw new Error(`useBackend: ${setup.reason}`);
    }
  } else if (name === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  else await import('@tensorflow/tfjs-backend-cpu');
  const ok = await tf.setBackend(name);
  if (!ok || tf.getBackend() !== name) throw new Error(`useBackend: tf.setBackend('${name}') failed`);
  await tf.ready();
  lastReport = registerS2CPNetKernels({ backends: [name] });
  return lastReport;
}

/** The report of the last `useBackend` call (what S²CPNet kernels are installed). */
export function lastKernelReport(): KernelReport | undefined {
  return lastReport;
}
