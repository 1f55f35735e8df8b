/**
 * A minimal, read-only HDF5 reader in plain TypeScript, enough for Keras weight files (and other simple files).
 *
 * Supported: superblock versions 0-3; object header versions 1 and 2 (with continuation blocks); groups stored as
 * symbol tables (v1 B-tree + local heap, what h5py writes by default) or as compact link messages (h5py with
 * `libver='latest'`); datasets with compact, contiguous or chunked layout (layout message versions 1-4; chunk
 * indexes: v1 B-tree, single chunk, implicit, non-paged fixed array); filters deflate (gzip, via node:zlib),
 * shuffle and fletcher32; element types float16/32/64, (un)signed integers of 1-8 bytes, fixed-length strings,
 * variable-length strings (global heap); attributes in object headers.
 *
 * Not supported (a clear error names the file and object): dense link/attribute storage (fractal heaps; groups with
 * more than 8 links in `libver='latest'` files), extensible-array and v2-B-tree chunk indexes, paged fixed arrays,
 * compound/enum/array/reference types, virtual datasets, external files, filters other than the three above.
 * Checksums are not verified. Unallocated chunks read as zeros (fill values are ignored).
 */
import { readFile } from 'node:fs/promises';
import { inflateSync } from 'node:zlib';
import { InputError } from '@s2cpnet/core';

const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];
const UNDEFINED_ADDRESS = -1;

/** Element type of a dataset or attribute. */
export type Hdf5Dtype =
  | 'float16'
  | 'float32'
  | 'float64'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'string'
  | 'vlen-string'
  | 'unsupported';

/** Values of a dataset: typed numbers (64-bit integers as float64, exact up to 2^53) or strings. */
export type Hdf5Data = Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | string[];

export type Hdf5AttributeValue = number | string | number[] | string[];

interface Datatype {
  dtype: Hdf5Dtype;
  /** Bytes per element as stored. */
  size: number;
  littleEndian: boolean;
  /** HDF5 type class number (for error messages). */
  typeClass: number;
  stringPadding?: number;
}

interface Message {
  type: number;
  /** Absolute offset of the message data. */
  offset: number;
  size: number;
  flags: number;
}

interface Filter {
  id: number;
  clientData: number[];
}

type Layout =
  | { kind: 'compact'; offset: number; size: number }
  | { kind: 'contiguous'; address: number; size: number }
  | { kind: 'chunked'; chunkShape: number[]; index: ChunkIndex };

type ChunkIndex =
  | { kind: 'btree-v1'; address: number }
  | { kind: 'single'; address: number; filteredSize: number | null; filterMask: number }
  | { kind: 'implicit'; address: number }
  | { kind: 'fixed-array'; address: number }
  | { kind: 'unsupported'; name: string };

interface ChunkRecord {
  /** Element offsets of the chunk's first element, one per dataset dimension. */
  offsets: number[];
  address: number;
  /** Stored (possibly filtered) size in bytes. */
  size: number;
  filterMask: number;
}

export type Hdf5Node = Hdf5Group | Hdf5Dataset;

/** A group: named children (groups and datasets) and attributes. */
export class Hdf5Group {
  readonly kind = 'group';
  /** @internal */
  constructor(
    readonly name: string,
    readonly path: string,
    readonly attributes: Readonly<Record<string, Hdf5AttributeValue>>,
    private readonly childNodes: ReadonlyMap<string, Hdf5Node>,
  ) {}

  /** The children in file order (symbol tables: sorted by name). */
  children(): ReadonlyMap<string, Hdf5Node> {
    return this.childNodes;
  }

  /** A descendant by a relative path such as `conv1_conv/conv1_conv/kernel:0`. */
  get(relativePath: string): Hdf5Node | undefined {
    let node: Hdf5Node | undefined = this;
    for (const part of relativePath.split('/').filter((p) => p !== '')) {
      if (!node || node.kind !== 'group') return undefined;
      node = node.childNodes.get(part);
    }
    return node;
  }

  /** Every dataset below this group, depth first. */
  datasets(): Hdf5Dataset[] {
    const out: Hdf5Dataset[] = [];
    for (const child of this.childNodes.values()) {
      if (child.kind === 'dataset') out.push(child);
      else out.push(...child.datasets());
    }
    return out;
  }
}

/** A dataset: shape, element type, attributes; values are read on demand. */
export class Hdf5Dataset {
  readonly kind = 'dataset';
  /** @internal */
  constructor(
    readonly name: string,
    readonly path: string,
    readonly shape: readonly number[],
    readonly dtype: Hdf5Dtype,
    readonly attributes: Readonly<Record<string, Hdf5AttributeValue>>,
    private readonly reader: () => Hdf5Data,
  ) {}

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /** All values in row-major order. */
  read(): Hdf5Data {
    return this.reader();
  }

  /** All values converted to float32 (numeric datasets only). */
  readFloat32(): Float32Array {
    const data = this.reader();
    if (data instanceof Float32Array) return data;
    if (Array.isArray(data)) throw new InputError(`dataset ${this.path} holds strings, not numbers`);
    return Float32Array.from(data as ArrayLike<number>);
  }
}

