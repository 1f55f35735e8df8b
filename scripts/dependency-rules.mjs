// The install rules for what our published packages pull in (checked by scripts/pack-smoke.mjs on the tree that
// `npm install <our tarballs>` really installs):
//   1. no dependency range without an upper bound (`latest`, `*`, `x`, `""`, a dist-tag, `>=1.2` alone, a URL or git
//      reference): such a range picks up the next major release on a user's machine, which is how a `tar: "latest"`
//      deep in @s2cpnet/metrics' tree broke every install when tar 8 came out;
//      (an optional peer dependency is exempt: npm never installs it for that range, and whoever does install it
//      declares their own range, which is checked where it is declared);
//   2. no install-time script (preinstall, install, postinstall, or an implicit `node-gyp rebuild` from a
//      binding.gyp), except the packages in INSTALL_SCRIPT_ALLOW_LIST, each with the reason it is safe offline.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

/**
 * Install scripts we accept, and why. sharp 0.34's `install` only checks that its prebuilt binary package
 * (@img/sharp-<platform>, an ordinary optional dependency from the registry) loads; it downloads nothing and builds
 * from source only when that check fails and node-gyp plus libvips are present.
 */
export const INSTALL_SCRIPT_ALLOW_LIST = new Map([
  ['sharp', 'install: `node install/check.js` verifies the prebuilt @img/sharp-* binary that npm installed from the registry; no download'],
  [
    'msgpackr-extract',
    "install: `node-gyp-build-optional-packages` loads the prebuilt @msgpackr-extract/* binary that npm installed from the registry; no download; it is an optional dependency of msgpackr (bullmq's encoder), so where it fails npm drops it and msgpackr runs in JavaScript",
  ],
]);

const LIFECYCLE_SCRIPTS = ['preinstall', 'install', 'postinstall'];

/** Why a comparator set (one side of `||`) has no upper bound, or null when it has one. */
function unboundedComparatorSet(set) {
  const text = set.trim().replace(/([<>=~^]+)\s+/g, '$1');
  if (text === '' || /^(\*|x|X|latest|next)$/.test(text)) return `"${text}" accepts every future version`;
  if (/^[a-z][a-z0-9+.-]*:/i.test(text) && !text.startsWith('npm:')) return `"${text}" is a URL or git reference, not a version range`;
  if (/^[A-Za-z][\w.-]*$/.test(text) && !/^v?\d/.test(text)) return `"${text}" is a dist-tag that moves with every release`;
  if (/\s-\s/.test(text)) return null; // hyphen range: both ends given
  const comparators = text.split(/\s+/).filter(Boolean);
  const hasLower = comparators.some((c) => /^>/.test(c));
  const hasUpper = comparators.some((c) => /^</.test(c) || /^[~^=v\d]/.test(c));
  if (hasLower && !hasUpper) return `"${text}" has a lower bound and no upper bound`;
  // `1.x`, `1.*`, `^1` and `~1.2` are bounded by their major (or minor); a bare `*` inside a set was handled above
  if (comparators.some((c) => /^[*xX]$/.test(c))) return `"${text}" accepts every future version`;
  return null;
}

/** Why a dependency range is unbounded, or null when every alternative of it has an upper bound. */
export function unboundedRange(range) {
  let text = String(range ?? '');
  const alias = /^npm:(?:@[^/]+\/)?[^@]+@(.*)$/.exec(text);
  if (alias) text = alias[1];
  else if (text.startsWith('npm:')) return `"${range}" is an alias without a version range`;
  for (const set of text.split('||')) {
    const reason = unboundedComparatorSet(set);
    if (reason) return reason;
  }
  return null;
}

/** Every installed package folder under a node_modules folder (scoped and nested ones too). */
export function installedPackages(nodeModules) {
  const found = [];
  const visit = (dir) => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      const full = path.join(dir, entry.name);
      if (entry.name.startsWith('@')) {
        visit(full);
        continue;
      }
      if (existsSync(path.join(full, 'package.json'))) found.push(full);
      visit(path.join(full, 'node_modules'));
    }
  };
  visit(nodeModules);
  return found;
}

/**
 * The problems of one installed package under the rules: its own dependency ranges (dependencies,
 * optionalDependencies, peerDependencies) and its install scripts. `where` names it in the messages.
 */
export function packageProblems(pkg, where, { hasBindingGyp = false } = {}) {
  const problems = [];
  const name = `${pkg.name}@${pkg.version} (${where})`;
  for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies']) {
    for (const [dep, range] of Object.entries(pkg[field] ?? {})) {
      if (field === 'peerDependencies' && pkg.peerDependenciesMeta?.[dep]?.optional === true) continue;
      const reason = unboundedRange(range);
      if (reason) problems.push(`${name}: ${field}.${dep}: ${reason}`);
    }
  }
  const scripts = LIFECYCLE_SCRIPTS.filter((s) => pkg.scripts?.[s]).map((s) => `${s}: ${pkg.scripts[s]}`);
  if (hasBindingGyp && !pkg.scripts?.install && !pkg.scripts?.preinstall) scripts.push('install: node-gyp rebuild (implicit, binding.gyp)');
  if (scripts.length && !INSTALL_SCRIPT_ALLOW_LIST.has(pkg.name)) {
    problems.push(`${name}: runs code at install time (${scripts.join('; ')}); not in the allow-list of scripts/dependency-rules.mjs`);
  }
  return problems;
}

/** Checks every package installed under `nodeModules`; returns the problems, each naming the package. */
export function checkInstalledTree(nodeModules) {
  const problems = [];
  const dirs = installedPackages(nodeModules);
  for (const dir of dirs) {
    const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
    problems.push(...packageProblems(pkg, path.relative(path.dirname(nodeModules), dir), { hasBindingGyp: existsSync(path.join(dir, 'binding.gyp')) }));
  }
  return { checked: dirs.length, problems };
}
