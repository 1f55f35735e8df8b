/**
 * Read-only access to HDF5 files (Keras weight files and other simple files) through h5wasm, the HDF5 C library
 * compiled to WebAssembly.
 *
 * Every layout and feature of the HDF5 format that the library reads is supported (superblocks v0-v3, symbol-table,
 * compact and dense groups, compact/contiguous/chunked datasets with any chunk index, the deflate, shuffle and
 * fletcher32 filters). Element types: float16/32/64, (un)signed integers of 1-8 bytes, fixed- and variable-length
 * strings; datasets of other types (compound, enum, array, reference, ...) are listed with dtype `unsupported` and
 * cannot be read, attributes of those types (and float16 attributes) are left out. Soft links are followed; external
 * links and broken links are left out.
 *
 * The file is parsed in a worker thread, in the library's in-memory file system (it cannot open other files of the
 * host), and the values of all datasets are read at once: a corrupt file gives an `InputError` naming the file, and
 * a file on which the C library loops is given up after `timeoutMs`.
 */
import { readFile } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { InputError } from '@s2cpnet/core';
import { float16ToNumber } from './float16';

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

/** Values of a dataset: typed numbers (float16 as float32, 64-bit integers as float64, exact up to 2^53) or strings. */
export type Hdf5Data = Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | string[];

export type Hdf5AttributeValue = number | string | number[] | string[];

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

  /** The children: in creation order where the file tracks it, else sorted by name. */
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

  /** Every dataset below this group, depth first (one linked from several groups: once). */
  datasets(): Hdf5Dataset[] {
    const out: Hdf5Dataset[] = [];
    const seen = new Set<Hdf5Node>();
    const visit = (group: Hdf5Group) => {
      for (const child of group.childNodes.values()) {
        if (seen.has(child)) continue;
        seen.add(child);
        if (child.kind === 'dataset') out.push(child);
        else visit(child);
      }
    };
    visit(this);
    return out;
  }
}

/** A dataset: shape, element type, attributes and values. */
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

  /** All values in row-major order (a new array on every call). */
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

export interface ReadHdf5Options {
  /** Name of the file in error messages (default: the path; `<bytes>` for bytes). */
  fileName?: string;
  /** Give up (with an `InputError`) when parsing takes longer than this. Default 60 000 ms. */
  timeoutMs?: number;
  /** Refuse files whose datasets hold more than this many bytes in all. Default 2 GiB. */
  maxDataBytes?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_DATA_BYTES = 2 ** 31;
const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * Reads an HDF5 file (a path, or its bytes) into a tree of groups and datasets, values included.
 *
 * @example
 * ```ts
 * const file = await readHdf5('resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5');
 * const kernel = file.get('conv1_conv/conv1_conv/kernel:0'); // Hdf5Dataset, shape [7, 7, 3, 64]
 * ```
 */
export async function readHdf5(source: string | Uint8Array, options: ReadHdf5Options = {}): Promise<Hdf5File> {
  let bytes: Uint8Array;
  let fileName: string;
  if (typeof source === 'string') {
    fileName = options.fileName ?? source;
    try {
      bytes = await readFile(source);
    } catch (cause) {
      throw new InputError(`cannot read HDF5 file: ${(cause as Error).message}`, { file: fileName, cause });
    }
    // Handed over to the worker: it must own its whole ArrayBuffer (not a slice of Node's Buffer pool).
    if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength) bytes = new Uint8Array(bytes);
  } else {
    fileName = options.fileName ?? '<bytes>';
    bytes = new Uint8Array(source); // a copy (also of a Buffer): the caller's bytes stay usable
  }
  const superblockVersion = findSuperblockVersion(bytes);
  if (superblockVersion === undefined) throw new InputError('HDF5: not an HDF5 file (no HDF5 signature found)', { file: fileName });
  const reply = await parseInWorker(bytes, fileName, options);
  const root = buildTree(reply, fileName);
  if (root.kind !== 'group') throw new InputError('HDF5: the root object is not a group', { file: fileName });
  return { fileName, superblockVersion, root, get: (path: string) => (path === '/' || path === '' ? root : root.get(path)) };
}

/**
 * @deprecated Use `readHdf5(bytes, options)`. Kept for compatibility; now asynchronous (the HDF5 library is loaded
 * on first use).
 */
export function parseHdf5(bytes: Uint8Array, options: ReadHdf5Options = {}): Promise<Hdf5File> {
  return readHdf5(bytes, options);
}

export { float16ToNumber };

