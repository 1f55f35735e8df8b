/**
 * safetensors reader and writer: an 8-byte little-endian header length N, a JSON header of N bytes
 * (`{"__metadata__": {...}, "<name>": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...}`), then
 * the raw little-endian tensor bytes, offsets relative to the end of the header.
 */
import { readFile } from 'node:fs/promises';
import { InputError, writeFileAtomic } from '@s2cpnet/core';
import { float16ToNumber } from './float16';

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U64' | 'U32' | 'U16' | 'U8' | 'BOOL';

const BYTES_PER_ELEMENT: Record<SafetensorsDtype, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
};

const LITTLE_ENDIAN_PLATFORM = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Values as stored (64-bit integers become float64, exact up to 2^53; F16/BF16 become float32). */
export type SafetensorsData = Float64Array | Float32Array | Int32Array | Int16Array | Int8Array | Uint32Array | Uint16Array | Uint8Array;

export interface SafetensorsTensor {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Decodes the values. */
  read(): SafetensorsData;
  /** Decodes the values as float32. */
  readFloat32(): Float32Array;
}

export interface SafetensorsFile {
  readonly fileName: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** Tensors in header order. */
  readonly tensors: ReadonlyMap<string, SafetensorsTensor>;
}

/** A tensor to write: float32 data is written as F32 unless `dtype` says otherwise. */
export interface SafetensorsInput {
  dtype?: 'F32' | 'F64' | 'I32' | 'I64' | 'U8';
  shape: readonly number[];
  data: Float32Array | Float64Array | Int32Array | Uint8Array | readonly number[];
}

/**
 * Reads a safetensors file (a path, or its bytes). Values are decoded on demand.
 *
 * @example
 * ```ts
 * const file = await readSafetensors('resnet50.safetensors');
 * const w = file.tensors.get('layer1.0.conv1.weight')!.readFloat32(); // [64, 64, 1, 1] as stored
 * ```
 */
export async function readSafetensors(source: string | Uint8Array, options: { fileName?: string } = {}): Promise<SafetensorsFile> {
  if (typeof source === 'string') {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(source);
    } catch (cause) {
      throw new InputError(`cannot read safetensors file: ${(cause as Error).message}`, { file: source, cause });
    }
    return parseSafetensors(bytes, options.fileName ?? source);
  }
  return parseSafetensors(source, options.fileName ?? '<bytes>');
}

export function parseSafetensors(bytes: Uint8Array, fileName = '<bytes>'): SafetensorsFile {
  const fail = (message: string, jsonPath?: string): never => {
    throw new InputError(`safetensors: ${message}`, { file: fileName, jsonPath });
  };
  if (bytes.length < 8) fail(`file of ${bytes.length} bytes is too short for the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > bytes.length - 8) fail(`header length ${headerLength} exceeds the file (${bytes.length} bytes): truncated or not a safetensors file`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch (cause) {
    fail(`header is not valid UTF-8 JSON (${(cause as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object', '$');
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, SafetensorsTensor>();
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    const jsonPath = `$[${JSON.stringify(name)}]`;
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null) fail('__metadata__ must be an object of strings', jsonPath);
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`metadata value must be a string, found ${JSON.stringify(v)}`, `${jsonPath}[${JSON.stringify(k)}]`);
        metadata[k] = v as string;
      }
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e.dtype !== 'string' || !(e.dtype in BYTES_PER_ELEMENT)) {
      fail(`unknown dtype ${JSON.stringify(e.dtype)}; expected one of ${Object.keys(BYTES_PER_ELEMENT).join(', ')}`, `${jsonPath}.dtype`);
    }
    const dtype = e.dtype as SafetensorsDtype;
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      fail(`shape must be an array of non-negative integers, found ${JSON.stringify(e.shape)}`, `${jsonPath}.shape`);
    }
    const shape = e.shape as number[];
    const offsets = e.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) {
      fail(`data_offsets must be [begin, end], found ${JSON.stringify(offsets)}`, `${jsonPath}.data_offsets`);
    }
    const [begin, end] = offsets as [number, number];
    const count = shape.reduce((a, b) => a * b, 1);
    const expected = count * BYTES_PER_ELEMENT[dtype];
    if (end < begin || end > dataLength) fail(`data_offsets [${begin}, ${end}] fall outside the data section (${dataLength} bytes)`, `${jsonPath}.data_offsets`);
    if (end - begin !== expected) {
      fail(`data_offsets span ${end - begin} bytes but ${dtype} ${JSON.stringify(shape)} needs ${expected}`, `${jsonPath}.data_offsets`);
    }
    const raw = bytes.subarray(dataStart + begin, dataStart + end);
    const read = () => decode(raw, dtype, count);
    tensors.set(name, {
      dtype,
      shape,
      read,
      readFloat32: () => {
        const values = read();
        return values instanceof Float32Array ? values : Float32Array.from(values);
      },
    });
  }
  return { fileName, metadata, tensors };
}

