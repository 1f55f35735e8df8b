import { defineConfig } from 'tsup';
import { packageBuildConfig } from '../../tsup.shared';

export default defineConfig([
  { ...packageBuildConfig({ index: 'src/index.ts', backend: 'src/backend.ts' }), clean: false },
  // The executable: ESM only, with a shebang; not part of the library API.
  { ...packageBuildConfig({ bin: 'src/bin.ts' }), format: ['esm'], dts: false, clean: false },
]);
