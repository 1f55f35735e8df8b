/**
 * @s2cpnet/cli: the `s2cpnet` command and the backend start-up used by examples.
 *
 * @example
 * ```ts
 * import { initBackend } from '@s2cpnet/cli';
 * const info = await initBackend(); // tensorflow (if installed) > wasm > cpu
 * console.log(info.backend, info.threads);
 * ```
 * @packageDocumentation
 */
export { initBackend, measureMatMulGflops, BACKEND_NAMES } from './backend';
export type { BackendName, BackendInfo, InitBackendOptions } from './backend';
export { main } from './main';
export { maskSizeFor } from './commands/caption';
export type { Command, CommandContext } from './command';
export { ExitCode } from './command';
export { VERSION } from './version';
