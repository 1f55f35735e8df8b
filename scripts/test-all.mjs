#!/usr/bin/env node
// The project's test command (`npm test`): build, typecheck, lint and module boundaries, the repository checks (no
// absolute paths, the README's commands, the scripts' own tests), every package's vitest suite (on the cpu and wasm
// backends), the webgpu group (on Dawn over Mesa without a GPU), the examples, and the pack-and-install smoke test with the install rules. Prints one closing line
// "N passed, N failed" and exits non-zero when anything fails.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const env = { ...process.env, NX_NO_CLOUD: 'true', NX_DAEMON: 'false', NX_TUI: 'false', FORCE_COLOR: '0' };
let passed = 0;
let failed = 0;
const failures = [];
const started = Date.now();

function step(title, command, args, options = {}) {
  const t0 = Date.now();
  process.stdout.write(`\n=== ${title}\n$ ${command} ${args.join(' ')}\n`);
  const result = spawnSync(command, args, { cwd: options.cwd ?? root, env, stdio: 'inherit' });
  const ok = result.status === 0;
  process.stdout.write(`=== ${title}: ${ok ? 'ok' : `FAILED (exit ${result.status ?? result.signal})`} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  return ok;
}

function countStep(title, command, args, options) {
  if (step(title, command, args, options)) passed += 1;
  else {
    failed += 1;
    failures.push(title);
  }
}

const npx = 'npx';
// CI runs cold: no result is taken from nx's local cache there
const nxCache = process.env.CI === 'true' ? ['--skip-nx-cache'] : [];
countStep('build all packages', npx, ['nx', 'run-many', '-t', 'build', '--outputStyle=static', ...nxCache]);
countStep('typecheck', npx, ['nx', 'run-many', '-t', 'typecheck', '--outputStyle=static', ...nxCache]);
countStep('lint (publint)', npx, ['nx', 'run-many', '-t', 'lint', '--outputStyle=static', ...nxCache]);
countStep('module boundaries', 'node', ['scripts/check-boundaries.mjs']);
countStep('API docs build without a warning (typedoc, packages mode)', npx, ['typedoc', '--emit', 'none', '--treatWarningsAsErrors']);
countStep('no absolute paths of a machine in tracked files', 'node', ['scripts/check-absolute-paths.mjs']);
countStep('metrics: the shipped WordNet 3.0 data rebuilds byte for byte from the WordNet 3.0 files', 'node', ['scripts/build-wordnet.mjs', '--check'], { cwd: path.join(root, 'packages', 'metrics') });
countStep('README commands: npx s2cpnet is this checkout\'s CLI; every verb and flag shown exists', 'node', ['scripts/check-readme-commands.mjs']);

// The repository scripts' own tests (node's test runner), counted test by test.
{
  const scriptTests = readdirSync(path.join(root, 'scripts')).filter((f) => f.endsWith('.test.mjs')).map((f) => path.join('scripts', f));
  const t0 = Date.now();
  process.stdout.write(`\n=== node --test ${scriptTests.join(' ')}\n`);
  const result = spawnSync('node', ['--test', ...scriptTests], { cwd: root, env, encoding: 'utf8' });
  process.stdout.write(result.stdout + result.stderr);
  const count = (name) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(result.stdout)?.[1] ?? 0);
  passed += count('pass');
  failed += count('fail');
  if (count('fail') > 0) failures.push(`scripts: ${count('fail')} failed test(s)`);
  else if (result.status !== 0 || count('pass') === 0) {
    failed += 1;
    failures.push(`scripts: node --test exited ${result.status} with ${count('pass')} passed`);
  }
  process.stdout.write(`=== node --test scripts: ${result.status === 0 ? 'ok' : 'FAILED'} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
}

// Unit tests, package by package, counting vitest's own test results.
const reportDir = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-test-'));
for (const group of ['packages', 'examples']) {
  const dir = path.join(root, group);
  if (!existsSync(dir)) continue;
  for (const name of readdirSync(dir).sort()) {
    const pkgDir = path.join(dir, name);
    if (!existsSync(path.join(pkgDir, 'vitest.config.ts'))) continue;
    const report = path.join(reportDir, `${group}-${name}.json`);
    const ok = step(`vitest ${group}/${name}`, npx, ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile=${report}`], { cwd: pkgDir });
    if (existsSync(report)) {
      const json = JSON.parse(readFileSync(report, 'utf8'));
      passed += json.numPassedTests ?? 0;
      failed += json.numFailedTests ?? 0;
      if ((json.numFailedTests ?? 0) > 0) failures.push(`${group}/${name}: ${json.numFailedTests} failed test(s)`);
      if (!ok && (json.numFailedTests ?? 0) === 0) {
        failed += 1;
        failures.push(`${group}/${name}: vitest exited non-zero (suite error)`);
      }
    } else {
      // vitest exits 1 when a folder has no test files; count it only as a failure when it did fail
      failed += 1;
      failures.push(`${group}/${name}: no vitest report`);
    }
  }
}

// The webgpu group: the finite-difference gradient suite and the webgpu tests (`*.webgpu.test.ts`) on Dawn's WebGPU,
// which without a GPU runs on Mesa's OpenGL ES (llvmpipe): correctness, not speed.
const WEBGPU_GROUP = {
  core: ['src/kernels/conv-gradients.test.ts', 'src/kernels/dense-gradients.test.ts', 'src/kernels/pool-norm-gradients.test.ts', 'src/kernels/resize-gradients.test.ts', 'src/webgpu.webgpu.test.ts'],
  cli: ['src/commands/webgpu.webgpu.test.ts'],
};
for (const [name, files] of Object.entries(WEBGPU_GROUP)) {
  const pkgDir = path.join(root, 'packages', name);
  const report = path.join(reportDir, `webgpu-${name}.json`);
  const t0 = Date.now();
  const title = `vitest packages/${name}, webgpu group`;
  process.stdout.write(`\n=== ${title}\n$ S2CPNET_TEST_BACKENDS=webgpu npx vitest run ${files.join(' ')}\n`);
  const result = spawnSync(npx, ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile=${report}`, ...files], {
    cwd: pkgDir,
    env: { ...env, S2CPNET_TEST_BACKENDS: 'webgpu' },
    stdio: 'inherit',
  });
  const json = existsSync(report) ? JSON.parse(readFileSync(report, 'utf8')) : null;
  passed += json?.numPassedTests ?? 0;
  failed += json?.numFailedTests ?? 0;
  if ((json?.numFailedTests ?? 0) > 0) failures.push(`${title}: ${json.numFailedTests} failed test(s)`);
  else if (result.status !== 0 || !json || json.numPassedTests === 0) {
    failed += 1;
    failures.push(`${title}: vitest exited ${result.status} with ${json?.numPassedTests ?? 0} passed`);
  }
  process.stdout.write(`=== ${title}: ${result.status === 0 ? 'ok' : 'FAILED'} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
}
rmSync(reportDir, { recursive: true, force: true });

countStep('pack, install outside the workspace, import (ESM and CJS), publint, attw', 'node', ['scripts/pack-smoke.mjs']);

const minutes = ((Date.now() - started) / 60000).toFixed(1);
process.stdout.write(`\nTest run finished in ${minutes} min.\n`);
if (failures.length) process.stdout.write(`Failures:\n${failures.map((f) => `  - ${f}`).join('\n')}\n`);
process.stdout.write(`${passed} passed, ${failed} failed\n`);
process.exit(failed === 0 ? 0 : 1);
