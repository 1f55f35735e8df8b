/**
 * Speed of the S²CPNet kernels against stock tfjs 4.22 (the numbers in KERNELS.md).
 *
 *   npx tsx src/kernels/kernels.bench.ts [--reps 5] [--skip-cpu-embedding]
 *
 * Prints, per case, the minimum process CPU time and the median wall time over the repetitions (after one warm-up).
 * CPU time is the steadier number on a shared machine; both are single-threaded. Not part of the test suite.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { registerS2CPNetKernels, restoreStockKernels } from './index';

const args = process.argv.slice(2);
const repsIndex = args.indexOf('--reps');
const reps = repsIndex >= 0 ? Number(args[repsIndex + 1]) : 5;
const skipCpuEmbedding = args.includes('--skip-cpu-embedding');

tf.env().set('PROD', true);

interface Timing {
  cpuMs: number;
  wallMs: number;
}

function measure(run: () => tf.Tensor | tf.Tensor[], repetitions = reps): Timing | string {
  const wall: number[] = [];
  const cpu: number[] = [];
  try {
    for (let r = 0; r <= repetitions; r++) {
      const cpuStart = process.cpuUsage();
      const start = performance.now();
      const out = run();
      for (const t of Array.isArray(out) ? out : [out]) t.dataSync();
      tf.dispose(out);
      const wallMs = performance.now() - start;
      const used = process.cpuUsage(cpuStart);
      if (r > 0 || repetitions === 0) {
        wall.push(wallMs);
        cpu.push((used.user + used.system) / 1000);
      }
    }
  } catch (error) {
    return `fails: ${(error as Error).message.split('\n')[0]!.slice(0, 70)}`;
  }
  wall.sort((a, b) => a - b);
  return { cpuMs: Math.min(...cpu), wallMs: wall[Math.floor(wall.length / 2)]! };
}

function show(label: string, timing: Timing | string): void {
  const text = typeof timing === 'string' ? timing : `${timing.cpuMs.toFixed(1).padStart(9)} ms cpu  ${timing.wallMs.toFixed(1).padStart(9)} ms wall`;
  console.log(`${tf.getBackend().padEnd(5)} ${label.padEnd(58)} ${text}`);
}

/** Times `run` with stock tfjs kernels and gradients, then with ours. */
function stockAndOurs(label: string, run: () => tf.Tensor | tf.Tensor[], stockReps = reps): void {
  restoreStockKernels();
  show(`${label} [stock]`, measure(run, stockReps));
  registerS2CPNetKernels();
  show(`${label} [S2CPNet]`, measure(run));
}

const kernel = (name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown>) => () =>
  tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap) as tf.Tensor;

async function convolution(backend: 'wasm' | 'cpu', batch: number, size: number): Promise<void> {
  await tf.setBackend(backend);
  for (const [k, stride] of [
    [3, 1],
    [3, 2],
    [1, 2],
  ] as const) {
    const x = tf.randomNormal([batch, size, size, 64]) as tf.Tensor4D;
    const w = tf.randomNormal([k, k, 64, 64], 0, 0.1) as tf.Tensor4D;
    const y = tf.conv2d(x, w, stride, 'same');
    const dy = tf.randomNormal(y.shape) as tf.Tensor4D;
    const tag = `conv ${k}x${k} s${stride} 64->64 on ${batch}x${size}x${size}`;
    show(`${tag} forward`, measure(() => tf.conv2d(x, w, stride, 'same')));
    const stockReps = backend === 'cpu' ? 1 : reps;
    stockAndOurs(`${tag} dX`, kernel('Conv2DBackpropInput', { dy, filter: w }, { strides: stride, pad: 'same', dataFormat: 'NHWC', inputShape: x.shape }), stockReps);
    stockAndOurs(`${tag} dW`, kernel('Conv2DBackpropFilter', { x, dy }, { strides: stride, pad: 'same', dataFormat: 'NHWC', filterShape: w.shape }), stockReps);
    if (k === 3 && stride === 1 && backend === 'wasm') {
      // What a Conv2D gradient override (tf.registerGradient) would run instead, as tf ops.
      show(`${tag} dX as override (conv with rotated filter)`, measure(() =>
        tf.tidy(() => tf.conv2d(dy, tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D, 1, 'same')),
      ));
      show(`${tag} dW as override (conv trick, tf ops)`, measure(() =>
        tf.tidy(() => {
          const xT = tf.transpose(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), [3, 1, 2, 0]) as tf.Tensor4D;
          const dyT = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D;
          return tf.transpose(tf.conv2d(xT, dyT, 1, 'valid'), [1, 2, 0, 3]);
        }),
      ));
      const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'), dy)));
      stockAndOurs(`${tag} tf.grads (dX and dW)`, () => grads([x, w]));
    }
    tf.dispose([x, w, y, dy]);
  }
}