/** A parsed HDF5 file. */
export interface Hdf5File {
  readonly fileName: string;
  readonly superblockVersion: number;
  readonly root: Hdf5Group;
  /** A node by absolute or relative path (`/a/b` or `a/b`). */
  get(path: string): Hdf5Node | undefined;
}

/**
 * Reads an HDF5 file (a path, or its bytes) into a tree of groups and datasets. Dataset values are decoded lazily.
 *
 * @example
 * ```ts
 * const file = await readHdf5('resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5');
 * const kernel = file.get('conv1_conv/conv1_conv/kernel:0'); // Hdf5Dataset, shape [7, 7, 3, 64]
 * ```
 */
export async function readHdf5(source: string | Uint8Array, options: { fileName?: string } = {}): Promise<Hdf5File> {
  if (typeof source === 'string') {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(source);
    } catch (cause) {
      throw new InputError(`cannot read HDF5 file: ${(cause as Error).message}`, { file: source, cause });
    }
    return parseHdf5(bytes, { fileName: options.fileName ?? source });
  }
  return parseHdf5(source, options);
}

/** Synchronous form of `readHdf5` for bytes already in memory. */
export function parseHdf5(bytes: Uint8Array, options: { fileName?: string } = {}): Hdf5File {
  return new Hdf5Parser(bytes, options.fileName ?? '<bytes>').parse();
}

class Hdf5Parser {
  private readonly view: DataView;
  private offsetSize = 8;
  private lengthSize = 8;
  private baseAddress = 0;
  private superblockVersion = 0;
  private readonly visited = new Map<number, Hdf5Node>();
  private readonly globalHeaps = new Map<number, Map<number, Uint8Array>>();

