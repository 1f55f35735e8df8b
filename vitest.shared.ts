import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configDefaults, defineConfig } from 'vitest/config';

/** `*.webgpu.test.ts` files run only in the webgpu group (`S2CPNET_TEST_BACKENDS=webgpu`, a step of `npm test`). */
const webgpuGroup = (process.env['S2CPNET_TEST_BACKENDS'] ?? '').split(',').map((s) => s.trim()).includes('webgpu');

/** Test settings every package shares: source-condition resolution, forked workers, long tfjs timeouts. */
export function packageTestConfig(options: { timeoutMs?: number } = {}) {
  return defineConfig({
    resolve: { conditions: ['@s2cpnet/source', 'module', 'import', 'default'] },
    ssr: { resolve: { conditions: ['@s2cpnet/source', 'node', 'import', 'default'] } },
    test: {
      include: ['src/**/*.test.ts'],
      exclude: [...configDefaults.exclude, ...(webgpuGroup ? [] : ['src/**/*.webgpu.test.ts'])],
      pool: 'forks',
      testTimeout: options.timeoutMs ?? 120_000,
      hookTimeout: 120_000,
      // caches of caption/evaluate go to a temp folder, never the user's ~/.cache (tests that test the default clear it)
      env: { S2CPNET_QUIET: '1', S2CPNET_CACHE_DIR: join(tmpdir(), `s2cpnet-test-cache-${process.pid}`) },
    },
  });
}
