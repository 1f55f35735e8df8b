#!/usr/bin/env node
// The `s2cpnet` executable that npm links into node_modules/.bin. It is a committed file, not a build output: npm
// links a package's bins at install time and skips a bin whose file does not exist yet, so in a fresh clone of the
// repository (`npm ci`, then the build) a bin pointing into dist/ would be missing and `npx s2cpnet` would ask the
// public registry for a package of that name instead of running this one.
import { existsSync } from 'node:fs';

const target = new URL('../dist/bin.js', import.meta.url);
if (!existsSync(target)) {
  process.stderr.write(
    `s2cpnet: the command is not built (${decodeURIComponent(target.pathname)} is missing). ` +
      'In a clone of the repository run `npm run build` first; an installed @s2cpnet/cli always ships it.\n',
  );
  process.exit(1);
}
await import(target.href);