  constructor(
    private readonly bytes: Uint8Array,
    private readonly fileName: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private fail(message: string, cause?: unknown): never {
    throw new InputError(`HDF5: ${message}`, { file: this.fileName, cause });
  }

  parse(): Hdf5File {
    const superblockAt = this.findSuperblock();
    const rootAddress = this.readSuperblock(superblockAt);
    const root = this.readObject(rootAddress, '', '/');
    if (root.kind !== 'group') this.fail('the root object is not a group');
    const superblockVersion = this.superblockVersion;
    return {
      fileName: this.fileName,
      superblockVersion,
      root,
      get: (path: string) => (path === '/' || path === '' ? root : root.get(path)),
    };
  }

  // ---- primitive reads -------------------------------------------------------------------------------------------

  private check(position: number, length: number, what: string): void {
    if (position < 0 || position + length > this.bytes.length) {
      this.fail(`${what} at byte ${position} (+${length}) lies outside the file (${this.bytes.length} bytes): truncated or corrupt file`);
    }
  }

  private u8(p: number): number {
    this.check(p, 1, 'byte');
    return this.view.getUint8(p);
  }

  private u16(p: number): number {
    this.check(p, 2, 'uint16');
    return this.view.getUint16(p, true);
  }

  private u32(p: number): number {
    this.check(p, 4, 'uint32');
    return this.view.getUint32(p, true);
  }

  /** Little-endian unsigned integer of 1, 2, 4 or 8 bytes; an all-ones value (undefined address) gives -1. */
  private uint(p: number, size: number): number {
    this.check(p, size, `${size}-byte integer`);
    let allOnes = true;
    let value = 0;
    for (let i = size - 1; i >= 0; i--) {
      const b = this.view.getUint8(p + i);
      if (b !== 0xff) allOnes = false;
      value = value * 256 + b;
    }
    if (allOnes && size >= 4) return UNDEFINED_ADDRESS;
    if (value > Number.MAX_SAFE_INTEGER) this.fail(`integer at byte ${p} exceeds 2^53`);
    return value;
  }

  private address(p: number): number {
    const a = this.uint(p, this.offsetSize);
    return a === UNDEFINED_ADDRESS ? a : a + this.baseAddress;
  }

  private length(p: number): number {
    return this.uint(p, this.lengthSize);
  }

  private signature(p: number, expected: string): void {
    this.check(p, 4, `signature '${expected}'`);
    for (let i = 0; i < 4; i++) {
      if (this.bytes[p + i] !== expected.charCodeAt(i)) {
        const found = String.fromCharCode(...this.bytes.subarray(p, p + 4));
        this.fail(`expected signature '${expected}' at byte ${p}, found ${JSON.stringify(found)}`);
      }
    }
  }

  private cString(p: number, limit: number): string {
    let end = p;
    while (end < limit && this.bytes[end] !== 0) end++;
    return new TextDecoder().decode(this.bytes.subarray(p, end));
  }

  // ---- superblock ------------------------------------------------------------------------------------------------

  private findSuperblock(): number {
    for (let at = 0; at + 8 <= this.bytes.length; at = at === 0 ? 512 : at * 2) {
      if (SIGNATURE.every((b, i) => this.bytes[at + i] === b)) return at;
    }
    this.fail('not an HDF5 file (no superblock signature at byte 0, 512, 1024, ...)');
  }

  private readSuperblock(at: number): number {
    const version = this.u8(at + 8);
    this.superblockVersion = version;
    if (version === 0 || version === 1) {
      this.offsetSize = this.u8(at + 13);
      this.lengthSize = this.u8(at + 14);
      let p = at + 24 + (version === 1 ? 4 : 0);
      this.baseAddress = this.uint(p, this.offsetSize);
      p += 4 * this.offsetSize; // base, free-space, end of file, driver info
      // root group symbol table entry: link name offset, object header address, ...
      return this.address(p + this.offsetSize);
    }
    if (version === 2 || version === 3) {
      this.offsetSize = this.u8(at + 9);
      this.lengthSize = this.u8(at + 10);
      const p = at + 12;
      this.baseAddress = this.uint(p, this.offsetSize);
      return this.address(p + 3 * this.offsetSize); // base, extension, end of file, root object header
    }
    this.fail(`unsupported superblock version ${version}`);
  }

  // ---- object headers --------------------------------------------------------------------------------------------

  private readMessages(address: number, path: string): Message[] {
    if (address === UNDEFINED_ADDRESS) this.fail(`object ${path} has an undefined address`);
    this.check(address, 16, `object header of ${path}`);
    const messages: Message[] = [];
    const isV2 = this.bytes[address] === 0x4f && this.u8(address + 1) === 0x48; // 'OH' of 'OHDR'
    if (isV2) {
      this.signature(address, 'OHDR');
      const version = this.u8(address + 4);
      if (version !== 2) this.fail(`object ${path}: unsupported object header version ${version}`);
      const flags = this.u8(address + 5);
      let p = address + 6;
      if (flags & 0x20) p += 16;
      if (flags & 0x10) p += 4;
      const sizeBytes = 1 << (flags & 0x03);
      const chunkSize = this.uint(p, sizeBytes);
      p += sizeBytes;
      const blocks: [number, number][] = [[p, p + chunkSize]];
      const withOrder = (flags & 0x04) !== 0;
      for (let i = 0; i < blocks.length; i++) {
        const [start, end] = blocks[i]!;
        this.readV2Messages(start, end, withOrder, messages, blocks);
      }
    } else {
      const version = this.u8(address);
      if (version !== 1) this.fail(`object ${path}: unsupported object header version ${version}`);
      const count = this.u16(address + 2);
      const size = this.u32(address + 8);
      const blocks: [number, number][] = [[address + 16, address + 16 + size]];
      for (let i = 0; i < blocks.length && messages.length < count; i++) {
        const [start, end] = blocks[i]!;
        let p = start;
        while (p + 8 <= end && messages.length < count) {
          const type = this.u16(p);
          const msgSize = this.u16(p + 2);
          const msgFlags = this.u8(p + 4);
          const message = { type, offset: p + 8, size: msgSize, flags: msgFlags };
          messages.push(message);
          if (type === 0x10) blocks.push([this.address(p + 8), this.address(p + 8) + this.length(p + 8 + this.offsetSize)]);
          p += 8 + msgSize;
        }
      }
    }
    return messages;
  }

  private readV2Messages(start: number, end: number, withOrder: boolean, out: Message[], blocks: [number, number][]): void {
    const headerSize = withOrder ? 6 : 4;
    let p = start;
    while (p + headerSize <= end) {
      const type = this.u8(p);
      const size = this.u16(p + 1);
      const flags = this.u8(p + 3);
      const offset = p + headerSize;
      out.push({ type, offset, size, flags });
      if (type === 0x10) {
        const blockAddress = this.address(offset);
        const blockLength = this.length(offset + this.offsetSize);
        this.signature(blockAddress, 'OCHK');
        blocks.push([blockAddress + 4, blockAddress + blockLength - 4]); // minus signature and checksum
      }
      p = offset + size;
    }
  }

  private readObject(address: number, name: string, path: string): Hdf5Node {
    const seen = this.visited.get(address);
    if (seen) return seen;
    const messages = this.readMessages(address, path);
    const attributes = this.readAttributes(messages, path);
    const layout = messages.find((m) => m.type === 0x08);
    if (layout) {
      const dataset = this.readDataset(messages, layout, name, path, attributes);
      this.visited.set(address, dataset);
      return dataset;
    }
    const children = new Map<string, Hdf5Node>();
    const group = new Hdf5Group(name, path, attributes, children);
    this.visited.set(address, group);
    for (const [childName, childAddress] of this.readLinks(messages, path)) {
      const childPath = path === '/' ? `/${childName}` : `${path}/${childName}`;
      children.set(childName, this.readObject(childAddress, childName, childPath));
    }
    return group;
  }

  // ---- groups ----------------------------------------------------------------------------------------------------

  private readLinks(messages: Message[], path: string): [string, number][] {
    const links: [string, number][] = [];
    for (const m of messages) {
      if (m.type === 0x11) {
        const btree = this.address(m.offset);
        const heap = this.address(m.offset + this.offsetSize);
        this.readSymbolTable(btree, heap, links);
      } else if (m.type === 0x06) {
        const link = this.readLinkMessage(m);
        if (link) links.push(link);
      } else if (m.type === 0x02) {
        const flags = this.u8(m.offset + 1);
        const heapAddress = this.address(m.offset + 2 + (flags & 0x01 ? 8 : 0));
        if (heapAddress !== UNDEFINED_ADDRESS) {
          this.fail(`group ${path} uses dense link storage (a fractal heap), which this reader does not support; re-save the file with h5py's default libver`);
        }
      }
    }
    return links;
  }

  private readSymbolTable(btreeAddress: number, heapAddress: number, out: [string, number][]): void {
    this.signature(heapAddress, 'HEAP');
    const dataAddress = this.address(heapAddress + 8 + 2 * this.lengthSize);
    const dataSize = this.length(heapAddress + 8);
    const visitNode = (nodeAddress: number): void => {
      this.signature(nodeAddress, 'TREE');
      const level = this.u8(nodeAddress + 5);
      const entries = this.u16(nodeAddress + 6);
      let p = nodeAddress + 8 + 2 * this.offsetSize;
      for (let i = 0; i < entries; i++) {
        p += this.lengthSize; // key: heap offset of a name
        const child = this.address(p);
        p += this.offsetSize;
        if (level > 0) visitNode(child);
        else this.readSymbolNode(child, dataAddress, dataAddress + dataSize, out);
      }
    };
    visitNode(btreeAddress);
  }

  private readSymbolNode(address: number, heapData: number, heapEnd: number, out: [string, number][]): void {
    this.signature(address, 'SNOD');
    const count = this.u16(address + 6);
    const entrySize = 2 * this.offsetSize + 24;
    for (let i = 0; i < count; i++) {
      const p = address + 8 + i * entrySize;
      const nameOffset = this.uint(p, this.offsetSize);
      const objectAddress = this.address(p + this.offsetSize);
      out.push([this.cString(heapData + nameOffset, heapEnd), objectAddress]);
    }
  }

  /** A hard link's (name, address); soft and external links are skipped. */
  private readLinkMessage(m: Message): [string, number] | null {
    let p = m.offset;
    const version = this.u8(p);
    if (version !== 1) this.fail(`unsupported link message version ${version}`);
    const flags = this.u8(p + 1);
    p += 2;
    let linkType = 0;
    if (flags & 0x08) linkType = this.u8(p++);
    if (flags & 0x04) p += 8;
    if (flags & 0x10) p += 1;
    const lengthBytes = 1 << (flags & 0x03);
    const nameLength = this.uint(p, lengthBytes);
    p += lengthBytes;
    const name = new TextDecoder().decode(this.bytes.subarray(p, p + nameLength));
    p += nameLength;
    if (linkType !== 0) return null;
    return [name, this.address(p)];
  }

  // ---- datatypes, dataspaces, attributes -------------------------------------------------------------------------

  private readDatatype(p: number, where: string): Datatype {
    const classAndVersion = this.u8(p);
    const typeClass = classAndVersion & 0x0f;
    const bits0 = this.u8(p + 1);
    const size = this.u32(p + 4);
    const littleEndian = (bits0 & 0x01) === 0;
    if (typeClass === 0) {
      const signed = (bits0 & 0x08) !== 0;
      const names: Record<number, Hdf5Dtype> = signed ? { 1: 'int8', 2: 'int16', 4: 'int32', 8: 'int64' } : { 1: 'uint8', 2: 'uint16', 4: 'uint32', 8: 'uint64' };
      const dtype = names[size];
      if (!dtype) this.fail(`${where}: unsupported integer size ${size}`);
      return { dtype, size, littleEndian, typeClass };
    }
    if (typeClass === 1) {
      const dtype = ({ 2: 'float16', 4: 'float32', 8: 'float64' } as Record<number, Hdf5Dtype>)[size];
      if (!dtype || (bits0 & 0x40) !== 0) this.fail(`${where}: unsupported floating-point type (size ${size}, flags ${bits0})`);
      return { dtype, size, littleEndian, typeClass };
    }
    if (typeClass === 3) return { dtype: 'string', size, littleEndian: true, typeClass, stringPadding: bits0 & 0x0f };
    if (typeClass === 9 && (bits0 & 0x0f) === 1) return { dtype: 'vlen-string', size, littleEndian: true, typeClass };
    return { dtype: 'unsupported', size, littleEndian: true, typeClass };
  }

  /** Dims of a dataspace message; `null` for a null dataspace (no data). */
  private readDataspace(p: number): number[] | null {
    const version = this.u8(p);
    const rank = this.u8(p + 1);
    let q: number;
    if (version === 1) q = p + 8;
    else if (version === 2) {
      if (this.u8(p + 3) === 2) return null;
      q = p + 4;
    } else this.fail(`unsupported dataspace version ${version}`);
    const dims: number[] = [];
    for (let i = 0; i < rank; i++) dims.push(this.length(q + i * this.lengthSize));
    return dims;
  }

  private readAttributes(messages: Message[], path: string): Record<string, Hdf5AttributeValue> {
    const out: Record<string, Hdf5AttributeValue> = {};
    for (const m of messages) {
      // Attributes in dense storage (an attribute-info message 0x15 pointing at a fractal heap) are left out: they
      // occur only for very many or very large attributes, never in Keras weight files.
      if (m.type !== 0x0c) continue;
      const version = this.u8(m.offset);
      const nameSize = this.u16(m.offset + 2);
      const datatypeSize = this.u16(m.offset + 4);
      const dataspaceSize = this.u16(m.offset + 6);
      let p = m.offset + 8 + (version === 3 ? 1 : 0);
      const pad = (n: number) => (version === 1 ? Math.ceil(n / 8) * 8 : n);
      const name = this.cString(p, p + nameSize);
      p += pad(nameSize);
      const where = `attribute '${name}' of ${path}`;
      if ((this.u8(m.offset + 1) & 0x01) !== 0) this.fail(`${where}: shared (committed) datatypes are not supported`);
      const datatype = this.readDatatype(p, where);
      p += pad(datatypeSize);
      const dims = this.readDataspace(p);
      p += pad(dataspaceSize);
      if (dims === null) {
        out[name] = [];
        continue;
      }
      if (datatype.dtype === 'unsupported') continue;
      const count = dims.reduce((a, b) => a * b, 1);
      const data = this.decodeElements(this.bytes.subarray(p, p + count * datatype.size), count, datatype, where);
      const values: (number | string)[] = Array.isArray(data) ? data : Array.from(data as ArrayLike<number>);
      out[name] = dims.length === 0 ? values[0]! : (values as number[] | string[]);
    }
    return out;
  }

  // ---- element decoding ------------------------------------------------------------------------------------------

  private decodeElements(raw: Uint8Array, count: number, type: Datatype, where: string): Hdf5Data {
    if (raw.length < count * type.size) this.fail(`${where}: expected ${count * type.size} bytes of data, found ${raw.length}`);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const le = type.littleEndian;
    switch (type.dtype) {
      case 'float32': {
        if (le && raw.byteOffset % 4 === 0) return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + count * 4));
        const out = new Float32Array(count);
        for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, le);
        return out;
      }
      case 'float64': {
        const out = new Float64Array(count);
        for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, le);
        return out;
      }
      case 'float16': {
        const out = new Float32Array(count);
        for (let i = 0; i < count; i++) out[i] = float16ToNumber(view.getUint16(i * 2, le));
        return out;
      }
      case 'int8':
        return new Int8Array(raw.slice(0, count));
      case 'uint8':
        return new Uint8Array(raw.slice(0, count));
      case 'int16':
      case 'uint16': {
        const out = type.dtype === 'int16' ? new Int16Array(count) : new Uint16Array(count);
        for (let i = 0; i < count; i++) out[i] = type.dtype === 'int16' ? view.getInt16(i * 2, le) : view.getUint16(i * 2, le);
        return out;
      }
      case 'int32':
      case 'uint32': {
        const out = type.dtype === 'int32' ? new Int32Array(count) : new Uint32Array(count);
        for (let i = 0; i < count; i++) out[i] = type.dtype === 'int32' ? view.getInt32(i * 4, le) : view.getUint32(i * 4, le);
        return out;
      }
      case 'int64':
      case 'uint64': {
        const out = new Float64Array(count);
        for (let i = 0; i < count; i++) out[i] = Number(type.dtype === 'int64' ? view.getBigInt64(i * 8, le) : view.getBigUint64(i * 8, le));
        return out;
      }
      case 'string': {
        const out: string[] = [];
        const decoder = new TextDecoder();
        for (let i = 0; i < count; i++) {
          let bytes = raw.subarray(i * type.size, (i + 1) * type.size);
          const nul = bytes.indexOf(0);
          if (nul >= 0) bytes = bytes.subarray(0, nul);
          let text = decoder.decode(bytes);
          if (type.stringPadding === 2) text = text.replace(/ +$/, '');
          out.push(text);
        }
        return out;
      }
      case 'vlen-string': {
        const out: string[] = [];
        const decoder = new TextDecoder();
        const recordSize = 4 + this.offsetSize + 4;
        for (let i = 0; i < count; i++) {
          const q = i * recordSize;
          const length = view.getUint32(q, true);
          const collection = readUintFrom(raw, q + 4, this.offsetSize) + this.baseAddress;
          const index = view.getUint32(q + 4 + this.offsetSize, true);
          const object = length === 0 ? new Uint8Array(0) : this.globalHeapObject(collection, index, where);
          out.push(decoder.decode(object.subarray(0, length)));
        }
        return out;
      }
      default:
        this.fail(`${where}: unsupported element type (HDF5 type class ${type.typeClass})`);
    }
  }

  private globalHeapObject(collection: number, index: number, where: string): Uint8Array {
    let objects = this.globalHeaps.get(collection);
    if (!objects) {
      objects = new Map();
      this.signature(collection, 'GCOL');
      const size = this.length(collection + 8);
      let p = collection + 8 + this.lengthSize;
      const end = collection + size;
      while (p + 8 + this.lengthSize <= end) {
        const objectIndex = this.u16(p);
        if (objectIndex === 0) break; // free space: the rest of the collection
        const objectSize = this.length(p + 8);
        const start = p + 8 + this.lengthSize;
        objects.set(objectIndex, this.bytes.subarray(start, start + objectSize));
        p = start + Math.ceil(objectSize / 8) * 8;
      }
      this.globalHeaps.set(collection, objects);
    }
    const object = objects.get(index);
    if (!object) this.fail(`${where}: global heap object ${index} not found in collection at byte ${collection}`);
    return object;
  }

  // ---- datasets --------------------------------------------------------------------------------------------------

  private readDataset(messages: Message[], layoutMessage: Message, name: string, path: string, attributes: Record<string, Hdf5AttributeValue>): Hdf5Dataset {
    const dataspace = messages.find((m) => m.type === 0x01);
    const datatypeMessage = messages.find((m) => m.type === 0x03);
    if (!dataspace || !datatypeMessage) this.fail(`dataset ${path} lacks a dataspace or datatype message`);
    if ((datatypeMessage.flags & 0x02) !== 0) this.fail(`dataset ${path}: shared (committed) datatypes are not supported`);
    const shape = this.readDataspace(dataspace.offset) ?? [0];
    const datatype = this.readDatatype(datatypeMessage.offset, `dataset ${path}`);
    const filters = this.readFilters(messages.find((m) => m.type === 0x0b), path);
    const layout = this.readLayout(layoutMessage, shape.length, path);
    const reader = () => this.readDatasetValues(path, shape, datatype, layout, filters);
    return new Hdf5Dataset(name, path, shape, datatype.dtype, attributes, reader);
  }

  private readFilters(message: Message | undefined, path: string): Filter[] {
    if (!message) return [];
    const version = this.u8(message.offset);
    const count = this.u8(message.offset + 1);
    const filters: Filter[] = [];
    let p = message.offset + (version === 1 ? 8 : 2);
    for (let i = 0; i < count; i++) {
      const id = this.u16(p);
      let nameLength = 0;
      if (version === 1 || id >= 256) {
        nameLength = this.u16(p + 2);
        p += 2;
      }
      const valueCount = this.u16(p + 4);
      p += 6;
      p += version === 1 ? Math.ceil(nameLength / 8) * 8 : nameLength;
      const clientData: number[] = [];
      for (let v = 0; v < valueCount; v++) clientData.push(this.u32(p + 4 * v));
      p += 4 * valueCount;
      if (version === 1 && valueCount % 2 === 1) p += 4;
      if (id !== 1 && id !== 2 && id !== 3) this.fail(`dataset ${path}: unsupported filter id ${id} (supported: 1 deflate, 2 shuffle, 3 fletcher32)`);
      filters.push({ id, clientData });
    }
    return filters;
  }

  private readLayout(m: Message, rank: number, path: string): Layout {
    const version = this.u8(m.offset);
    if (version === 1 || version === 2) {
      const dimensionality = this.u8(m.offset + 1);
      const layoutClass = this.u8(m.offset + 2);
      let p = m.offset + 8;
      if (layoutClass === 0) {
        p += dimensionality * 4;
        const size = this.u32(p);
        return { kind: 'compact', offset: p + 4, size };
      }
      const address = this.address(p);
      p += this.offsetSize;
      const dims: number[] = [];
      for (let i = 0; i < dimensionality; i++) dims.push(this.u32(p + 4 * i));
      if (layoutClass === 1) return { kind: 'contiguous', address, size: NaN };
      return { kind: 'chunked', chunkShape: dims.slice(0, rank), index: { kind: 'btree-v1', address } };
    }
    if (version !== 3 && version !== 4 && version !== 5) this.fail(`dataset ${path}: unsupported layout message version ${version}`);
    const layoutClass = this.u8(m.offset + 1);
    const p = m.offset + 2;
    if (layoutClass === 0) return { kind: 'compact', offset: p + 2, size: this.u16(p) };
    if (layoutClass === 1) return { kind: 'contiguous', address: this.address(p), size: this.length(p + this.offsetSize) };
    if (layoutClass !== 2) this.fail(`dataset ${path}: unsupported layout class ${layoutClass} (virtual datasets are not supported)`);
    if (version === 3) {
      const dimensionality = this.u8(p);
      const address = this.address(p + 1);
      const dims: number[] = [];
      for (let i = 0; i < dimensionality; i++) dims.push(this.u32(p + 1 + this.offsetSize + 4 * i));
      return { kind: 'chunked', chunkShape: dims.slice(0, rank), index: { kind: 'btree-v1', address } };
    }
    const flags = this.u8(p);
    const dimensionality = this.u8(p + 1);
    const encodedBytes = this.u8(p + 2);
    let q = p + 3;
    const dims: number[] = [];
    for (let i = 0; i < dimensionality; i++) dims.push(this.uint(q + i * encodedBytes, encodedBytes));
    q += dimensionality * encodedBytes;
    const indexType = this.u8(q++);
    const chunkShape = dims.slice(0, rank);
    switch (indexType) {
      case 1: {
        let filteredSize: number | null = null;
        let filterMask = 0;
        if (flags & 0x02) {
          filteredSize = this.length(q);
          filterMask = this.u32(q + this.lengthSize);
          q += this.lengthSize + 4;
        }
        return { kind: 'chunked', chunkShape, index: { kind: 'single', address: this.address(q), filteredSize, filterMask } };
      }
      case 2:
        return { kind: 'chunked', chunkShape, index: { kind: 'implicit', address: this.address(q) } };
      case 3:
        return { kind: 'chunked', chunkShape, index: { kind: 'fixed-array', address: this.address(q + 1) } };
      case 4:
        return { kind: 'chunked', chunkShape, index: { kind: 'unsupported', name: 'extensible array' } };
      case 5:
        return { kind: 'chunked', chunkShape, index: { kind: 'unsupported', name: 'v2 B-tree' } };
      default:
        this.fail(`dataset ${path}: unknown chunk index type ${indexType}`);
    }
  }

  private readDatasetValues(path: string, shape: readonly number[], type: Datatype, layout: Layout, filters: Filter[]): Hdf5Data {
    const where = `dataset ${path}`;
    if (type.dtype === 'unsupported') this.fail(`${where}: unsupported element type (HDF5 type class ${type.typeClass})`);
    const count = shape.reduce((a, b) => a * b, 1);
    const byteCount = count * type.size;
    let raw: Uint8Array;
    if (layout.kind === 'compact') {
      raw = this.bytes.subarray(layout.offset, layout.offset + layout.size);
    } else if (layout.kind === 'contiguous') {
      if (layout.address === UNDEFINED_ADDRESS) raw = new Uint8Array(byteCount);
      else {
        this.check(layout.address, byteCount, `data of ${where}`);
        raw = this.bytes.subarray(layout.address, layout.address + byteCount);
      }
    } else {
      raw = new Uint8Array(byteCount);
      for (const chunk of this.chunkRecords(layout, shape, type.size, filters, where)) {
        this.check(chunk.address, chunk.size, `chunk of ${where}`);
        let data: Uint8Array = this.bytes.subarray(chunk.address, chunk.address + chunk.size);
        data = this.unfilter(data, filters, chunk.filterMask, type.size, where);
        copyChunk(data, raw, chunk.offsets, layout.chunkShape, shape, type.size);
      }
    }
    return this.decodeElements(raw, count, type, where);
  }

  private chunkRecords(layout: Extract<Layout, { kind: 'chunked' }>, shape: readonly number[], elementSize: number, filters: Filter[], where: string): ChunkRecord[] {
    const index = layout.index;
    const chunkShape = layout.chunkShape;
    const chunkBytes = chunkShape.reduce((a, b) => a * b, 1) * elementSize;
    const grid = shape.map((d, i) => Math.ceil(d / chunkShape[i]!));
    const gridCount = grid.reduce((a, b) => a * b, 1);
    const offsetsOf = (linear: number): number[] => {
      const offsets = new Array<number>(shape.length);
      for (let i = shape.length - 1; i >= 0; i--) {
        offsets[i] = (linear % grid[i]!) * chunkShape[i]!;
        linear = Math.floor(linear / grid[i]!);
      }
      return offsets;
    };
    switch (index.kind) {
      case 'unsupported':
        return this.fail(`${where}: chunk index '${index.name}' is not supported (re-save without unlimited dimensions)`);
      case 'single':
        if (index.address === UNDEFINED_ADDRESS) return [];
        return [{ offsets: shape.map(() => 0), address: index.address, size: index.filteredSize ?? chunkBytes, filterMask: index.filterMask }];
      case 'implicit':
        if (index.address === UNDEFINED_ADDRESS) return [];
        return Array.from({ length: gridCount }, (_, i) => ({ offsets: offsetsOf(i), address: index.address + i * chunkBytes, size: chunkBytes, filterMask: 0 }));
      case 'fixed-array':
        return this.fixedArrayChunks(index.address, gridCount, chunkBytes, filters.length > 0, offsetsOf, where);
      case 'btree-v1': {
        const out: ChunkRecord[] = [];
        if (index.address !== UNDEFINED_ADDRESS) this.btreeChunks(index.address, shape.length, out);
        return out;
      }
    }
  }

  private btreeChunks(address: number, rank: number, out: ChunkRecord[]): void {
    this.signature(address, 'TREE');
    const level = this.u8(address + 5);
    const entries = this.u16(address + 6);
    const keySize = 8 + 8 * (rank + 1);
    let p = address + 8 + 2 * this.offsetSize;
    for (let i = 0; i < entries; i++) {
      const size = this.u32(p);
      const filterMask = this.u32(p + 4);
      const offsets: number[] = [];
      for (let d = 0; d < rank; d++) offsets.push(this.uint(p + 8 + 8 * d, 8));
      const child = this.address(p + keySize);
      if (level > 0) this.btreeChunks(child, rank, out);
      else out.push({ offsets, address: child, size, filterMask });
      p += keySize + this.offsetSize;
    }
  }

  private fixedArrayChunks(address: number, count: number, chunkBytes: number, filtered: boolean, offsetsOf: (i: number) => number[], where: string): ChunkRecord[] {
    if (address === UNDEFINED_ADDRESS) return [];
    this.signature(address, 'FAHD');
    const entrySize = this.u8(address + 6);
    const pageBits = this.u8(address + 7);
    const entries = this.length(address + 8);
    const dataBlock = this.address(address + 8 + this.lengthSize);
    if (entries > 2 ** pageBits) this.fail(`${where}: paged fixed-array chunk index (${entries} chunks) is not supported`);
    if (dataBlock === UNDEFINED_ADDRESS) return [];
    this.signature(dataBlock, 'FADB');
    let p = dataBlock + 6 + this.offsetSize;
    const out: ChunkRecord[] = [];
    for (let i = 0; i < Math.min(count, entries); i++) {
      const chunkAddress = this.address(p);
      let size = chunkBytes;
      let filterMask = 0;
      if (filtered) {
        const sizeBytes = entrySize - this.offsetSize - 4;
        size = this.uint(p + this.offsetSize, sizeBytes);
        filterMask = this.u32(p + this.offsetSize + sizeBytes);
      }
      if (chunkAddress !== UNDEFINED_ADDRESS) out.push({ offsets: offsetsOf(i), address: chunkAddress, size, filterMask });
      p += entrySize;
    }
    return out;
  }

  private unfilter(data: Uint8Array, filters: Filter[], mask: number, elementSize: number, where: string): Uint8Array {
    let out = data;
    for (let i = filters.length - 1; i >= 0; i--) {
      if (mask & (1 << i)) continue;
      const filter = filters[i]!;
      if (filter.id === 1) {
        try {
          out = inflateSync(out);
        } catch (cause) {
          this.fail(`${where}: a deflate-compressed chunk does not decompress`, cause);
        }
      } else if (filter.id === 2) {
        out = unshuffle(out, filter.clientData[0] ?? elementSize);
      } else if (filter.id === 3) {
        out = out.subarray(0, out.length - 4);
      }
    }
    return out;
  }
}

