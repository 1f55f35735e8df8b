#!/usr/bin/env node
// Every command the READMEs show must work in this checkout after the README's set-up (`npm ci`, then the build
// that `npm test` / `npm run demo` do first). Run by `npm test` right after the build, so CI checks it on a fresh
// clone. It checks that:
//   - `npx s2cpnet` runs this repository's CLI through the bin link that `npm ci` made (never a package of that
//     name from the public registry: `npx --no` refuses to install anything);
//   - each `s2cpnet VERB ...` line of a `sh` block in a README names a real verb, and every `--flag` on it is one
//     that verb's `--help` lists (or a global flag);
//   - each `npm run NAME` / `npm start -w WS` names a script that exists, and each `node FILE` a file that exists;
//   - `npx s2cpnet doctor --json` and `npx s2cpnet --version` really run.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const GLOBAL_FLAGS = new Set(['--backend', '--threads', '--help', '-h', '--version']);
const problems = [];
let checked = 0;

function readmes() {
  const files = [path.join(root, 'README.md')];
  for (const group of ['packages', 'examples', 'weights', 'bench']) {
    const dir = path.join(root, group);
    if (!existsSync(dir)) continue;
    if (existsSync(path.join(dir, 'README.md'))) files.push(path.join(dir, 'README.md'));
    for (const name of readdirSync(dir)) {
      const file = path.join(dir, name, 'README.md');
      if (existsSync(file)) files.push(file);
    }
  }
  return files;
}

