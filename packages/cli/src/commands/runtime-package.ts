/**
 * `@s2cpnet/runtime-onnx` (ONNX export and ONNX Runtime captioning) is an optional peer of the CLI: `export --format
 * onnx` and `--runtime onnx|auto` load it on first use, and its absence is a message naming what to install.
 */
import * as path from 'node:path';
import { ConfigError } from '@s2cpnet/core';

export type RuntimeOnnxPackage = typeof import('@s2cpnet/runtime-onnx');

/** How to install the ONNX runtime pieces, offline-safe. */
export const ONNX_INSTALL_HINT =
  'ONNXRUNTIME_NODE_INSTALL=skip npm install @s2cpnet/runtime-onnx onnxruntime-node@~1.31.1 ' +
  "(the skip setting stops onnxruntime-node's install script from downloading CUDA libraries; its CPU runtime ships inside the package)";

/** Loads `@s2cpnet/runtime-onnx`; `importer` is for tests. */
export async function loadRuntimeOnnxPackage(importer: () => Promise<RuntimeOnnxPackage> = () => import('@s2cpnet/runtime-onnx')): Promise<RuntimeOnnxPackage> {
  try {
    return await importer();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && /@s2cpnet\/runtime-onnx/.test(String((error as Error).message))) {
      throw new ConfigError('runtime', `ONNX export and the onnx runtime need the optional package @s2cpnet/runtime-onnx: ${ONNX_INSTALL_HINT}`, { cause: error });
    }
    throw error;
  }
}

/** The flags of the commands that caption (`caption`, `evaluate`), for `parseArgs`. */
export const RUNTIME_FLAGS = {
  runtime: { type: 'string' },
  'ort-provider': { type: 'string' },
} as const;

export const RUNTIME_HELP = `  --runtime R               tfjs | onnx | auto: onnx runs the checkpoint's ONNX export (s2cpnet export --format
                            onnx) in ONNX Runtime; auto picks onnx when @s2cpnet/runtime-onnx, onnxruntime-node
                            and an export are present [default: tfjs]
  --ort-provider P          onnx runtime: cpu | cuda | webgpu [default: cpu]`;

export const RUNTIMES = ['tfjs', 'onnx', 'auto'] as const;

/**
 * Which runtime runs a checkpoint: `--runtime` (default tfjs); `auto` is onnx when the optional packages are
 * installed and `ref` has an ONNX export, else tfjs.
 */
export async function chooseRuntime(
  values: { runtime?: string; 'ort-provider'?: string },
  ref: string,
  cwd: string,
  importer?: () => Promise<RuntimeOnnxPackage>,
): Promise<{ runtime: 'tfjs' } | { runtime: 'onnx'; pkg: RuntimeOnnxPackage; provider: 'cpu' | 'cuda' | 'webgpu' }> {
  const wanted = values.runtime ?? 'tfjs';
  if (!(RUNTIMES as readonly string[]).includes(wanted)) throw new ConfigError('--runtime', `expected one of ${RUNTIMES.join(', ')}, found ${JSON.stringify(wanted)}`);
  const provider = values['ort-provider'] ?? 'cpu';
  if (!['cpu', 'cuda', 'webgpu'].includes(provider)) throw new ConfigError('--ort-provider', `expected cpu, cuda or webgpu, found ${JSON.stringify(provider)}`);
  if (values['ort-provider'] !== undefined && wanted === 'tfjs') throw new ConfigError('--ort-provider', 'only used with --runtime onnx or auto');
  if (wanted === 'tfjs') return { runtime: 'tfjs' };
  let pkg: RuntimeOnnxPackage;
  try {
    pkg = await loadRuntimeOnnxPackage(importer);
  } catch (error) {
    if (wanted === 'auto') return { runtime: 'tfjs' };
    throw error;
  }
  if (wanted === 'auto') {
    if (!pkg.haveOnnxRuntime() || pkg.findOnnxExport(ref, cwd) === null) return { runtime: 'tfjs' };
  } else if (!pkg.haveOnnxRuntime()) {
    throw new ConfigError('--runtime', `onnx needs onnxruntime-node: ${ONNX_INSTALL_HINT}`);
  }
  return { runtime: 'onnx', pkg, provider: provider as 'cpu' | 'cuda' | 'webgpu' };
}

/** The flags of a SAM-class mask model (`--masks sam --sam-encoder F --sam-decoder F`), for `parseArgs`. */
export const SAM_FLAGS = {
  'sam-encoder': { type: 'string' },
  'sam-decoder': { type: 'string' },
  'sam-points': { type: 'string' },
} as const;

/** A SAM mask provider the command disposes when it is done. */
export type SamProvider = Awaited<ReturnType<RuntimeOnnxPackage['createSamMaskProvider']>>;

/**
 * The SAM-class mask provider of `--masks sam` (null for other `--masks` values): `--sam-encoder` and
 * `--sam-decoder` are the two ONNX files (see @s2cpnet/runtime-onnx's SAM.md for the recipe), `--sam-points` the
 * points per side of the prompt grid.
 */
export async function samProviderFromFlags(
  values: { masks?: string; 'sam-encoder'?: string; 'sam-decoder'?: string; 'sam-points'?: string },
  cwd: string,
  threads?: number,
): Promise<SamProvider | null> {
  const wantsSam = values.masks === 'sam';
  for (const flag of ['sam-encoder', 'sam-decoder', 'sam-points'] as const) {
    if (values[flag] !== undefined && !wantsSam) throw new ConfigError(`--${flag}`, 'only used with --masks sam');
  }
  if (!wantsSam) return null;
  if (!values['sam-encoder'] || !values['sam-decoder']) {
    throw new ConfigError('--masks', 'sam needs --sam-encoder FILE.onnx and --sam-decoder FILE.onnx (a SAM or MobileSAM export; see the SAM recipe of @s2cpnet/runtime-onnx)');
  }
  let pointsPerSide: number | undefined;
  if (values['sam-points'] !== undefined) {
    pointsPerSide = Number(values['sam-points']);
    if (!/^\d+$/.test(values['sam-points']) || pointsPerSide < 1) throw new ConfigError('--sam-points', `expected a positive integer, found ${JSON.stringify(values['sam-points'])}`);
  }
  const pkg = await loadRuntimeOnnxPackage();
  return pkg.createSamMaskProvider({
    encoder: path.resolve(cwd, values['sam-encoder']),
    decoder: path.resolve(cwd, values['sam-decoder']),
    ...(pointsPerSide ? { pointsPerSide } : {}),
    ...(threads ? { intraOpNumThreads: threads } : {}),
  });
}
