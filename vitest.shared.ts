import { defineConfig } from 'vitest/config';

/** Test settings every package shares: source-condition resolution, forked workers, long tfjs timeouts. */
export function packageTestConfig(options: { timeoutMs?: number } = {}) {
  return defineConfig({
    resolve: { conditions: ['@s2cpnet/source', 'module', 'import', 'default'] },
    ssr: { resolve: { conditions: ['@s2cpnet/source', 'node', 'import', 'default'] } },
    test: {
      include: ['src/**/*.test.ts'],
      pool: 'forks',
      testTimeout: options.timeoutMs ?? 120_000,
      hookTimeout: 120_000,
      env: { S2CPNET_QUIET: '1' },
    },
  });
}
