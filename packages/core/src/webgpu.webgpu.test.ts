// The webgpu group (S2CPNET_TEST_BACKENDS=webgpu): the backend set-up on whatever adapter Dawn finds here (Mesa's
// llvmpipe through OpenGL ES on a machine without a GPU).
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { initBackend, measureMatMulGflops } from './backend';
import { gpuDeviceNodePresent, setUpWebGpu, webGpuAdapterReport } from './webgpu';

describe('webgpu backend', () => {
  it('initialises when asked for by name, reports its adapter and computes what the cpu backend computes', async () => {
    const info = await initBackend({ backend: 'webgpu' });
    expect(info.backend).toBe('webgpu');
    expect(tf.getBackend()).toBe('webgpu');
    const adapter = info.adapter!;
    expect(adapter).toEqual(webGpuAdapterReport());
    expect(adapter.description + adapter.device + adapter.vendor).not.toBe('');
    expect(['core', 'compatibility']).toContain(adapter.featureLevel);
    expect(adapter.limits['maxStorageBuffersPerShaderStage']).toBeGreaterThanOrEqual(8);
    if (!gpuDeviceNodePresent()) expect(adapter.software).toBe(true);

    // a product checked against a float64 one computed here
    const a = Float32Array.from({ length: 12 * 7 }, (_, i) => Math.sin(i));
    const b = Float32Array.from({ length: 7 * 5 }, (_, i) => Math.cos(i));
    const c = tf.matMul(tf.tensor2d(a, [12, 7]), tf.tensor2d(b, [7, 5]));
    // the constraint the toolkit is written around: no synchronous reads of GPU results under Node
    expect(() => c.dataSync()).toThrow(/OffscreenCanvas/);
    const got = await c.data();
    for (let i = 0; i < 12; i++) {
      for (let j = 0; j < 5; j++) {
        let want = 0;
        for (let k = 0; k < 7; k++) want += a[i * 7 + k]! * b[k * 5 + j]!;
        expect(Math.abs(got[i * 5 + j]! - want)).toBeLessThan(1e-5);
      }
    }
    c.dispose();
    expect(await measureMatMulGflops(128, 2)).toBeGreaterThan(0);
  });

  it('is never chosen automatically on a software adapter', async () => {
    const setup = await setUpWebGpu({ allowSoftware: false });
    if (gpuDeviceNodePresent()) return; // a machine with a GPU may have a hardware adapter: nothing to refuse
    expect(setup.ok).toBe(false);
    expect(setup.ok ? '' : setup.reason).toMatch(/no GPU device|software adapter/);
  });
});
