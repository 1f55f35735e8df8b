import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { constants as bufferConstants } from 'node:buffer';
import { CheckpointError } from '@s2cpnet/core';
import { brief, readJsonFile, readRegularFile, resolveInside, statRegularFile } from './safe-read';

/** One tensor in a tensor file: name, shape and float32 values. */
export interface StoredTensor {
  name: string;
  shape: number[];
  values: Float32Array;
}

/** One tensor of a `weights.json` manifest: where its bytes lie in the `.bin` file and how they are stored. */
export interface ManifestEntry {
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

/** Largest tensor data file that is read (Node's largest buffer). */
export const MAX_TENSOR_BYTES = bufferConstants.MAX_LENGTH;
/** Largest tensor rank accepted in a manifest. */
const MAX_RANK = 8;

export interface ReadTensorFileOptions {
  /** The JSON entry that named `base` (e.g. `$.files.weights`), for messages; files must lie inside `dir`. */
  jsonPath?: string;
  /** The file that named `base` (e.g. the checkpoint.json), for messages. Default: `dir`. */
  source?: string;
}

/** A checked manifest of a tensor file pair, before its data is read (see `readTensorManifest`). */
export interface TensorManifestInfo {
  manifestFile: string;
  binFile: string;
  base: string;
  byteLength: number;
  /** Values in all tensors together: the parameter count of a weights file. */
  totalValues: number;
  tensors: readonly ManifestEntry[];
  jsonPath?: string;
}

/**
 * Reads and checks the manifest (`<base>.json`) of a tensor file pair and checks that `<base>.bin` is a regular file
 * of exactly the size it gives, without reading the data: every shape is a list of non-negative integers, every
 * tensor lies inside the data, and the tensors add up to the data's size (so reading allocates at most about four
 * times the file's size). Both files must lie inside `dir` after symbolic links.
 */
export async function readTensorManifest(dir: string, base: string, options: ReadTensorFileOptions = {}): Promise<TensorManifestInfo> {
  const jsonPath = options.jsonPath ?? '$';
  const source = options.source ?? dir;
  if (typeof base !== 'string' || base === '') throw new CheckpointError(`${source}: ${jsonPath}: expected the base name of a tensor file pair, found ${brief(base)}`);
  const manifestFile = resolveInside(dir, `${base}.json`, jsonPath, source);
  const binFile = resolveInside(dir, `${base}.bin`, jsonPath, source);
  const limits = { what: 'the tensor manifest', jsonPath: options.jsonPath };
  const manifest = (await readJsonFile(manifestFile, limits)) as Partial<TensorManifest> | null;
  if (typeof manifest !== 'object' || manifest === null || manifest.format !== 's2cpnet-tensors' || manifest.version !== 1 || !Array.isArray(manifest.tensors)) {
    throw new CheckpointError(`${manifestFile}: not an s2cpnet tensor manifest (expected format "s2cpnet-tensors" version 1)`);
  }
  const byteLength = manifest.byteLength;
  if (typeof byteLength !== 'number' || !Number.isSafeInteger(byteLength) || byteLength < 0 || byteLength > MAX_TENSOR_BYTES) {
    throw new CheckpointError(`${manifestFile}: $.byteLength: expected an integer from 0 to ${MAX_TENSOR_BYTES}, found ${brief(byteLength)}`);
  }
  const names = new Set<string>();
  let declared = 0;
  let totalValues = 0;
  let quantized = 0;
  manifest.tensors.forEach((entry: ManifestEntry, i) => {
    const where = `${manifestFile} at $.tensors[${i}]`;
    if (typeof entry !== 'object' || entry === null || typeof entry.name !== 'string' || entry.name === '' || !Array.isArray(entry.shape) || (entry.dtype !== 'float32' && entry.dtype !== 'uint8') || !Number.isSafeInteger(entry.offset)) {
      throw new CheckpointError(`${where}: expected {name, shape, dtype: "float32" | "uint8", offset}, found dtype ${brief(entry?.dtype)}`);
    }
    if (names.has(entry.name)) throw new CheckpointError(`${where}: tensor ${brief(entry.name)} is listed twice`);
    names.add(entry.name);
    if (entry.shape.length > MAX_RANK || !entry.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new CheckpointError(`${where}: $.shape: expected at most ${MAX_RANK} non-negative integers`);
    }
    const width = entry.dtype === 'uint8' ? 1 : 4;
    let size = 1;
    for (const d of entry.shape) {
      size *= d;
      if (size * width > byteLength) throw new CheckpointError(`${where}: tensor ${brief(entry.name)} of shape [${entry.shape.join(', ')}] lies outside ${base}.bin (${byteLength} bytes)`);
    }
    if (entry.offset < 0 || entry.offset + size * width > byteLength) throw new CheckpointError(`${where}: tensor ${brief(entry.name)} lies outside ${base}.bin`);
    declared += size * width;
    totalValues += size;
    if (entry.dtype === 'uint8') {
      const channels = entry.shape[entry.shape.length - 1] ?? 0;
      const { groupSize, paramsOffset } = entry;
      if (!Number.isSafeInteger(groupSize) || groupSize! < 1 || !Number.isSafeInteger(paramsOffset) || channels < 1) {
        throw new CheckpointError(`${where}: a uint8 tensor needs a positive integer "groupSize" and a "paramsOffset"`);
      }
      const groups = Math.ceil(size / channels / groupSize!) * channels;
      if (paramsOffset! < 0 || paramsOffset! + groups * 8 > byteLength) throw new CheckpointError(`${where}: the quantisation parameters of ${brief(entry.name)} lie outside ${base}.bin`);
      declared += groups * 8;
      quantized += 1;
    }
  });
  // The writer pads at most 3 bytes before the quantisation parameters of each uint8 tensor.
  if (declared > byteLength || byteLength > declared + 3 * quantized) {
    throw new CheckpointError(`${manifestFile}: the tensors it lists take ${declared} bytes, but $.byteLength is ${byteLength}: overlapping tensors or unlisted data`);
  }
  statRegularFile(binFile, { what: 'the tensor data', jsonPath: options.jsonPath, exactBytes: byteLength, maxBytes: MAX_TENSOR_BYTES });
  return { manifestFile, binFile, base, byteLength, totalValues, tensors: manifest.tensors, jsonPath: options.jsonPath };
}

/** Reads exactly the bytes a checked manifest announces from its `.bin` file and decodes every tensor. */
export async function readTensorData(info: TensorManifestInfo): Promise<Map<string, StoredTensor>> {
  const { binFile, byteLength } = info;
  const bytes = await readRegularFile(binFile, { what: 'the tensor data', jsonPath: info.jsonPath, exactBytes: byteLength, maxBytes: MAX_TENSOR_BYTES });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Map<string, StoredTensor>();
  for (const entry of info.tensors) {
    const size = entry.shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    if (entry.dtype === 'uint8') {
      const channels = entry.shape[entry.shape.length - 1]!;
      const groupSize = entry.groupSize!;
      const paramsOffset = entry.paramsOffset!;
      const groups = Math.ceil(size / channels / groupSize) * channels;
      for (let k = 0; k < size; k++) {
        const group = Math.floor(Math.floor(k / channels) / groupSize) * channels + (k % channels);
        const min = view.getFloat32(paramsOffset + group * 4, true);
        const scale = view.getFloat32(paramsOffset + (groups + group) * 4, true);
        values[k] = min + bytes[entry.offset + k]! * scale;
      }
    } else {
      for (let k = 0; k < size; k++) values[k] = view.getFloat32(entry.offset + k * 4, true);
    }
    out.set(entry.name, { name: entry.name, shape: [...entry.shape], values });
  }
  return out;
}

/**
 * Reads a pair written by `writeTensorFile`, checking the manifest against the binary file (see
 * `readTensorManifest`): both files must lie inside `dir`, be regular files, and agree on every size.
 */
export async function readTensorFile(dir: string, base: string, options: ReadTensorFileOptions = {}): Promise<Map<string, StoredTensor>> {
  return readTensorData(await readTensorManifest(dir, base, options));
}
