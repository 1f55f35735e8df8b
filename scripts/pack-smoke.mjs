#!/usr/bin/env node
// Packs every publishable package with `npm pack`, installs the tarballs into a fresh project in a temp folder
// outside the workspace, and imports each one with ESM `import` and CJS `require`. Also runs publint and
// are-the-types-wrong on each tarball, and applies the install rules of scripts/dependency-rules.mjs to everything
// the tarballs pull in. Needs the packages built (`npm run build`).
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { checkInstalledTree, INSTALL_SCRIPT_ALLOW_LIST } from './dependency-rules.mjs';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });

const packages = readdirSync(path.join(root, 'packages'))
  .map((name) => path.join(root, 'packages', name))
  .filter((dir) => existsSync(path.join(dir, 'package.json')))
  .map((dir) => ({ dir, pkg: JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) }))
  .filter(({ pkg }) => !pkg.private);

const work = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-pack-'));
const problems = [];
try {
  const tarballs = [];
  for (const { dir, pkg } of packages) {
    if (!existsSync(path.join(dir, 'dist'))) {
      problems.push(`${pkg.name}: not built (no dist/)`);
      continue;
    }
    const out = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], dir));
    const tarball = path.join(work, out[0].filename);
    tarballs.push({ name: pkg.name, tarball, pkg });
    console.log(`packed ${pkg.name}: ${out[0].filename} (${out[0].entryCount} files, ${(out[0].size / 1024).toFixed(0)} KiB)`);
    try {
      run('npx', ['publint', '--strict', tarball], root);
    } catch (error) {
      problems.push(`${pkg.name}: publint: ${error.stdout || error.message}`);
    }
    try {
      run('npx', ['attw', '--profile', 'node16', '--format', 'ascii', tarball], root);
    } catch (error) {
      problems.push(`${pkg.name}: attw: ${error.stdout || error.message}`);
    }
  }
  const app = path.join(work, 'app');
  run('mkdir', ['-p', app], work);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'pack-smoke', private: true, version: '0.0.0' }, null, 2));
  console.log(`installing ${tarballs.length} tarballs into ${app}`);
  // First without running any package's scripts, so that the install rules can name the package that breaks them
  // even when its script would crash the install; then `npm rebuild` runs the install scripts a user's install runs.
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', ...tarballs.map((t) => t.tarball)], app);
  const rules = checkInstalledTree(path.join(app, 'node_modules'));
  for (const problem of rules.problems) problems.push(`install rules: ${problem}`);
  console.log(`install rules: ${rules.checked} installed packages checked (bounded ranges; install scripts only from ${[...INSTALL_SCRIPT_ALLOW_LIST.keys()].join(', ')}): ${rules.problems.length} problem(s)`);
  try {
    run('npm', ['rebuild', '--no-audit', '--no-fund'], app);
  } catch (error) {
    problems.push(`npm rebuild (the install scripts a user's install runs) failed: ${(error.stderr || error.message).split('\n').slice(-8).join('\n')}`);
  }
  for (const { name, pkg } of tarballs) {
    const subpaths = Object.keys(pkg.exports ?? { '.': {} }).filter((k) => k !== './package.json');
    for (const sub of subpaths) {
      const spec = sub === '.' ? name : `${name}/${sub.slice(2)}`;
      // testing helpers import the backend packages (dev only); they need a backend installed: skip their load
      if (sub === './testing') continue;
      const esm = `const m = await import(${JSON.stringify(spec)}); const n = Object.keys(m).length; if (n === 0) throw new Error('no exports'); console.log('esm', ${JSON.stringify(spec)}, n);`;
      const cjs = `const m = require(${JSON.stringify(spec)}); const n = Object.keys(m).length; if (n === 0) throw new Error('no exports'); console.log('cjs', ${JSON.stringify(spec)}, n);`;
      for (const [kind, args] of [['esm', ['--input-type=module', '-e', esm]], ['cjs', ['-e', cjs]]]) {
        try {
          process.stdout.write(run('node', args, app));
        } catch (error) {
          problems.push(`${spec} (${kind}): ${(error.stderr || error.message).split('\n').slice(0, 6).join('\n')}`);
        }
      }
    }
  }
  const bin = path.join(app, 'node_modules', '.bin', 's2cpnet');
  if (existsSync(bin)) {
    try {
      process.stdout.write(`s2cpnet --version: ${run(bin, ['--version'], app)}`);
      const doctor = JSON.parse(run(bin, ['doctor', '--json'], app));
      if (doctor.backend !== 'wasm') problems.push(`s2cpnet doctor picked ${doctor.backend}, expected wasm in the installed project`);
      console.log(`s2cpnet doctor --json: backend ${doctor.backend}, threads ${doctor.threads}, matmul ${doctor.matmulGflops} GFLOP/s`);
    } catch (error) {
      problems.push(`s2cpnet binary: ${error.stderr || error.message}`);
    }
  } else problems.push('s2cpnet binary not installed by @s2cpnet/cli');
} finally {
  rmSync(work, { recursive: true, force: true });
}
if (problems.length) {
  console.error(`pack smoke test: ${problems.length} problem(s)`);
  for (const p of problems) console.error(`  - ${p}`);
  process.exit(1);
}
console.log(`pack smoke test: ${packages.length} packages packed, installed and imported (ESM and CJS)`);
