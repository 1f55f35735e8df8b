import { defineConfig } from 'tsup';
import { packageBuildConfig } from '../../tsup.shared';

export default defineConfig(packageBuildConfig({ index: 'src/index.ts' }));