/** HDF5 looks for its signature at byte 0, 512, 1024, 2048, ...; the superblock version follows it. */
function findSuperblockVersion(bytes: Uint8Array): number | undefined {
  for (let at = 0; at + SIGNATURE.length < bytes.length; at = at === 0 ? 512 : at * 2) {
    if (SIGNATURE.every((b, i) => bytes[at + i] === b)) return bytes[at + SIGNATURE.length];
  }
  return undefined;
}

// ---- the tree sent by the worker -----------------------------------------------------------------------------------

type WireNode =
  | { kind: 'group'; name: string; attributes: Record<string, Hdf5AttributeValue>; children: WireNode[] }
  | { kind: 'dataset'; name: string; shape: number[]; dtype: Hdf5Dtype; attributes: Record<string, Hdf5AttributeValue>; raw?: ArrayBuffer; strings?: string[] }
  /** An object already met at the path `target` (several hard links, a soft link, a link cycle). */
  | { kind: 'link'; name: string; target: string };

/** Builds the tree; an object reached by several links is one node (a link back to an ancestor is left out). */
function buildTree(wire: WireNode, fileName: string): Hdf5Node {
  const byPath = new Map<string, Hdf5Node>();
  const links: { children: Map<string, Hdf5Node>; parentPath: string; name: string; target: string }[] = [];
  const build = (node: Exclude<WireNode, { kind: 'link' }>, path: string): Hdf5Node => {
    const built = buildNode(node, path, fileName, (children, name, target) => links.push({ children, parentPath: path, name, target }), build);
    byPath.set(path, built);
    return built;
  };
  const root = build(wire as Exclude<WireNode, { kind: 'link' }>, '/');
  for (const { children, parentPath, name, target } of links) {
    const cycle = target === '/' || parentPath === target || parentPath.startsWith(`${target}/`);
    const node = byPath.get(target);
    if (node && !cycle) children.set(name, node);
  }
  return root;
}

