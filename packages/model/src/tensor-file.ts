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
  /**
   * float32: raw values. uint8: `value = min[k] + q * scale[k]` with one (min, scale) pair per group k of `groupSize`
   * consecutive rows of one channel (index along the last axis); the pairs are float32 at `paramsOffset`, all mins
   * then all scales, ordered group-major: k = floor(row / groupSize) * channels + channel.
   */
  dtype: 'float32' | 'uint8';
  /** Byte offset in the .bin file. */
  offset: number;
  groupSize?: number;
  paramsOffset?: number;
}

interface TensorManifest {
  format: 's2cpnet-tensors';
  version: 1;
  byteLength: number;
  tensors: ManifestEntry[];
}

export interface WriteTensorFileOptions {
  /**
   * Store tensors of at least `minQuantizedSize` values as 8-bit integers with a min and a step per group of
   * `groupSize` rows of each output channel (last axis): about 1.25 bytes per value at group 32, for inference releases.
   */
  quantize?: 'uint8';
  /** Rows per quantisation group (default 32). Smaller groups are more accurate and larger. */
  groupSize?: number;
  /** Default 1024: biases, norms and scalars stay float32. */
  minQuantizedSize?: number;
}

/** Group-wise affine uint8 quantisation (see ManifestEntry): q = round((v - min[k]) / scale[k]). */
function quantizeUint8(values: Float32Array, channels: number, groupSize: number): { q: Uint8Array; min: Float32Array; scale: Float32Array } {
  const rows = values.length / channels;
  const groups = Math.ceil(rows / groupSize) * channels;
  const min = new Float32Array(groups).fill(Infinity);
  const max = new Float32Array(groups).fill(-Infinity);
  const groupOf = (i: number) => Math.floor(Math.floor(i / channels) / groupSize) * channels + (i % channels);
  for (let i = 0; i < values.length; i++) {
    const k = groupOf(i);
    const v = values[i]!;
    if (v < min[k]!) min[k] = v;
    if (v > max[k]!) max[k] = v;
  }
  // Float32Array storage: the reader uses exactly these float32 values, so writer and reader agree bit for bit.
  const scale = new Float32Array(groups);
  for (let k = 0; k < groups; k++) scale[k] = max[k]! > min[k]! ? (max[k]! - min[k]!) / 255 : 1;
  const q = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const k = groupOf(i);
    q[i] = Math.max(0, Math.min(255, Math.round((values[i]! - min[k]!) / scale[k]!)));
  }
  return { q, min, scale };
}

function littleEndianFloat32(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true);
  return out;
}

/**
 * Writes tensors as `<base>.json` (names, shapes, offsets) and `<base>.bin` (raw little-endian float32).
 * Loading such a pair never executes code: it is JSON and raw numbers only.
 */
export async function writeTensorFile(dir: string, base: string, tensors: readonly StoredTensor[], options: WriteTensorFileOptions = {}): Promise<void> {
  const minQuantized = options.minQuantizedSize ?? 1024;
  const groupSize = options.groupSize ?? 32;
  const quantized = (t: StoredTensor) => options.quantize === 'uint8' && t.values.length >= minQuantized && t.shape.length >= 1;
  const chunks: Uint8Array[] = [];
  const entries: ManifestEntry[] = [];
  let offset = 0;
  const push = (chunk: Uint8Array) => {
    chunks.push(chunk);
    offset += chunk.length;
  };
  for (const t of tensors) {
    const expected = t.shape.reduce((a, b) => a * b, 1);
    if (expected !== t.values.length) throw new CheckpointError(`tensor ${t.name}: shape [${t.shape}] needs ${expected} values, has ${t.values.length}`);
    if (quantized(t)) {
      const { q, min, scale } = quantizeUint8(t.values, t.shape[t.shape.length - 1]!, groupSize);
      const entry: ManifestEntry = { name: t.name, shape: t.shape, dtype: 'uint8', offset, groupSize, paramsOffset: 0 };
      push(q);
      // float32 parameters start on a 4-byte boundary
      if (offset % 4) push(new Uint8Array(4 - (offset % 4)));
      entry.paramsOffset = offset;
      push(littleEndianFloat32(min));
      push(littleEndianFloat32(scale));
      entries.push(entry);
      continue;
    }
    entries.push({ name: t.name, shape: t.shape, dtype: 'float32', offset });
    push(littleEndianFloat32(t.values));
  }
  const bytes = new Uint8Array(offset);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
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
      const channels = entry.shape[entry.shape.length - 1] ?? 0;
      const { groupSize, paramsOffset } = entry;
      if (!Number.isInteger(groupSize) || groupSize! < 1 || !Number.isInteger(paramsOffset) || channels < 1) {
        throw new CheckpointError(`${where}: a uint8 tensor needs a positive integer "groupSize" and a "paramsOffset"`);
      }
      const groups = Math.ceil(size / channels / groupSize!) * channels;
      if (paramsOffset! < 0 || paramsOffset! + groups * 8 > bytes.length) throw new CheckpointError(`${where}: the quantisation parameters of ${entry.name} lie outside ${base}.bin`);
      for (let k = 0; k < size; k++) {
        const group = Math.floor(Math.floor(k / channels) / groupSize!) * channels + (k % channels);
        const min = view.getFloat32(paramsOffset! + group * 4, true);
        const scale = view.getFloat32(paramsOffset! + (groups + group) * 4, true);
        values[k] = min + bytes[entry.offset + k]! * scale;
      }
    } else {
      for (let k = 0; k < size; k++) values[k] = view.getFloat32(entry.offset + k * 4, true);
    }
    out.set(entry.name, { name: entry.name, shape: entry.shape, values });
  });
  return out;
}
