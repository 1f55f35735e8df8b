/**
 * Low-level access to a backend's tensor memory and kernels, shared by the S²CPNet kernels.
 *
 * Core must not import a backend package at runtime, so the wasm backend is recognised by the two methods we use
 * (`makeOutput`, `typedArrayFromHeap`), and every other backend is driven through the public `KernelBackend`
 * interface (`write`, `readSync`, `disposeData`). Both the cpu and the wasm backend are covered this way.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DataType, KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';

/** The typed arrays our JS kernels read and write (float32, int32 and bool tensors). */
export type HostArray = Float32Array | Int32Array | Uint8Array;

/** The part of tfjs' `KernelBackend` our kernels call. */
export interface BackendMemory {
  write(values: HostArray, shape: number[], dtype: DataType): object;
  readSync(dataId: object): unknown;
  disposeData(dataId: object, force?: boolean): boolean;
}

/** The wasm backend's extra methods: outputs live on the wasm heap and can be viewed without a copy. */
interface HeapBackend extends BackendMemory {
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): HostArray;
}

function isHeapBackend(backend: BackendMemory): backend is HeapBackend {
  const candidate = backend as Partial<HeapBackend>;
  return typeof candidate.makeOutput === 'function' && typeof candidate.typedArrayFromHeap === 'function';
}

export function asBackendMemory(backend: unknown, kernelName: string): BackendMemory {
  const candidate = backend as Partial<BackendMemory> | null;
  if (
    candidate === null ||
    typeof candidate !== 'object' ||
    typeof candidate.write !== 'function' ||
    typeof candidate.readSync !== 'function' ||
    typeof candidate.disposeData !== 'function'
  ) {
    throw new TypeError(`${kernelName}: the backend does not expose write/readSync/disposeData`);
  }
  return candidate as BackendMemory;
}

export function sizeOfShape(shape: readonly number[]): number {
  let size = 1;
  for (const dim of shape) size *= dim;
  return size;
}

/**
 * Allocates an output tensor on `backend`, zero-filled unless `zeroFill` is false (only when every element will be
 * written).
 *
 * On wasm the returned `values` is a view on the heap. It stays valid only until the next allocation on that
 * backend (heap growth detaches it), so allocate every output first and take input views afterwards.
 */
export function allocateOutput(
  backend: BackendMemory,
  shape: number[],
  dtype: 'float32' | 'int32',
  zeroFill = true,
): { info: TensorInfo; values: Float32Array | Int32Array } {
  if (isHeapBackend(backend)) {
    const info = backend.makeOutput(shape, dtype);
    const values = backend.typedArrayFromHeap(info) as Float32Array | Int32Array;
    // The wasm heap is not zeroed on allocation.
    if (zeroFill) values.fill(0);
    return { info, values };
  }
  const size = sizeOfShape(shape);
  const values = dtype === 'int32' ? new Int32Array(size) : new Float32Array(size);
  // The cpu backend keeps a reference to `values`, so writing into it after this call fills the tensor.
  const dataId = backend.write(values, shape, dtype);
  return { info: { dataId, shape, dtype }, values };
}

/** Read-only view of a tensor's values (no copy on wasm or cpu). Do not write into it. */
export function readValues(backend: BackendMemory, info: TensorInfo): HostArray {
  if (isHeapBackend(backend)) return backend.typedArrayFromHeap(info);
  const values = backend.readSync(info.dataId);
  if (values instanceof Float32Array || values instanceof Int32Array || values instanceof Uint8Array) return values;
  throw new TypeError(`cannot read a ${info.dtype} tensor of shape [${info.shape.join(',')}] as a typed array`);
}

/** Resolves a kernel function of one backend by name; used to compose kernels from a backend's own kernels. */
export type KernelLookup = (kernelName: string) => KernelFunc;

/**
 * Runs a chain of kernels on one backend and frees every intermediate result.
 *
 * Each `run` result is owned by the sequence. `finish(result)` frees all of them except `result` (a result that shares
 * memory with an intermediate, such as a reshape, stays valid because the backend counts references).
 */
