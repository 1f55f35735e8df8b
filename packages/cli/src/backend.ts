// Backend selection lives in `@s2cpnet/core/backend`, shared with the library (`loadCaptioner` sets a backend up
// itself); this module keeps `@s2cpnet/cli/backend` and `initBackend` from `@s2cpnet/cli` working.
export {
  BACKEND_NAMES,
  ensureBackend,
  initBackend,
  measureMatMulGflops,
  requestedThreads,
  wasmThreadsPreloaded,
  type BackendInfo,
  type BackendName,
  type InitBackendOptions,
} from '@s2cpnet/core/backend';
