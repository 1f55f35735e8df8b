// Worker thread of `readHdf5` (./hdf5.ts): parses one HDF5 file at a time with h5wasm (the HDF5 C library compiled
// to WebAssembly). It runs in a worker so that the main thread can give up on a file that makes the C library loop
// (terminating the worker) and so that the ESM-only h5wasm package also serves the CommonJS build. Plain JavaScript:
// Node runs it as is, from src/ in tests and from dist/ (copied by tsup.config.ts) when installed.
//
// Request: { id, bytes: ArrayBuffer, maxDataBytes }. Reply: { id, ok: true, root } or { id, ok: false, message }; after
// a failure the main thread discards this worker (the C library's state may be left inconsistent).
// A node of `root` is { kind: 'group', name, attributes, children },
// { kind: 'dataset', name, shape, dtype, attributes, raw?: ArrayBuffer (little-endian), strings?: string[] } or
// { kind: 'link', name, target } for an object already met at the path `target`.
import { parentPort } from 'node:worker_threads';
// The browser/ESM build keeps files in Emscripten's in-memory file system: the C library sees only the file it is
// given (an external link or external storage in an untrusted file cannot reach the host's files).
import * as h5wasm from 'h5wasm';

const MAX_DEPTH = 64;
const MAX_NODES = 200_000;
const FILE = '/input.h5';
const H5T_INTEGER = 0;
const H5T_FLOAT = 1;
const H5T_STRING = 3;

const { FS } = await h5wasm.ready;

// The C library prints its error stack to stderr; collect it instead (it names the cause, e.g. a truncated file).
let diagnostics = [];
FS.createDevice('/dev', 'h5diag', null, (byte) => {
  if (byte !== null && byte !== undefined && diagnostics.length < 65536) diagnostics.push(byte);
});
FS.close(FS.streams[2]);
if (FS.open('/dev/h5diag', 'w').fd !== 2) throw new Error('h5wasm: could not redirect stderr');

class FileError extends Error {}

