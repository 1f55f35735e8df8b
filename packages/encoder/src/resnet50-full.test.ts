import * as tf from '@tensorflow/tfjs-core';
import { expectClose, expectNoLeaks, useBackend } from '@s2cpnet/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { ResNet50 } from './resnet50';
import { seededTensor } from './testing/helpers';

/** Median wall time of `runs` calls (after one warm-up), including reading the result back. */
async function medianMs(f: () => tf.Tensor, runs: number): Promise<number> {
  const warmUp = f();
  await warmUp.data();
  warmUp.dispose();
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const start = performance.now();
    const y = f();
    await y.data();
    times.push(performance.now() - start);
    y.dispose();
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
}

// Full-size ResNet50 runs on wasm only: on the pure-JS cpu backend one forward pass takes about 10 s.
describe('full-size ResNet50 on wasm, batch 1, 224x224', () => {
  beforeAll(() => useBackend('wasm'));

  it("gives [1,7,7,2048] on the native grid and the paper's [1,14,14,2048] grid by nearest upsampling", async () => {
    const native = new ResNet50({ grid: 'native', freeze: 'all', seed: 1 });
    const paper = new ResNet50({ grid: 14, freeze: 'all', seed: 1 });
    expect(paper.gridSize).toBe(14);
    const x = seededTensor([1, 224, 224, 3], 2) as tf.Tensor4D;
    const n = native.encode(x);
    const p = paper.encode(x);
    expect(n.shape).toEqual([1, 7, 7, 2048]);
    expect(p.shape).toEqual([1, 14, 14, 2048]);
    // Each 2x2 block of the 14x14 grid repeats one native cell.
    const corner = tf.tidy(() => tf.slice(p, [0, 0, 0, 0], [1, 2, 2, 2048]));
    expectClose(corner, tf.tidy(() => tf.tile(tf.slice(n, [0, 0, 0, 0], [1, 1, 1, 2048]), [1, 2, 2, 1])), 0);
    expect(tf.tidy(() => tf.min(n).dataSync()[0])).toBeGreaterThanOrEqual(0); // after the final ReLU
    tf.dispose([n, p, corner]);

    // No leak once the frozen encoder has cached its folded weights.
    expectNoLeaks(() => paper.encode(x).dispose());
    const gridMs = await medianMs(() => paper.encode(x), 3);
    const nativeMs = await medianMs(() => native.encode(x), 3);
    console.log(`ResNet50 forward at 224 on wasm, batch 1: ${gridMs.toFixed(0)} ms with the 14x14 grid, ${nativeMs.toFixed(0)} ms native 7x7 (frozen, folded BN cached)`);
    x.dispose();
    native.dispose();
    paper.dispose();
  });
});
