// node --test: the repository checks that `npm test` runs (absolute paths, README commands).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { absolutePathProblems } from './check-absolute-paths.mjs';
import { shellCommands, simpleCommands } from './check-readme-commands.mjs';

test('absolute paths: machine folders anywhere, absolute paths inside JSON values', () => {
  const folder = '/machine-folder/'; // any folder given as a machine's
  assert.deepEqual(absolutePathProblems('a.md', 'see /data/images for an example', { machineFolders: [folder] }), []);
  assert.deepEqual(absolutePathProblems('a.ts', `const TIF = '${folder}shared/testdata';`, { machineFolders: [folder] }), [`a.ts:1: names the machine folder ${folder}`]);
  const json = JSON.stringify({ config: { encoderWeights: { path: '/home/me/weights' } }, averageOf: ['epoch-6', 'C:\\runs\\x'], note: 'a/b' }, null, 1);
  assert.deepEqual(absolutePathProblems('checkpoint.json', json, { machineFolders: [] }), [
    'checkpoint.json: $.config.encoderWeights.path: "/home/me/weights"',
    'checkpoint.json: $.averageOf[1]: "C:\\\\runs\\\\x"',
  ]);
});

test('README commands: sh blocks only, continuations joined, comments and env prefixes dropped', () => {
  const md = ['text `npx s2cpnet nope`', '```sh', 'npx s2cpnet doctor --json   # comment', 'S2CPNET_THREADS=1 npx s2cpnet train --config c.json \\', '  --out runs/x', '```', '```text', 's2cpnet <command>', '```'].join('\n');
  const commands = shellCommands(md);
  assert.deepEqual(commands.map((c) => c.text), ['npx s2cpnet doctor --json', 'S2CPNET_THREADS=1 npx s2cpnet train --config c.json    --out runs/x']);
  assert.deepEqual(commands.map((c) => c.line), [3, 4]);
  assert.deepEqual(simpleCommands('npm ci && A=1 npm run demo'), [['npm', 'ci'], ['npm', 'run', 'demo']]);
});
