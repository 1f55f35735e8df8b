/**
 * Where tests and benchmarks find the project's read-only shared folder (real UCM images, the COCO caption
 * toolkit's golden scores, Meteor's resources, pretrained weights). The product never reads it: users do not have it.
 *
 * The folder is `S2CPNET_SHARED_DIR` when set, else `shared/` beside the repository (where CI puts it). There is no
 * machine-specific fallback. Outside CI a test whose data is absent is skipped; in CI (`CI=true`) an absent folder
 * is an error, so a test that needs shared data can never be skipped silently there.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root folder (this file is `scripts/shared-dir.ts`). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The shared folder's location whether or not it exists: `S2CPNET_SHARED_DIR`, else `../shared` beside the repository. */
export function sharedRoot(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['S2CPNET_SHARED_DIR'];
  return fromEnv ? resolve(fromEnv) : join(REPO_ROOT, '..', 'shared');
}

/**
 * The absolute path of `relative` inside the shared folder, or `undefined` when it is absent and this is not CI (the
 * caller skips its tests). In CI an absent path throws, naming what is missing and where it was looked for.
 */
export function sharedPath(relative: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const root = sharedRoot(env);
  const full = join(root, relative);
  if (existsSync(full)) return full;
  if (env['CI'] === 'true') {
    throw new Error(
      `shared test data ${relative} is missing: looked in ${full} (set S2CPNET_SHARED_DIR or put shared/ beside the repository); ` +
        'CI runs every test that needs it, none is skipped',
    );
  }
  return undefined;
}

/** The reason a test is skipped, for its title. */
export function skippedBecause(relative: string): string {
  return `skipped: ${relative} is absent from the shared folder (S2CPNET_SHARED_DIR or ../shared)`;
}
