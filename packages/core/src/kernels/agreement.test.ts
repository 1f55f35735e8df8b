import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { testBackends, useBackend } from '../testing/index';
import { allGradientCases, type GradientCase } from './gradient-cases.test-util';

/** Analytic gradients of a case on the current backend, read back as float32 arrays. */
function gradientsOf(c: GradientCase): Float32Array[] {
  const inputs = c.inputs();
  try {
    const wrt = c.check?.wrt ?? inputs.flatMap((t, i) => (t.dtype === 'float32' ? [i] : []));
    return tf.tidy(() => {
      const grads = tf.grads((...xs: tf.Tensor[]) => {
        const all = inputs.slice();
        wrt.forEach((inputIndex, k) => (all[inputIndex] = xs[k]!));
        return tf.sum(c.f(...all));
      })(wrt.map((i) => inputs[i]!));
      return grads.map((g) => g.dataSync().slice() as Float32Array);
    });
  } finally {
    tf.dispose(inputs);
  }
}

/** max |a − b| / max |b| over one gradient tensor. */
function relativeDifference(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return scale === 0 ? diff : diff / scale;
}

const backends = testBackends();
const bothBackends = backends.includes('cpu') && backends.includes('wasm');

describe.runIf(bothBackends)('wasm gradients agree with cpu gradients', () => {
  const cases = allGradientCases();
  const onCpu = new Map<string, Float32Array[]>();
  const onWasm = new Map<string, Float32Array[]>();

  beforeAll(async () => {
    await useBackend('cpu');
    for (const c of cases) onCpu.set(c.name, gradientsOf(c));
    await useBackend('wasm');
    for (const c of cases) onWasm.set(c.name, gradientsOf(c));
  });

  it('covers every gradient case', () => {
    expect(cases.length).toBeGreaterThan(50);
    expect(onWasm.size).toBe(cases.length);
  });

  for (const c of cases) {
    it(`${c.name}: wasm matches cpu within 1e-4 (relative)`, () => {
      const cpu = onCpu.get(c.name)!;
      const wasm = onWasm.get(c.name)!;
      expect(wasm.length).toBe(cpu.length);
      wasm.forEach((g, k) => {
        expect(g.length).toBe(cpu[k]!.length);
        expect(relativeDifference(g, cpu[k]!)).toBeLessThanOrEqual(1e-4);
      });
    });
  }
});