export class KernelSequence {
  private readonly owned: TensorInfo[] = [];

  constructor(
    /** The backend the kernels run on; JS steps of a composed kernel allocate and read through it. */
    readonly memory: BackendMemory,
    private readonly lookup: KernelLookup,
  ) {}

  run(kernelName: string, inputs: NamedTensorInfoMap | TensorInfo[], attrs: NamedAttrMap = {}): TensorInfo {
    const kernel = this.lookup(kernelName);
    const out = kernel({ inputs: inputs as NamedTensorInfoMap, backend: this.memory, attrs });
    if (Array.isArray(out)) {
      for (const t of out) this.owned.push(t);
      throw new Error(`KernelSequence: kernel ${kernelName} returned ${out.length} outputs, expected one`);
    }
    this.owned.push(out);
    return out;
  }

  /** Takes ownership of a tensor allocated outside `run` (by a JS step), so `finish` frees it. */
  own(info: TensorInfo): TensorInfo {
    this.owned.push(info);
    return info;
  }

  reshape(x: TensorInfo, shape: number[]): TensorInfo {
    return this.run('Reshape', { x }, { shape });
  }

  transpose(x: TensorInfo, perm: number[]): TensorInfo {
    return this.run('Transpose', { x }, { perm });
  }

  /** Frees every intermediate except `result` and returns it. */
  finish(result: TensorInfo): TensorInfo {
    for (const t of this.owned) if (t !== result) this.memory.disposeData(t.dataId);
    this.owned.length = 0;
    return result;
  }

  /** Frees every intermediate (after an error). */
  abandon(): void {
    for (const t of this.owned) this.memory.disposeData(t.dataId);
    this.owned.length = 0;
  }
}

/** Runs `body` with a fresh sequence; frees intermediates on success and on error. */
export function composeKernels(
  backend: unknown,
  lookup: KernelLookup,
  kernelName: string,
  body: (seq: KernelSequence) => TensorInfo,
): TensorInfo {
  const seq = new KernelSequence(asBackendMemory(backend, kernelName), lookup);
  try {
    return seq.finish(body(seq));
  } catch (error) {
    seq.abandon();
    throw error;
  }
}

/** Builds a lookup that resolves names through `resolve` once and fails with a clear message if one is missing. */
export function kernelLookupFor(
  backendName: string,
  resolve: (kernelName: string) => KernelFunc | undefined,
  names: readonly string[],
): KernelLookup | { missing: string[] } {
  const table = new Map<string, KernelFunc>();
  const missing: string[] = [];
  for (const name of names) {
    const fn = resolve(name);
    if (fn === undefined) missing.push(name);
    else table.set(name, fn);
  }
  if (missing.length > 0) return { missing };
  return (kernelName: string) => {
    const fn = table.get(kernelName);
    if (fn === undefined) throw new Error(`kernel ${kernelName} was not resolved for backend ${backendName}`);
    return fn;
  };
}

/** Reads an attribute that tfjs passes as a number or a pair. */
export function pairOf(value: unknown, name: string): [number, number] {
  if (typeof value === 'number') return [value, value];
  if (Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'number')) {
    return [value[0] as number, value[1] as number];
  }
  throw new TypeError(`attribute ${name}: expected a number or [number, number], found ${JSON.stringify(value)}`);
}

export function assertChannelsLast(dataFormat: unknown, kernelName: string): void {
  if (dataFormat !== undefined && dataFormat !== 'NHWC' && dataFormat !== 'channelsLast') {
    throw new Error(`${kernelName}: only dataFormat 'NHWC' is supported by the S²CPNet kernel, found ${String(dataFormat)}`);
  }
}

export type PadAttr = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];
export type RoundingAttr = 'floor' | 'round' | 'ceil' | undefined;

export const backendUtil = tf.backend_util;
