import { defineConfig } from 'tsup';
import { packageBuildConfig } from '../../tsup.shared';

// shims: the WordNet loader finds the package's data/ folder from import.meta.url, which tsup shims in the CJS build.
export default defineConfig(packageBuildConfig({ index: 'src/index.ts' }, { shims: true }));
