import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '@s2cpnet/core';
import { float16ToNumber } from './float16';
import type { ExternalTensor } from './load';

interface ManifestEntry {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: 'uint8' | 'uint16' | 'float16'; scale?: number; min?: number; original_dtype?: string };
}

interface ManifestGroup {
  paths: string[];
  weights: ManifestEntry[];
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

/**
 * Reads the weights of a TensorFlow.js layers model directory (`model.json` + binary shards) into a map keyed by
 * `layer/weight` (the last two components of each manifest name, `:0` suffixes dropped), dequantizing quantized
 * weights (`value = q * scale + min` for uint8/uint16; float16 decoded).
 */
export async function readTfjsLayersWeights(dir: string): Promise<Map<string, ExternalTensor>> {
  const modelPath = join(dir, 'model.json');
  let model: { weightsManifest?: unknown };
  try {
    model = JSON.parse(await readFile(modelPath, 'utf8')) as { weightsManifest?: unknown };
  } catch (cause) {
    throw new InputError(`cannot read a TF.js layers model: ${(cause as Error).message}`, { file: modelPath, cause });
  }
  const manifest = model.weightsManifest;
  if (!Array.isArray(manifest)) throw new InputError('expected an array of weight groups', { file: modelPath, jsonPath: '$.weightsManifest' });
  const store = new Map<string, ExternalTensor>();
  for (const [g, group] of (manifest as ManifestGroup[]).entries()) {
    const groupPath = `$.weightsManifest[${g}]`;
    if (!Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw new InputError('a weight group needs "paths" and "weights" arrays', { file: modelPath, jsonPath: groupPath });
    }
    const shards = await Promise.all(
      group.paths.map(async (p, i) => {
        try {
          return await readFile(join(dir, p));
        } catch (cause) {
          throw new InputError(`weight shard '${p}' cannot be read: ${(cause as Error).message}`, { file: modelPath, jsonPath: `${groupPath}.paths[${i}]`, cause });
        }
      }),
    );
    const data = shards.length === 1 ? shards[0]! : Buffer.concat(shards);
    let offset = 0;
    for (const [w, entry] of group.weights.entries()) {
      const jsonPath = `${groupPath}.weights[${w}]`;
      const storedDtype = entry.quantization?.dtype ?? entry.dtype;
      const bytesPer = BYTES[storedDtype];
      if (bytesPer === undefined || (entry.dtype !== 'float32' && !entry.quantization)) {
        throw new InputError(`unsupported weight dtype '${storedDtype}' (expected float32, or uint8/uint16/float16 quantization)`, { file: modelPath, jsonPath });
      }
      const count = entry.shape.reduce((a, b) => a * b, 1);
      const length = count * bytesPer;
      if (offset + length > data.length) {
        throw new InputError(`weights run past the end of the shards (${data.length} bytes): '${entry.name}' needs bytes ${offset}..${offset + length}`, { file: modelPath, jsonPath });
      }
      const raw = data.subarray(offset, offset + length);
      offset += length;
      const parts = entry.name.replace(/:\d+$/, '').split('/');
      const key = parts.slice(-2).join('/');
      store.set(key, { shape: entry.shape, read: () => dequantize(raw, count, entry) });
    }
    if (offset !== data.length) {
      throw new InputError(`weight group holds ${data.length} bytes but its manifest describes ${offset}`, { file: modelPath, jsonPath: groupPath });
    }
  }
  return store;
}

function dequantize(raw: Uint8Array, count: number, entry: ManifestEntry): Float32Array {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Float32Array(count);
  const q = entry.quantization;
  if (!q) {
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
    return out;
  }
  if (q.dtype === 'float16') {
    for (let i = 0; i < count; i++) out[i] = float16ToNumber(view.getUint16(2 * i, true));
    return out;
  }
  const scale = q.scale ?? 1;
  const min = q.min ?? 0;
  for (let i = 0; i < count; i++) out[i] = (q.dtype === 'uint8' ? view.getUint8(i) : view.getUint16(2 * i, true)) * scale + min;
  return out;
}
