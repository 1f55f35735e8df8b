import { ConfigError } from '@s2cpnet/core';

/** How to install onnxruntime-node offline-safely (its install script would otherwise download CUDA libraries). */
export const ORT_INSTALL_HINT = 'ONNXRUNTIME_NODE_INSTALL=skip npm i onnxruntime-node@~1.31.1';

/**
 * Imports onnxruntime-node (an optional peer dependency) with `importer`, unwrapping a CommonJS `default`; a missing
 * package is a `ConfigError` at `jsonPath` that names `who` needs it and how to install it. The one loader of the
 * package: the captioning runtime and the SAM mask provider both use it.
 */
export async function loadOnnxRuntimeModule<T extends { InferenceSession: unknown; Tensor: unknown }>(
  importer: () => Promise<unknown>,
  who: string,
  jsonPath: string,
): Promise<T> {
  let loaded: unknown;
  try {
    loaded = await importer();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    const message = String((error as Error | undefined)?.message ?? error);
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' || /onnxruntime-node/.test(message)) {
      throw new ConfigError(
        jsonPath,
        `${who} needs the optional package onnxruntime-node, which is not installed (${message.split('\n')[0]}). Install it with: ` +
          `${ORT_INSTALL_HINT} (the skip setting stops its install script from downloading CUDA libraries; the CPU runtime ships in the package)`,
        { cause: error },
      );
    }
    throw error;
  }
  const module = loaded as Partial<T> & { default?: Partial<T> };
  const runtime = module.InferenceSession && module.Tensor ? module : module.default;
  if (!runtime?.InferenceSession || !runtime.Tensor) {
    throw new ConfigError(jsonPath, `onnxruntime-node loaded but exports no InferenceSession/Tensor; reinstall it: ${ORT_INSTALL_HINT}`);
  }
  return runtime as T;
}