function readUintFrom(bytes: Uint8Array, p: number, size: number): number {
  let value = 0;
  for (let i = size - 1; i >= 0; i--) value = value * 256 + bytes[p + i]!;
  return value;
}

/** Copies one (full-size, possibly edge-clipped) chunk into the row-major dataset buffer. */
function copyChunk(chunk: Uint8Array, target: Uint8Array, offsets: readonly number[], chunkShape: readonly number[], shape: readonly number[], elementSize: number): void {
  const rank = shape.length;
  if (rank === 0) {
    target.set(chunk.subarray(0, elementSize));
    return;
  }
  const datasetStrides = new Array<number>(rank);
  const chunkStrides = new Array<number>(rank);
  datasetStrides[rank - 1] = elementSize;
  chunkStrides[rank - 1] = elementSize;
  for (let i = rank - 2; i >= 0; i--) {
    datasetStrides[i] = datasetStrides[i + 1]! * shape[i + 1]!;
    chunkStrides[i] = chunkStrides[i + 1]! * chunkShape[i + 1]!;
  }
  const extent = chunkShape.map((c, i) => Math.min(c, shape[i]! - offsets[i]!));
  if (extent.some((e) => e <= 0)) return;
  const rowBytes = extent[rank - 1]! * elementSize;
  const walk = (dim: number, chunkPos: number, targetPos: number): void => {
    if (dim === rank - 1) {
      target.set(chunk.subarray(chunkPos, chunkPos + rowBytes), targetPos);
      return;
    }
    for (let i = 0; i < extent[dim]!; i++) walk(dim + 1, chunkPos + i * chunkStrides[dim]!, targetPos + i * datasetStrides[dim]!);
  };
  const start = offsets.reduce((sum, o, i) => sum + o * datasetStrides[i]!, 0);
  walk(0, 0, start);
}

/** Undoes HDF5's shuffle filter: byte k of every element was stored in plane k. */
function unshuffle(data: Uint8Array, elementSize: number): Uint8Array {
  if (elementSize <= 1) return data;
  const count = Math.floor(data.length / elementSize);
  const out = new Uint8Array(data.length);
  for (let b = 0; b < elementSize; b++) {
    const plane = b * count;
    for (let i = 0; i < count; i++) out[i * elementSize + b] = data[plane + i]!;
  }
  out.set(data.subarray(count * elementSize), count * elementSize);
  return out;
}

function float16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x03ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

export { float16ToNumber };
