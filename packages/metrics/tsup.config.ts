import { defineConfig } from 'tsup';
import { packageBuildConfig } from '../../tsup.shared';

// shims: the WordNet loader resolves its data packages from import.meta.url, which tsup shims in the CJS build.
export default defineConfig(packageBuildConfig({ index: 'src/index.ts' }, { shims: true }));
