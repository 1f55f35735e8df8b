import type { Options } from 'tsup';

/** Externals that must never be bundled: tfjs (one engine per process) and the optional native backends. */
export const tfjsExternals = [
  /^@tensorflow\//,
  /^@s2cpnet\//,
];

export function packageBuildConfig(entry: Record<string, string> | string[], extra: Partial<Options> = {}): Options {
  return {
    entry,
    format: ['esm', 'cjs'],
    dts: { compilerOptions: { customConditions: [] } },
    sourcemap: true,
    clean: true,
    target: 'node20',
    tsconfig: 'tsconfig.build.json',
    external: tfjsExternals,
    splitting: false,
    treeshake: false,
    shims: true,
    ...extra,
  };
}
