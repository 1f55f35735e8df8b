import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { CheckpointError } from '@s2cpnet/core';

/** One tensor in a tensor file: name, shape and float32 values. */
export interface StoredTensor {
  name: string;
  shape: number[];
  values: Float32Array;
}

interface ManifestEntry {
  name: string;
  shape: number[];
  /** float32: raw values. uint8: `value = min[c] + q * scale[c]`, c the index along the last axis. */
  dtype: 'float32' | 'uint8';
  /** Byte offset in the .bin file. */
  offset: number;
  min?: number[];
  scale?: number[];
}

export interface WriteTensorFileOptions {
  /**
   * Store tensors of at least `minQuantizedSize` values as 8-bit integers with a min and a step per index of the
   * last axis (per output channel for dense and conv kernels): a quarter of the size, for inference releases.
   */
  quantize?: 'uint8';
  /** Default 1024: biases, norms and scalars stay float32. */
  minQuantizedSize?: number;
}

/** Per-last-axis affine uint8 quantisation: q = round((v - min[c]) / scale[c]). */
function quantizeUint8(values: Float32Array, lastDim: number): { q: Uint8Array; min: number[]; scale: number[] } {
  const min = new Array<number>(lastDim).fill(Infinity);
  const max = new Array<number>(lastDim).fill(-Infinity);
  for (let i = 0; i < values.length; i++) {
    const c = i % lastDim;
    const v = values[i]!;
    if (v < min[c]!) min[c] = v;
    if (v > max[c]!) max[c] = v;
  }
  // Math.fround: the reader computes in float32-exact JSON numbers, so writer and reader agree bit for bit.
  const scale = min.map((lo, c) => Math.fround(max[c]! > lo ? (max[c]! - lo) / 255 : 1));
  const mins = min.map((lo) => Math.fround(lo));
  const q = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const c = i % lastDim;
    q[i] = Math.max(0, Math.min(255, Math.round((values[i]! - mins[c]!) / scale[c]!)));
  }
  return { q, min: mins, scale };
}

interface TensorManifest {
  format: 's2cpnet-tensors';
  version: 1;
  byteLength: number;
  tensors: ManifestEntry[];
}

/**
 * Writes tensors as `<base>.json` (names, shapes, offsets) and `<base>.bin` (raw little-endian float32).
 * Loading such a pair never executes code: it is JSON and raw numbers only.
 */
export async function writeTensorFile(dir: string, base: string, tensors: readonly StoredTensor[], options: WriteTensorFileOptions = {}): Promise<void> {
  const minQuantized = options.minQuantizedSize ?? 1024;
  const quantized = (t: StoredTensor) => options.quantize === 'uint8' && t.values.length >= minQuantized && t.shape.length >= 1;
  const total = tensors.reduce((n, t) => n + (quantized(t) ? t.values.length : t.values.length * 4), 0);
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  const entries: ManifestEntry[] = [];
  let offset = 0;
  for (const t of tensors) {
    const expected = t.shape.reduce((a, b) => a * b, 1);
    if (expected !== t.values.length) throw new CheckpointError(`tensor ${t.name}: shape [${t.shape}] needs ${expected} values, has ${t.values.length}`);
    if (quantized(t)) {
      const { q, min, scale } = quantizeUint8(t.values, t.shape[t.shape.length - 1]!);
      entries.push({ name: t.name, shape: t.shape, dtype: 'uint8', offset, min, scale });
      bytes.set(q, offset);
      offset += q.length;
      continue;
    }
    entries.push({ name: t.name, shape: t.shape, dtype: 'float32', offset });
    for (let i = 0; i < t.values.length; i++) view.setFloat32(offset + i * 4, t.values[i]!, true);
    offset += t.values.length * 4;
  }
  const manifest: TensorManifest = { format: 's2cpnet-tensors', version: 1, byteLength: bytes.length, tensors: entries };
  await fsp.writeFile(path.join(dir, `${base}.bin`), bytes);
  await fsp.writeFile(path.join(dir, `${base}.json`), `${JSON.stringify(manifest, null, 1)}\n`);
}

/** Reads a pair written by `writeTensorFile`, checking the manifest against the binary file. */
export async function readTensorFile(dir: string, base: string): Promise<Map<string, StoredTensor>> {
  const manifestFile = path.join(dir, `${base}.json`);
  const binFile = path.join(dir, `${base}.bin`);
  let manifest: TensorManifest;
  try {
    manifest = JSON.parse(await fsp.readFile(manifestFile, 'utf8')) as TensorManifest;
  } catch (error) {
    throw new CheckpointError(`${manifestFile}: cannot read tensor manifest (${(error as Error).message})`, { cause: error });
  }
  if (manifest?.format !== 's2cpnet-tensors' || manifest.version !== 1 || !Array.isArray(manifest.tensors)) {
    throw new CheckpointError(`${manifestFile}: not an s2cpnet tensor manifest (expected format "s2cpnet-tensors" version 1)`);
  }
  let bytes: Buffer;
  try {
    bytes = await fsp.readFile(binFile);
  } catch (error) {
    throw new CheckpointError(`${binFile}: cannot read tensor data (${(error as Error).message})`, { cause: error });
  }
  if (bytes.length !== manifest.byteLength) {
    throw new CheckpointError(`${binFile}: expected ${manifest.byteLength} bytes (from ${base}.json), found ${bytes.length}: truncated or mismatched`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Map<string, StoredTensor>();
  manifest.tensors.forEach((entry, i) => {
    const where = `${manifestFile} at $.tensors[${i}]`;
    if (typeof entry.name !== 'string' || !Array.isArray(entry.shape) || (entry.dtype !== 'float32' && entry.dtype !== 'uint8') || !Number.isInteger(entry.offset)) {
      throw new CheckpointError(`${where}: expected {name, shape, dtype: "float32" | "uint8", offset}, found dtype ${JSON.stringify(entry.dtype)}`);
    }
    const size = entry.shape.reduce((a, b) => a * b, 1);
    const width = entry.dtype === 'uint8' ? 1 : 4;
    if (entry.offset < 0 || entry.offset + size * width > bytes.length) throw new CheckpointError(`${where}: tensor ${entry.name} lies outside ${base}.bin`);
    const values = new Float32Array(size);
    if (entry.dtype === 'uint8') {
      const lastDim = entry.shape[entry.shape.length - 1] ?? 0;
      const { min, scale } = entry;
      if (!Array.isArray(min) || !Array.isArray(scale) || min.length !== lastDim || scale.length !== lastDim) {
        throw new CheckpointError(`${where}: a uint8 tensor needs "min" and "scale" arrays of length ${lastDim} (its last dimension)`);
      }
      for (let k = 0; k < size; k++) {
        const c = k % lastDim;
        values[k] = min[c]! + bytes[entry.offset + k]! * scale[c]!;
      }
    } else {
      for (let k = 0; k < size; k++) values[k] = view.getFloat32(entry.offset + k * 4, true);
    }
    out.set(entry.name, { name: entry.name, shape: entry.shape, values });
  });
  return out;
}
