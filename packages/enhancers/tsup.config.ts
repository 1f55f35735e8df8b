import { defineConfig } from 'tsup';
import { packageBuildConfig } from '../../tsup.shared';

// Code splitting keeps one copy of each class shared by the main entry and the subpaths, so
// `instanceof` holds whichever entry a user imports from.
export default defineConfig(
  packageBuildConfig(
    { index: 'src/index.ts', semantic: 'src/semantic.ts', spatial: 'src/spatial.ts' },
    { splitting: true },
  ),
);