/** The command lines of the ```sh blocks of a markdown file, continuation lines joined, comments dropped. */
export function shellCommands(markdown) {
  const commands = [];
  let inSh = false;
  let pending = '';
  let lineNo = 0;
  let startLine = 0;
  for (const line of markdown.split('\n')) {
    lineNo += 1;
    if (/^```/.test(line)) {
      inSh = !inSh && /^```(sh|bash|shell)\s*$/.test(line);
      pending = '';
      continue;
    }
    if (!inSh) continue;
    if (pending === '') startLine = lineNo;
    const text = line.replace(/\s+#\s.*$/, '');
    if (text.trimEnd().endsWith('\\')) {
      pending += `${text.trimEnd().slice(0, -1)} `;
      continue;
    }
    const full = (pending + text).trim();
    pending = '';
    if (full && !full.startsWith('#')) commands.push({ line: startLine, text: full });
  }
  return commands;
}

/** Splits `a && b; c` into simple commands and drops leading `VAR=value` assignments. */
export function simpleCommands(text) {
  return text
    .split(/&&|;|\|\|/)
    .map((part) => part.trim().split(/\s+/).filter(Boolean))
    .map((words) => {
      while (words.length && /^[A-Z_][A-Z0-9_]*=/.test(words[0])) words.shift();
      return words;
    })
    .filter((words) => words.length);
}

const helpCache = new Map();
function helpOf(verb) {
  if (!helpCache.has(verb)) {
    const result = spawnSync('npx', ['--no', '--', 's2cpnet', verb, '--help'], { cwd: root, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' } });
    helpCache.set(verb, result.status === 0 ? `${result.stdout}\n${result.stderr}` : null);
  }
  return helpCache.get(verb);
}

const rootPkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
function workspaceScripts(name) {
  for (const group of ['packages', 'examples', 'weights']) {
    const dir = path.join(root, group);
    if (!existsSync(dir)) continue;
    for (const entry of readdirSync(dir)) {
      const file = path.join(dir, entry, 'package.json');
      if (!existsSync(file)) continue;
      const pkg = JSON.parse(readFileSync(file, 'utf8'));
      if (pkg.name === name || path.join(group, entry) === name) return pkg.scripts ?? {};
    }
  }
  return undefined;
}

function checkCommand(where, words, folder) {
  const [program, ...args] = words;
  if (program === 'npx' && args[0] === 's2cpnet') return checkVerb(where, args.slice(1));
  if (program === 's2cpnet') return checkVerb(where, args);
  if (program === 'npm' && (args[0] === 'run' || args[0] === 'start' || args[0] === 'test')) {
    const name = args[0] === 'run' ? args[1] : args[0];
    // run in the README's own folder when that is a workspace package (examples/X: `npm start`)
    const workspace = args.includes('-w') ? args[args.indexOf('-w') + 1] : folder;
    const scripts = workspace === undefined ? rootPkg.scripts : workspaceScripts(workspace);
    checked += 1;
    if (scripts === undefined) problems.push(`${where}: npm ${args.join(' ')}: no workspace ${workspace}`);
    else if (!scripts[name]) problems.push(`${where}: npm ${args.join(' ')}: no script "${name}"${workspace ? ` in ${workspace}` : ''}`);
    return;
  }
  if (program === 'node' && args[0] && /\.(mjs|cjs|js)$/.test(args[0])) {
    checked += 1;
    // run from the repository root or, for a package's README, from that package's folder
    const from = [root, ...(folder ? [path.join(root, folder)] : [])];
    if (!from.some((dir) => existsSync(path.join(dir, args[0])))) problems.push(`${where}: node ${args[0]}: no such file in the repository`);
  }
}

function checkVerb(where, args) {
  checked += 1;
  const verb = args[0];
  if (verb === undefined || verb.startsWith('-')) return;
  const help = helpOf(verb);
  if (help === null) {
    problems.push(`${where}: s2cpnet ${verb}: not a command (\`s2cpnet ${verb} --help\` failed)`);
    return;
  }
  for (const arg of args.slice(1)) {
    const flag = arg.split('=')[0];
    if (!flag.startsWith('--') || GLOBAL_FLAGS.has(flag)) continue;
    if (!new RegExp(`(^|[\\s\\[(|])${flag.replace(/[-]/g, '\\-')}(?![\\w-])`, 'm').test(help)) {
      problems.push(`${where}: s2cpnet ${verb}: option ${flag} is not one \`s2cpnet ${verb} --help\` lists`);
    }
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  // 1. `npx s2cpnet` is this repository's CLI, linked by `npm ci`.
  const link = path.join(root, 'node_modules', '.bin', 's2cpnet');
  if (!existsSync(link)) problems.push(`node_modules/.bin/s2cpnet is missing: \`npx s2cpnet\` would look for a package on the registry`);
  else {
    const target = realpathSync(link);
    if (!target.startsWith(path.join(root, 'packages', 'cli') + path.sep)) problems.push(`node_modules/.bin/s2cpnet leads to ${target}, not into packages/cli`);
    const cliVersion = JSON.parse(readFileSync(path.join(root, 'packages', 'cli', 'package.json'), 'utf8')).version;
    try {
      const version = execFileSync('npx', ['--no', '--', 's2cpnet', '--version'], { cwd: root, encoding: 'utf8' }).trim();
      if (!version.includes(cliVersion)) problems.push(`npx s2cpnet --version printed ${JSON.stringify(version)}, expected the workspace's ${cliVersion}`);
      const doctor = JSON.parse(execFileSync('npx', ['--no', '--', 's2cpnet', 'doctor', '--json'], { cwd: root, encoding: 'utf8', env: { ...process.env, S2CPNET_THREADS: '1' } }));
      if (typeof doctor.backend !== 'string') problems.push(`npx s2cpnet doctor --json: no backend in ${JSON.stringify(doctor)}`);
      checked += 2;
    } catch (error) {
      problems.push(`npx s2cpnet: ${(error.stderr || error.message).toString().split('\n').slice(0, 4).join(' ')}`);
    }
  }

  // 2. Every command a README shows.
  for (const file of readmes()) {
    const rel = path.relative(root, file);
    for (const { line, text } of shellCommands(readFileSync(file, 'utf8'))) {
      const folder = path.dirname(rel) === '.' || !existsSync(path.join(root, path.dirname(rel), 'package.json')) ? undefined : path.dirname(rel);
      for (const words of simpleCommands(text)) checkCommand(`${rel}:${line}`, words, folder);
    }
  }

  if (problems.length) {
    console.error(`README commands: ${problems.length} problem(s) in ${checked} commands checked`);
    for (const problem of problems) console.error(`  - ${problem}`);
    process.exit(1);
  }
  console.log(`README commands: ${checked} commands checked, npx s2cpnet runs packages/cli`);
}
