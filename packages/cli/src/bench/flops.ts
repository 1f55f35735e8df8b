/**
 * FLOP counts from the kernels a workload actually executed (`tf.profile`): 2 x the multiply-adds of every
 * convolution and matrix product, forward and backward kernels alike. Element-wise work (activations, norms,
 * softmax, the optimiser) is not counted, so GFLOP/s here is "useful dense-math throughput", the convention the
 * PyTorch comparison uses too.
 */

export interface ProfiledKernel {
  name: string;
  inputShapes: Array<readonly number[] | null | undefined>;
  outputShapes: Array<readonly number[] | null | undefined>;
}

function product(shape: readonly number[]): number {
  let p = 1;
  for (const d of shape) p *= d;
  return p;
}

/** FLOPs of one kernel call; 0 for kernels that are not convolutions or matrix products. */
export function kernelFlops(kernel: ProfiledKernel): number {
  const input = (i: number) => kernel.inputShapes[i] ?? [];
  const output = kernel.outputShapes[0] ?? [];
  switch (kernel.name) {
    case 'Conv2D':
    case 'FusedConv2D': {
      const [kh = 0, kw = 0, ci = 0] = input(1);
      return 2 * product(output) * kh * kw * ci;
    }
    case 'DepthwiseConv2dNative':
    case 'FusedDepthwiseConv2D': {
      const [kh = 0, kw = 0] = input(1);
      return 2 * product(output) * kh * kw;
    }
    case 'Conv2DBackpropInput': {
      // inputs dy [b,oh,ow,co], filter [kh,kw,ci,co]
      const [kh = 0, kw = 0, ci = 0] = input(1);
      return 2 * product(input(0)) * kh * kw * ci;
    }
    case 'Conv2DBackpropFilter': {
      // inputs x, dy [b,oh,ow,co]; output filter [kh,kw,ci,co]
      const [kh = 0, kw = 0, ci = 0] = output;
      return 2 * product(input(1)) * kh * kw * ci;
    }
    case 'DepthwiseConv2dNativeBackpropInput': {
      const [kh = 0, kw = 0] = input(1);
      return 2 * product(input(0)) * kh * kw;
    }
    case 'DepthwiseConv2dNativeBackpropFilter': {
      const [kh = 0, kw = 0] = output;
      return 2 * product(input(1)) * kh * kw;
    }
    case 'BatchMatMul':
    case '_FusedMatMul': {
      // out [..., M, N]; a is [..., M, K] or [..., K, M]: either way K = rows * cols / M.
      const a = input(0);
      const m = output[output.length - 2] ?? 0;
      if (a.length < 2 || m === 0) return 0;
      const k = (a[a.length - 2]! * a[a.length - 1]!) / m;
      return 2 * product(output) * k;
    }
    default:
      return 0;
  }
}

export function countFlops(kernels: readonly ProfiledKernel[]): number {
  let total = 0;
  for (const k of kernels) total += kernelFlops(k);
  return total;
}
