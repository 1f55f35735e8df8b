#!/usr/bin/env node
// Module-boundary check: every import of a workspace package (in source and in package.json dependencies) must be
// allowed by the importing project's nx tag (scripts/module-boundaries.json). Exits 1 and lists violations.
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const { depConstraints } = JSON.parse(readFileSync(path.join(root, 'scripts/module-boundaries.json'), 'utf8'));

function projects() {
  const out = new Map();
  for (const group of ['packages', 'examples']) {
    const dir = path.join(root, group);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      const file = path.join(dir, name, 'package.json');
      if (!existsSync(file)) continue;
      const pkg = JSON.parse(readFileSync(file, 'utf8'));
      const scope = (pkg.nx?.tags ?? []).find((t) => t.startsWith('scope:'));
      out.set(pkg.name, { name: pkg.name, dir: path.join(dir, name), pkg, scope });
    }
  }
  return out;
}

function* sourceFiles(dir) {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir)) {
    const full = path.join(dir, entry);
    if (entry === 'node_modules' || entry === 'dist') continue;
    if (statSync(full).isDirectory()) yield* sourceFiles(full);
    else if (/\.(ts|mts|cts|js|mjs|cjs)$/.test(entry)) yield full;
  }
}

const all = projects();
const violations = [];
const importPattern = /(?:from\s+|import\s*\(\s*|require\s*\(\s*)['"](@s2cpnet\/[a-z-]+)(?:\/[^'"]*)?['"]/g;
for (const project of all.values()) {
  if (!project.scope) {
    violations.push(`${project.name}: no scope:* tag in package.json "nx.tags"`);
    continue;
  }
  const allowed = depConstraints[project.scope];
  if (!allowed) {
    violations.push(`${project.name}: unknown tag ${project.scope}`);
    continue;
  }
  const check = (target, where) => {
    if (target === project.name) return;
    const dep = all.get(target);
    if (!dep) return violations.push(`${where}: imports unknown workspace package ${target}`);
    if (!allowed.includes(dep.scope)) {
      violations.push(`${where}: ${project.name} (${project.scope}) may not depend on ${target} (${dep.scope}); allowed: ${allowed.join(', ') || 'none'}`);
    }
  };
  const deps = { ...project.pkg.dependencies, ...project.pkg.peerDependencies, ...project.pkg.devDependencies };
  for (const name of Object.keys(deps)) if (name.startsWith('@s2cpnet/')) check(name, `${path.relative(root, project.dir)}/package.json`);
  for (const file of sourceFiles(path.join(project.dir, 'src'))) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(importPattern)) check(m[1], path.relative(root, file));
    if (!file.endsWith('.test.ts') && /from\s+['"]\.\.\/\.\.\/\.\.\/packages\//.test(text)) {
      violations.push(`${path.relative(root, file)}: reaches into another package by relative path`);
    }
  }
  // a workspace package imported in source must be declared in package.json (else the published package breaks)
  for (const file of sourceFiles(path.join(project.dir, 'src'))) {
    if (file.endsWith('.test.ts') || file.includes(`${path.sep}testing${path.sep}`)) continue;
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(importPattern)) {
      if (m[1] !== project.name && !(m[1] in deps)) violations.push(`${path.relative(root, file)}: imports ${m[1]} but ${project.name} does not declare it`);
    }
  }
}
if (violations.length > 0) {
  console.error(`module boundaries: ${violations.length} violation(s)`);
  for (const v of violations) console.error(`  ${v}`);
  process.exit(1);
}
console.log(`module boundaries: ${all.size} projects checked, no violations`);
