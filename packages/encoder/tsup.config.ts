import { copyFile } from 'node:fs/promises';
import { defineConfig } from 'tsup';
import { packageBuildConfig } from '../../tsup.shared';

export default defineConfig(
  packageBuildConfig(
    { index: 'src/index.ts' },
    {
      // The HDF5 reader's worker is plain ESM that Node runs as is (src/ in tests, dist/ when installed): both builds
      // start it from beside their own file.
      onSuccess: async () => copyFile('src/weights/hdf5-worker.mjs', 'dist/hdf5-worker.mjs'),
    },
  ),
);
