/*
 * Preload that lets @tensorflow/tfjs-backend-wasm 4.22 run its multi-threaded build under Node:
 *   node --require @s2cpnet/cli/wasm-threads app.js      (the s2cpnet command does this itself)
 *
 * tfjs turns threads off under Node (WASM_HAS_MULTITHREAD_SUPPORT is false there) because its threaded build
 * starts its workers from Blob URLs, which Node's worker_threads cannot load. This file:
 *  - writes those Blob sources to temporary files and hands out their paths instead of blob: URLs
 *    (in the main thread, and URL.createObjectURL passes paths through in the workers, which inherit --require);
 *  - doubles os.cpus() in the main thread: tfjs caps its XNNPACK pool at half the logical cores, which would give
 *    one thread on a 2-core machine.
 * `initBackend({ threads })` from @s2cpnet/cli sees the marker below and only then enables the threaded build.
 * It depends on the bundle layout of @tensorflow/tfjs-backend-wasm 4.22.0 (the version this toolkit pins).
 */
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { isMainThread } = require('node:worker_threads');

const originalCreateObjectURL = URL.createObjectURL;
URL.createObjectURL = (object) => (object instanceof String ? object.valueOf() : originalCreateObjectURL.call(URL, object));

if (isMainThread) {
  const NativeBlob = globalThis.Blob;
  let dir = null;
  let count = 0;
  const MODULE_HEADER = 'var WasmBackendModuleThreadedSimd';
  // Names the bundled worker source expects from the CommonJS wrapper it was cut out of.
  const MODULE_PRELUDE =
    "var require$$0=require('fs'),require$$1=require('path'),require$$3=require('perf_hooks'),require$$4=require('os'),commonjsGlobal=globalThis;";
  globalThis.Blob = class extends NativeBlob {
    constructor(parts, options) {
      super(parts, options);
      const source = Array.isArray(parts) && parts.length === 1 && typeof parts[0] === 'string' ? parts[0] : null;
      if (source !== null && (source.startsWith(MODULE_HEADER) || source.includes('WasmBackendModuleThreadedSimd(Module)'))) {
        if (dir === null) {
          dir = fs.mkdtempSync(path.join(os.tmpdir(), 's2cpnet-wasm-'));
          process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
        }
        const file = path.join(dir, `worker-${count++}.js`);
        fs.writeFileSync(file, (source.startsWith(MODULE_HEADER) ? MODULE_PRELUDE : '') + source);
        // A String object: URL.createObjectURL above turns it back into the file path.
        return new String(file);
      }
    }
  };
  const cpus = os.cpus;
  os.cpus = () => {
    const list = cpus.call(os);
    return [...list, ...list];
  };
  globalThis.__s2cpnetWasmThreads = { version: 1, logicalCores: cpus.call(os).length };
}

/** What the preload did, for callers that `require` it. */
module.exports = {
  active: isMainThread,
  logicalCores: isMainThread ? globalThis.__s2cpnetWasmThreads.logicalCores : undefined,
};