/** The innermost cause of the first HDF5 error stack printed since the last reset, or undefined. */
function diagnostic() {
  if (diagnostics.length === 0) return undefined;
  const text = new TextDecoder().decode(new Uint8Array(diagnostics));
  const firstStack = text.split('HDF5-DIAG')[1] ?? text;
  const causes = [...firstStack.matchAll(/#\d+: .* in ([\w]+)\(\): (.*)/g)].map((m) => m[2].trim());
  return causes.at(-1) ?? text.trim().split('\n')[0];
}

/** Runs one step of the parse; a failure (or an HDF5 error stack printed meanwhile) becomes `where: cause`. */
function step(where, fn) {
  let value;
  try {
    value = fn();
  } catch (error) {
    if (error instanceof FileError) throw error;
    // h5wasm's own messages say little ("error - name not defined!"): prefer the C library's stated cause.
    throw new FileError(`${where}: ${diagnostic() ?? String(error?.message ?? error)}`);
  }
  const cause = diagnostic();
  if (cause !== undefined) throw new FileError(`${where}: ${cause}`);
  return value;
}

function dtypeOf(m) {
  if (m.type === H5T_FLOAT) return { 2: 'float16', 4: 'float32', 8: 'float64' }[m.size] ?? 'unsupported';
  if (m.type === H5T_INTEGER && [1, 2, 4, 8].includes(m.size)) return `${m.signed ? 'int' : 'uint'}${m.size * 8}`;
  if (m.type === H5T_STRING) return m.vlen ? 'vlen-string' : 'string';
  return 'unsupported';
}

/** number | string | number[] | string[]; undefined for types the reader leaves out (like the old reader did). */
function attributeValue(attribute) {
  const m = attribute.metadata;
  if (m.shape === null) return [];
  const dtype = dtypeOf(m);
  if (dtype === 'unsupported' || dtype === 'float16') return undefined;
  const value = attribute.json_value;
  const scalar = (v) => (typeof v === 'bigint' ? Number(v) : v);
  if (typeof value === 'number' || typeof value === 'string' || typeof value === 'bigint') return scalar(value);
  if (value !== null && typeof value === 'object' && typeof value.length === 'number') return Array.from(value, scalar);
  return undefined;
}

function attributesOf(object, path) {
  const out = {};
  const attributes = step(`attributes of ${path}`, () => Object.entries(object.attrs));
  for (const [name, attribute] of attributes) {
    const value = step(`attribute '${name}' of ${path}`, () => attributeValue(attribute));
    if (value !== undefined) out[name] = value;
  }
  return out;
}

function readRaw(file, path, bytes) {
  const { Module } = h5wasm;
  if (bytes === 0) return new ArrayBuffer(0);
  const pointer = Module._malloc(bytes);
  if (!pointer) throw new FileError(`dataset ${path}: cannot allocate ${bytes} bytes`);
  try {
    const status = step(`dataset ${path}`, () => Module.get_dataset_data(file.file_id, path, null, null, null, BigInt(pointer)));
    if (status < 0) throw new FileError(`dataset ${path}: the data cannot be read (status ${status})`);
    return Module.HEAPU8.slice(pointer, pointer + bytes).buffer;
  } finally {
    Module._free(pointer);
  }
}

function parse(maxDataBytes) {
  const file = step('cannot open the file', () => new h5wasm.File(FILE, 'r'));
  const transfer = [];
  let nodes = 0;
  let dataBytes = 0;
  // Object address -> path of its first visit: an object reached again (several hard links, a soft link, a link
  // cycle) becomes a link to that path instead of being parsed again.
  const firstPath = new Map();
  const address = (path) => step(`object ${path}`, () => h5wasm.Module.create_object_reference(file.file_id, path).join(','));
  try {
    const visit = (object, name, path, depth) => {
      if (++nodes > MAX_NODES) throw new FileError(`more than ${MAX_NODES} groups, datasets and links`);
      const attributes = attributesOf(object, path);
      if (object instanceof h5wasm.Group) {
        if (depth > MAX_DEPTH) throw new FileError(`group ${path.slice(0, 200)}... is nested more than ${MAX_DEPTH} levels deep`);
        const children = [];
        const names = step(`group ${path}`, () => object.keys());
        for (const childName of names) {
          const childPath = `${path === '/' ? '' : path}/${childName}`;
          const child = step(`object ${childPath}`, () => object.get(childPath));
          // Broken or external links and named datatypes are not groups or datasets: left out.
          if (!(child instanceof h5wasm.Group || child instanceof h5wasm.Dataset)) continue;
          const key = address(childPath);
          const seen = firstPath.get(key);
          if (seen !== undefined) {
            if (++nodes > MAX_NODES) throw new FileError(`more than ${MAX_NODES} groups, datasets and links`);
            children.push({ kind: 'link', name: childName, target: seen });
            continue;
          }
          firstPath.set(key, childPath);
          children.push(visit(child, childName, childPath, depth + 1));
        }
        return { kind: 'group', name, attributes, children };
      }
      const metadata = step(`dataset ${path}`, () => object.metadata);
      const shape = metadata.shape === null ? [0] : metadata.shape.map(Number);
      const dtype = dtypeOf(metadata);
      const node = { kind: 'dataset', name, shape, dtype, attributes };
      if (dtype === 'unsupported') return node;
      const bytes = metadata.shape === null ? 0 : metadata.size * metadata.total_size;
      dataBytes += bytes;
      if (dataBytes > maxDataBytes) {
        throw new FileError(`dataset ${path}: the datasets hold more than ${maxDataBytes} bytes (the limit; see the maxDataBytes option)`);
      }
      if (dtype === 'string' || dtype === 'vlen-string') {
        const value = metadata.shape === null ? [] : step(`dataset ${path}`, () => object.value);
        node.strings = typeof value === 'string' ? [value] : Array.from(value ?? [], String);
      } else {
        node.raw = readRaw(file, path, bytes);
        transfer.push(node.raw);
      }
      return node;
    };
    firstPath.set(address('/'), '/');
    const root = visit(file, '', '/', 0);
    step('closing the file', () => file.close());
    return { root, transfer };
  } catch (error) {
    try {
      file.close();
    } catch {
      // the worker is discarded after a failure anyway
    }
    throw error;
  }
}

parentPort.on('message', ({ id, bytes, maxDataBytes }) => {
  diagnostics = [];
  try {
    FS.writeFile(FILE, new Uint8Array(bytes), { canOwn: true }); // the transferred buffer: no copy
    const { root, transfer } = parse(maxDataBytes);
    parentPort.postMessage({ id, ok: true, root }, transfer);
  } catch (error) {
    parentPort.postMessage({ id, ok: false, message: String(error?.message ?? error) });
  } finally {
    diagnostics = [];
    try {
      FS.unlink(FILE);
    } catch {
      // not written
    }
  }
});
parentPort.postMessage({ ready: true });