function buildNode(
  node: Exclude<WireNode, { kind: 'link' }>,
  path: string,
  fileName: string,
  addLink: (children: Map<string, Hdf5Node>, name: string, target: string) => void,
  build: (node: Exclude<WireNode, { kind: 'link' }>, path: string) => Hdf5Node,
): Hdf5Node {
  if (node.kind === 'group') {
    const children = new Map<string, Hdf5Node>();
    for (const child of node.children) {
      if (child.kind === 'link') addLink(children, child.name, child.target);
      else children.set(child.name, build(child, `${path === '/' ? '' : path}/${child.name}`));
    }
    return new Hdf5Group(node.name, path, node.attributes, children);
  }
  const { dtype, raw, strings } = node;
  const reader = (): Hdf5Data => {
    if (strings) return [...strings];
    if (!raw) throw new InputError(`HDF5: dataset ${path} has an unsupported element type`, { file: fileName });
    return decode(raw, dtype);
  };
  return new Hdf5Dataset(node.name, path, node.shape, dtype, node.attributes, reader);
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Decodes the worker's little-endian bytes into a new array. */
function decode(raw: ArrayBuffer, dtype: Hdf5Dtype): Hdf5Data {
  const view = new DataView(raw);
  const each = <T extends { [i: number]: number }>(out: T, bytes: number, get: (at: number) => number): T => {
    for (let i = 0; i * bytes < raw.byteLength; i++) out[i] = get(i * bytes);
    return out;
  };
  switch (dtype) {
    case 'int8':
      return new Int8Array(raw.slice(0));
    case 'uint8':
      return new Uint8Array(raw.slice(0));
    case 'float16':
      return each(new Float32Array(raw.byteLength / 2), 2, (at) => float16ToNumber(view.getUint16(at, true)));
    case 'int64':
      return each(new Float64Array(raw.byteLength / 8), 8, (at) => Number(view.getBigInt64(at, true)));
    case 'uint64':
      return each(new Float64Array(raw.byteLength / 8), 8, (at) => Number(view.getBigUint64(at, true)));
    case 'float32':
      return LITTLE_ENDIAN_HOST ? new Float32Array(raw.slice(0)) : each(new Float32Array(raw.byteLength / 4), 4, (at) => view.getFloat32(at, true));
    case 'float64':
      return LITTLE_ENDIAN_HOST ? new Float64Array(raw.slice(0)) : each(new Float64Array(raw.byteLength / 8), 8, (at) => view.getFloat64(at, true));
    case 'int16':
      return LITTLE_ENDIAN_HOST ? new Int16Array(raw.slice(0)) : each(new Int16Array(raw.byteLength / 2), 2, (at) => view.getInt16(at, true));
    case 'uint16':
      return LITTLE_ENDIAN_HOST ? new Uint16Array(raw.slice(0)) : each(new Uint16Array(raw.byteLength / 2), 2, (at) => view.getUint16(at, true));
    case 'int32':
      return LITTLE_ENDIAN_HOST ? new Int32Array(raw.slice(0)) : each(new Int32Array(raw.byteLength / 4), 4, (at) => view.getInt32(at, true));
    case 'uint32':
      return LITTLE_ENDIAN_HOST ? new Uint32Array(raw.slice(0)) : each(new Uint32Array(raw.byteLength / 4), 4, (at) => view.getUint32(at, true));
    default:
      throw new Error(`unexpected dtype ${dtype}`);
  }
}

// ---- the worker ----------------------------------------------------------------------------------------------------

type Reply = { id: number; ok: true; root: WireNode } | { id: number; ok: false; message: string };

/** How long an idle worker (and its loaded HDF5 library) is kept for the next file. */
const IDLE_MS = 10_000;

let current: { worker: Worker; ready: Promise<void>; idleTimer?: NodeJS.Timeout } | undefined;
let queue: Promise<unknown> = Promise.resolve();
let nextId = 1;

function startWorker(): NonNullable<typeof current> {
  // Beside this module: src/weights/ in the sources, dist/ when built (tsup.config.ts copies it there).
  // No inherited Node flags: the worker needs none, and some break it (`node --input-type=module -e ...`).
  const worker = new Worker(new URL('./hdf5-worker.mjs', import.meta.url), { execArgv: [] });
  const ready = new Promise<void>((resolve, reject) => {
    const onMessage = (m: { ready?: boolean }) => {
      if (!m.ready) return;
      worker.off('error', reject);
      worker.off('message', onMessage);
      resolve();
    };
    worker.on('message', onMessage);
    worker.once('error', reject);
  });
  const entry: NonNullable<typeof current> = { worker, ready };
  // An error between files (none is expected) only retires the worker; a file in progress sees it too.
  worker.on('error', () => discard(entry));
  worker.once('exit', () => {
    if (current === entry) current = undefined;
  });
  return entry;
}

function discard(entry: NonNullable<typeof current>): void {
  if (current === entry) current = undefined;
  clearTimeout(entry.idleTimer);
  void entry.worker.terminate();
}

/** One file at a time per worker: the timeout covers this file's parse only. */
function parseInWorker(bytes: Uint8Array, fileName: string, options: ReadHdf5Options): Promise<WireNode> {
  const run = () => parseNow(bytes, fileName, options);
  const result = queue.then(run, run);
  queue = result.catch(() => undefined);
  return result;
}

async function parseNow(bytes: Uint8Array, fileName: string, options: ReadHdf5Options): Promise<WireNode> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const entry = current ?? (current = startWorker());
  clearTimeout(entry.idleTimer);
  entry.worker.ref();
  try {
    await entry.ready;
  } catch (cause) {
    discard(entry);
    throw new Error(`cannot start the HDF5 reader (h5wasm): ${(cause as Error).message}`, { cause });
  }
  const id = nextId++;
  const reply = await new Promise<Reply | 'timeout' | Error>((resolve) => {
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    const onMessage = (m: Reply) => {
      if (m.id === id) finish(m);
    };
    const onError = (error: Error) => finish(error);
    const onExit = (code: number) => finish(new Error(`the HDF5 worker stopped (exit code ${code})`));
    function finish(value: Reply | 'timeout' | Error) {
      clearTimeout(timer);
      entry.worker.off('message', onMessage).off('error', onError).off('exit', onExit);
      resolve(value);
    }
    entry.worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    entry.worker.postMessage({ id, bytes: bytes.buffer, maxDataBytes: options.maxDataBytes ?? DEFAULT_MAX_DATA_BYTES }, [bytes.buffer as ArrayBuffer]);
  });
  if (reply === 'timeout') {
    discard(entry);
    throw new InputError(`HDF5: gave up after ${timeoutMs} ms (a corrupt file can make the HDF5 library loop)`, { file: fileName });
  }
  if (reply instanceof Error) {
    discard(entry);
    throw new InputError(`HDF5: the reader failed: ${reply.message}`, { file: fileName, cause: reply });
  }
  if (!reply.ok) {
    // The C library may be left in an inconsistent state by a failed parse: the next file gets a fresh worker.
    discard(entry);
    throw new InputError(`HDF5: ${reply.message}`, { file: fileName });
  }
  entry.worker.unref();
  entry.idleTimer = setTimeout(() => discard(entry), IDLE_MS);
  entry.idleTimer.unref();
  return reply.root;
}