async function embedding(backend: 'wasm' | 'cpu'): Promise<void> {
  await tf.setBackend(backend);
  const table = tf.randomNormal([5000, 512]);
  const ids = tf.tensor2d(Array.from({ length: 4 * 20 }, (_, i) => (i * 7919) % 5000), [4, 20], 'int32');
  const dy = tf.randomNormal([4, 20, 512]);
  const grad = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, ids), dy)));
  stockAndOurs('embedding gradient 5000x512, ids [4,20]', () => grad(table), backend === 'cpu' ? 0 : reps);
  tf.dispose([table, ids, dy]);
}

async function matMul(): Promise<void> {
  await tf.setBackend('wasm');
  const a = tf.randomNormal([640, 512]) as tf.Tensor2D;
  const b = tf.randomNormal([512, 2048]) as tf.Tensor2D;
  const dy = tf.randomNormal([640, 2048]) as tf.Tensor2D;
  show('matMul [640x512]x[512x2048] forward', measure(() => tf.matMul(a, b)));
  const grads = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(tf.matMul(p as tf.Tensor2D, q as tf.Tensor2D), dy)));
  stockAndOurs('matMul [640x512]x[512x2048] gradient (da and db)', () => grads([a, b]));
  stockAndOurs('matMul transposeB [640x2048]x[512x2048]ᵀ', () => tf.matMul(dy, b, false, true));
  stockAndOurs('matMul transposeA [640x512]ᵀx[640x2048]', () => tf.matMul(a, dy, true, false));
  const fused = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(tf.fused.matMul({ a: p as tf.Tensor2D, b: q as tf.Tensor2D }), dy)));
  stockAndOurs('fused matMul (tfjs-layers Dense) gradient', () => fused([a, b]));
  tf.dispose([a, b, dy]);
}

async function depthwise(backend: 'wasm' | 'cpu'): Promise<void> {
  await tf.setBackend(backend);
  for (const [batch, size, channels, stride] of [
    [8, 112, 64, 2],
    [8, 56, 128, 1],
    [8, 14, 512, 1],
  ] as const) {
    const x = tf.randomNormal([batch, size, size, channels]) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, channels, 1]) as tf.Tensor4D;
    const y = tf.depthwiseConv2d(x, w, stride, 'same');
    const dy = tf.randomNormal(y.shape);
    const tag = `depthwise 3x3 s${stride} on ${batch}x${size}x${size}x${channels}`;
    show(`${tag} forward`, measure(() => tf.depthwiseConv2d(x, w, stride, 'same')));
    const attrs = { strides: stride, pad: 'same', dilations: 1 };
    const dX = kernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: w }, { ...attrs, inputShape: x.shape });
    const dW = kernel('DepthwiseConv2dNativeBackpropFilter', { x, dy }, { ...attrs, filterShape: w.shape });
    if (backend === 'wasm') {
      stockAndOurs(`${tag} dX`, dX);
      stockAndOurs(`${tag} dW`, dW);
    } else {
      // S²CPNet keeps cpu's own depthwise input gradient and replaces the (very slow) filter gradient.
      show(`${tag} dX [stock]`, measure(dX, 1));
      stockAndOurs(`${tag} dW`, dW, 0);
    }
    tf.dispose([x, w, y, dy]);
  }
}

async function pooling(backend: 'wasm' | 'cpu'): Promise<void> {
  await tf.setBackend(backend);
  const x = tf.randomNormal([8, 112, 112, 64]) as tf.Tensor4D;
  const y = tf.maxPool(x, 3, 2, 'same');
  const dy = tf.randomNormal(y.shape);
  stockAndOurs('MaxPoolGrad 3x3 s2 on 8x112x112x64', kernel('MaxPoolGrad', { dy, input: x, output: y }, { filterSize: 3, strides: 2, pad: 'same' }));
  const small = tf.randomNormal([8, 14, 14, 512]) as tf.Tensor4D;
  const dyUp = tf.randomNormal([8, 28, 28, 512]);
  const resize = { alignCorners: false, halfPixelCenters: false };
  stockAndOurs('ResizeBilinearGrad 14->28 on 8x14x14x512', kernel('ResizeBilinearGrad', { dy: dyUp, images: small }, resize));
  stockAndOurs('ResizeNearestNeighborGrad 14->28 on 8x14x14x512', kernel('ResizeNearestNeighborGrad', { dy: dyUp, images: small }, resize));
  tf.dispose([x, y, dy, small, dyUp]);
}

await tf.setBackend('wasm');
await tf.ready();
registerS2CPNetKernels();
await convolution('wasm', 8, 56);
await matMul();
await embedding('wasm');
await depthwise('wasm');
await pooling('wasm');
await convolution('cpu', 2, 28);
if (!skipCpuEmbedding) await embedding('cpu');
await depthwise('cpu');
