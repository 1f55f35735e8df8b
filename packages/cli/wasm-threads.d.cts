/**
 * Preload for multi-threaded @tensorflow/tfjs-backend-wasm under Node: `node --require @s2cpnet/cli/wasm-threads app.js`.
 * Importing it has the same effect, as long as it runs before the wasm backend is first imported.
 */
declare const preload: {
  /** True in the main thread (where the patches were installed). */
  active: boolean;
  /** Logical cores as the machine reports them (the preload doubles what `os.cpus()` returns). */
  logicalCores: number | undefined;
};
export = preload;