function decode(raw: Uint8Array, dtype: SafetensorsDtype, count: number): SafetensorsData {
  // Copy into a fresh, aligned buffer: tensors in a file need not be aligned to their element size. (Not
  // `raw.slice()`: on a Node Buffer that is a view of the whole file, not a copy.)
  const buffer = new Uint8Array(raw).buffer;
  const view = new DataView(buffer);
  switch (dtype) {
    case 'F32':
      return new Float32Array(buffer, 0, count);
    case 'F64':
      return new Float64Array(buffer, 0, count);
    case 'I32':
      return new Int32Array(buffer, 0, count);
    case 'I16':
      return new Int16Array(buffer, 0, count);
    case 'I8':
      return new Int8Array(buffer, 0, count);
    case 'U32':
      return new Uint32Array(buffer, 0, count);
    case 'U16':
      return new Uint16Array(buffer, 0, count);
    case 'U8':
    case 'BOOL':
      return new Uint8Array(buffer, 0, count);
    case 'F16': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = float16ToNumber(view.getUint16(2 * i, true));
      return out;
    }
    case 'BF16': {
      const out = new Float32Array(count);
      const bits = new Uint32Array(1);
      const asFloat = new Float32Array(bits.buffer);
      for (let i = 0; i < count; i++) {
        bits[0] = view.getUint16(2 * i, true) << 16;
        out[i] = asFloat[0]!;
      }
      return out;
    }
    case 'I64':
    case 'U64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = Number(dtype === 'I64' ? view.getBigInt64(8 * i, true) : view.getBigUint64(8 * i, true));
      return out;
    }
  }
}

/** Serialises tensors to safetensors bytes (header padded with spaces to a multiple of 8 bytes). */
export function encodeSafetensors(tensors: Readonly<Record<string, SafetensorsInput>>, metadata?: Readonly<Record<string, string>>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header['__metadata__'] = { ...metadata };
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, tensor] of Object.entries(tensors)) {
    if (name === '__metadata__') throw new InputError(`safetensors: '__metadata__' is reserved and cannot name a tensor`);
    const dtype = tensor.dtype ?? (tensor.data instanceof Float64Array ? 'F64' : tensor.data instanceof Int32Array ? 'I32' : tensor.data instanceof Uint8Array ? 'U8' : 'F32');
    const count = tensor.shape.reduce((a, b) => a * b, 1);
    if (tensor.data.length !== count) {
      throw new InputError(`safetensors: tensor '${name}' has ${tensor.data.length} values but shape [${tensor.shape.join(', ')}] needs ${count}`);
    }
    const bytes = new Uint8Array(count * BYTES_PER_ELEMENT[dtype]);
    const view = new DataView(bytes.buffer);
    const fastF32 = dtype === 'F32' && tensor.data instanceof Float32Array && LITTLE_ENDIAN_PLATFORM;
    if (fastF32) {
      const data = tensor.data as Float32Array;
      bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
    for (let i = 0; i < (fastF32 ? 0 : count); i++) {
      const v = Number(tensor.data[i]);
      if (dtype === 'F32') view.setFloat32(4 * i, v, true);
      else if (dtype === 'F64') view.setFloat64(8 * i, v, true);
      else if (dtype === 'I32') view.setInt32(4 * i, v, true);
      else if (dtype === 'I64') view.setBigInt64(8 * i, BigInt(Math.trunc(v)), true);
      else view.setUint8(i, v);
    }
    header[name] = { dtype, shape: [...tensor.shape], data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  const jsonBytesLength = new TextEncoder().encode(json).length;
  json += ' '.repeat((8 - (jsonBytesLength % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let p = 8 + headerBytes.length;
  for (const part of parts) {
    out.set(part, p);
    p += part.length;
  }
  return out;
}

/** Writes a safetensors file atomically (temp file, then rename). */
export async function writeSafetensors(file: string, tensors: Readonly<Record<string, SafetensorsInput>>, metadata?: Readonly<Record<string, string>>): Promise<void> {
  await writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}
