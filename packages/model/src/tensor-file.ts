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
  dtype: 'float32';
  /** Byte offset in the .bin file. */
  offset: number;
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
export async function writeTensorFile(dir: string, base: string, tensors: readonly StoredTensor[]): Promise<void> {
  const total = tensors.reduce((n, t) => n + t.values.length, 0);
  const bytes = new Uint8Array(total * 4);
  const view = new DataView(bytes.buffer);
  const entries: ManifestEntry[] = [];
  let offset = 0;
  for (const t of tensors) {
    const expected = t.shape.reduce((a, b) => a * b, 1);
    if (expected !== t.values.length) throw new CheckpointError(`tensor ${t.name}: shape [${t.shape}] needs ${expected} values, has ${t.values.length}`);
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
    if (typeof entry.name !== 'string' || !Array.isArray(entry.shape) || entry.dtype !== 'float32' || !Number.isInteger(entry.offset)) {
      throw new CheckpointError(`${where}: expected {name, shape, dtype: "float32", offset}`);
    }
    const size = entry.shape.reduce((a, b) => a * b, 1);
    if (entry.offset < 0 || entry.offset + size * 4 > bytes.length) throw new CheckpointError(`${where}: tensor ${entry.name} lies outside ${base}.bin`);
    const values = new Float32Array(size);
    for (let k = 0; k < size; k++) values[k] = view.getFloat32(entry.offset + k * 4, true);
    out.set(entry.name, { name: entry.name, shape: entry.shape, values });
  });
  return out;
}
