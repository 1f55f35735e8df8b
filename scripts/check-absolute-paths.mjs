#!/usr/bin/env node
// No tracked file may hold an absolute path of a machine: not this checkout's own folder or the shared folder beside
// it, and no JSON string value that is an absolute file path (checkpoints, configs, manifests travel to other
// machines). Run by `npm test`; `node scripts/check-absolute-paths.mjs DIR...` checks the files under DIR instead
// (e.g. an exported checkpoint).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

/** Files allowed to name such paths: this checker's own patterns. */
const ALLOWED = [/^scripts\/check-absolute-paths\.mjs$/];
/** The folder this project's machines work in; no file may name it (CI's clone may live elsewhere, so it is listed). */
const KNOWN_MACHINE_FOLDERS = ['/work/'];

/** Absolute paths in JSON string values: any string that starts with `/` followed by a word, or a drive letter. */
function jsonPaths(value, where, found) {
  if (typeof value === 'string') {
    if (/^\/[\w.-]+\/[\w.-]/.test(value) || /^[A-Za-z]:[\\/]/.test(value)) found.push(`${where}: ${JSON.stringify(value)}`);
  } else if (Array.isArray(value)) value.forEach((v, i) => jsonPaths(v, `${where}[${i}]`, found));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) jsonPaths(v, `${where}.${k}`, found);
}

/**
 * Problems in one file's text: a machine folder (this checkout, the shared folder beside it, the project's machine
 * folder) anywhere, and in JSON files any string value that is an absolute path (JSON travels: checkpoints, configs,
 * manifests). Sources and docs may show example paths such as `/data/images`; they are not any machine's.
 */
export function absolutePathProblems(file, text, { machineFolders = KNOWN_MACHINE_FOLDERS } = {}) {
  const problems = [];
  text.split('\n').forEach((line, i) => {
    for (const folder of machineFolders) {
      if (line.includes(folder)) problems.push(`${file}:${i + 1}: names the machine folder ${folder}`);
    }
  });
  if (file.endsWith('.json')) {
    try {
      const found = [];
      jsonPaths(JSON.parse(text), '$', found);
      for (const f of found) problems.push(`${file}: ${f}`);
    } catch {
      // not JSON after all (a template); the line checks above still apply
    }
  }
  return problems;
}

function isText(buffer) {
  return !buffer.subarray(0, 8000).includes(0);
}

function listFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(full));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  const dirs = process.argv.slice(2);
  const files = dirs.length
    ? dirs.flatMap((d) => listFiles(path.resolve(d)))
    : execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' }).split('\0').filter(Boolean).map((f) => path.join(root, f));
  const machineFolders = [...new Set([root, path.join(path.dirname(root), 'shared'), ...KNOWN_MACHINE_FOLDERS])];
  const problems = [];
  let checked = 0;
  for (const file of files) {
    const rel = path.relative(root, file);
    if (ALLOWED.some((re) => re.test(rel))) continue;
    let stat;
    try {
      stat = statSync(file);
    } catch {
      continue; // deleted in the work tree
    }
    if (stat.size > 32 * 2 ** 20) continue;
    const buffer = readFileSync(file);
    if (!isText(buffer)) continue;
    checked += 1;
    problems.push(...absolutePathProblems(rel, buffer.toString('utf8'), { machineFolders }));
  }
  if (problems.length) {
    console.error(`absolute paths: ${problems.length} problem(s) in ${checked} text files`);
    for (const p of problems.slice(0, 50)) console.error(`  - ${p}`);
    process.exit(1);
  }
  console.log(`absolute paths: none in ${checked} text files`);
}
