import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '@s2cpnet/core/testing';
import { countFlops, kernelFlops } from './flops';
import { runBench, formatBenchTable } from './run';
import { benchWorkloads, type Workload } from './workloads';
import { shouldRelaunchForThreads } from '../relaunch';

beforeAll(async () => {
  await useBackend('wasm');
});

describe('FLOP counting from profiled kernels', () => {
  it('counts convolutions, depthwise convolutions, their gradients and matrix products', () => {
    expect(kernelFlops({ name: 'Conv2D', inputShapes: [[2, 8, 8, 3], [3, 3, 3, 16]], outputShapes: [[2, 8, 8, 16]] })).toBe(2 * 2 * 8 * 8 * 16 * 27);
    expect(kernelFlops({ name: 'DepthwiseConv2dNative', inputShapes: [[1, 4, 4, 8], [3, 3, 8, 1]], outputShapes: [[1, 2, 2, 8]] })).toBe(2 * 32 * 9);
    expect(kernelFlops({ name: 'Conv2DBackpropFilter', inputShapes: [[2, 8, 8, 3], [2, 8, 8, 16]], outputShapes: [[3, 3, 3, 16]] })).toBe(2 * 2 * 8 * 8 * 16 * 27);
    expect(kernelFlops({ name: 'Conv2DBackpropInput', inputShapes: [[2, 8, 8, 16], [3, 3, 3, 16]], outputShapes: [[2, 8, 8, 3]] })).toBe(2 * 2 * 8 * 8 * 16 * 27);
    // [4,5]x[5,6] and the same product with a transposed [5,4] operand
    expect(kernelFlops({ name: 'BatchMatMul', inputShapes: [[1, 4, 5], [1, 5, 6]], outputShapes: [[1, 4, 6]] })).toBe(2 * 4 * 5 * 6);
    expect(kernelFlops({ name: 'BatchMatMul', inputShapes: [[1, 5, 4], [1, 5, 6]], outputShapes: [[1, 4, 6]] })).toBe(2 * 4 * 5 * 6);
    expect(kernelFlops({ name: 'Add', inputShapes: [[4], [4]], outputShapes: [[4]] })).toBe(0);
  });

  it('matches the textbook count of a real profiled matMul + conv', async () => {
    const a = tf.randomNormal([32, 64]) as tf.Tensor2D;
    const b = tf.randomNormal([64, 16]) as tf.Tensor2D;
    const x = tf.randomNormal([1, 10, 10, 4]) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, 4, 8]) as tf.Tensor4D;
    const profile = await tf.profile(() => tf.dispose([tf.matMul(a, b), tf.conv2d(x, w, 1, 'same')]));
    expect(countFlops(profile.kernels as never)).toBe(2 * 32 * 64 * 16 + 2 * 100 * 8 * 36);
    tf.dispose([a, b, x, w]);
  });
});

describe('runBench', () => {
  it('times a workload, reports FLOPs, GFLOP/s, samples/s and leaks', async () => {
    let runs = 0;
    const leaky: tf.Tensor[] = [];
    const workload: Workload = {
      name: 'tiny.matmul',
      description: 'a 64x64 product that leaks one tensor per run',
      units: { count: 4, name: 'image' },
      captionSamples: 20,
      countFlops: true,
      async prepare() {
        const m = tf.randomNormal([64, 64]) as tf.Tensor2D;
        return {
          async run() {
            runs++;
            const y = tf.matMul(m, m);
            await y.data();
            leaky.push(y);
          },
          dispose: () => m.dispose(),
        };
      },
    };
    const report = await runBench([workload], { backend: 'wasm', threads: 1 }, { reps: 3, warmup: 2 });
    expect(runs).toBe(5);
    const [r] = report.results;
    expect(r!.gflop).toBeCloseTo((2 * 64 ** 3) / 1e9, 12);
    expect(r!.gflops).toBeCloseTo(r!.gflop! / (r!.ms / 1000), 9);
    expect(r!.msPerUnit).toBeCloseTo(r!.ms / 4, 9);
    expect(r!.samplesPerSecond).toBeCloseTo(20 / (r!.ms / 1000), 6);
    expect(r!.leakedTensors).toBe(3);
    expect(formatBenchTable(report)).toMatch(/tiny\.matmul/);
    tf.dispose(leaky);
  });

  it('lists the workloads the PyTorch twin runs, with unique names', () => {
    const names = benchWorkloads().map((w) => w.name);
    expect(new Set(names).size).toBe(names.length);
    for (const n of ['resnet50.forward.b1', 'resnet50.forward.b8', 'resnet50.train.b8', 'mobilenet.forward.b1', 'mobilenet.forward.b8', 'mobilenet.train.b8', 'cvff.train.b8', 'decoder.train.b8x5', 's2cpnet.train.b2x5', 'lite.train.b16x5', 'caption.beam3.paper', 'metrics.score.10k']) {
      expect(names).toContain(n);
    }
  });

  it('runs the real decoder workload without leaking', async () => {
    const decoder = benchWorkloads().find((w) => w.name === 'decoder.train.b8x5')!;
    const before = tf.memory().numTensors;
    const report = await runBench([decoder], { backend: 'wasm', threads: 1 }, { reps: 1, warmup: 1 });
    expect(report.results[0]!.leakedTensors).toBe(0);
    // 3 gated layers at d 512 on 40 x 20 tokens, forward + backward: tens of GFLOP
    expect(report.results[0]!.gflop).toBeGreaterThan(10);
    expect(tf.memory().numTensors).toBe(before);
  }, 240_000);
});

describe('restarting with wasm threads', () => {
  it('relaunches only TensorFlow.js commands that want more than one thread on a backend that may be wasm', () => {
    const env = { S2CPNET_THREADS: '2' };
    expect(shouldRelaunchForThreads(['train', '--preset', 'lite'], env)).toBe(true);
    expect(shouldRelaunchForThreads(['--threads', '1', 'train'], env)).toBe(false);
    expect(shouldRelaunchForThreads(['train'], { S2CPNET_THREADS: '1' })).toBe(false);
    expect(shouldRelaunchForThreads(['score', '--help'], env)).toBe(false);
    expect(shouldRelaunchForThreads(['score', 'a.json'], env)).toBe(false);
    expect(shouldRelaunchForThreads(['--backend', 'cpu', 'caption'], env)).toBe(false);
    expect(shouldRelaunchForThreads(['caption'], { ...env, S2CPNET_BACKEND: 'tensorflow' })).toBe(false);
    expect(shouldRelaunchForThreads(['bench'], { ...env, S2CPNET_RELAUNCHED: '1' })).toBe(false);
    expect(shouldRelaunchForThreads(['train', '--help'], env)).toBe(false);
  });
});
