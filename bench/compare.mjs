#!/usr/bin/env node
// Runs `s2cpnet bench --json` and its PyTorch twin (bench/pytorch/bench.py) one after the other on this machine and
// prints the ratios, plus the targets of the performance issue. Usage (after `npm run build`):
//   node bench/compare.mjs [--threads N] [--torch-threads N] [--only a,b] [--reps N] [--out DIR]
//   node bench/compare.mjs --tfjs tfjs.json --torch torch.json     (only print, from saved runs)
// GFLOP/s of both sides use the FLOP count the tfjs run measured from its executed kernels (same model, same sizes).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1' },
    'torch-threads': { type: 'string' },
    only: { type: 'string' },
    reps: { type: 'string' },
    out: { type: 'string' },
    tfjs: { type: 'string' },
    torch: { type: 'string' },
  },
});

function run(label, command, args, env) {
  process.stderr.write(`compare: ${label}: ${command} ${args.join(' ')}\n`);
  const started = Date.now();
  const result = spawnSync(command, args, { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
  if (result.status !== 0) throw new Error(`${label} failed (exit ${result.status ?? result.signal})`);
  process.stderr.write(`compare: ${label}: ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  return JSON.parse(result.stdout);
}

function torchAvailable() {
  for (const python of ['python3', '/usr/bin/python3']) {
    if (spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0) return python;
  }
  return null;
}

const shared = [...(values.only ? ['--only', values.only] : []), ...(values.reps ? ['--reps', values.reps] : [])];
const tfjs = values.tfjs
  ? JSON.parse(readFileSync(values.tfjs, 'utf8'))
  : run('tfjs', process.execPath, [path.join(root, 'packages/cli/dist/bin.js'), '--threads', values.threads, 'bench', '--json', ...shared], {});
let torch = null;
if (values.torch) torch = JSON.parse(readFileSync(values.torch, 'utf8'));
else {
  const python = torchAvailable();
  if (python) torch = run('pytorch', python, [path.join(root, 'bench/pytorch/bench.py'), '--json', '--threads', values['torch-threads'] ?? values.threads, ...shared], {});
  else process.stderr.write("compare: PyTorch not importable (apt-get install python3-torch python3-torchvision); tfjs only\n");
}
if (values.out) {
  mkdirSync(values.out, { recursive: true });
  writeFileSync(path.join(values.out, 'tfjs.json'), JSON.stringify(tfjs, null, 2));
  if (torch) writeFileSync(path.join(values.out, 'torch.json'), JSON.stringify(torch, null, 2));
}

const byName = new Map((torch?.results ?? []).map((r) => [r.name, r]));
const fmt = (x, digits = 1) => (x === null || x === undefined || Number.isNaN(x) ? '-' : x.toFixed(digits));
const rows = [['workload', 'tfjs ms/unit', 'torch ms/unit', 'tfjs GFLOP/s', 'torch GFLOP/s', 'tfjs speed / torch']];
for (const r of tfjs.results) {
  const t = byName.get(r.twin ?? r.name);
  // Same workload: time ratio. A twin of another batch size: compare caption samples per second instead.
  const ratio = !t ? null : r.twin ? r.samplesPerSecond / t.samplesPerSecond : t.ms / r.ms;
  // Same FLOPs per sample on both sides, so PyTorch's GFLOP/s is ours divided by our relative speed.
  const torchGflops = ratio && r.gflops !== null ? r.gflops / ratio : null;
  rows.push([r.twin ? `${r.name} ~ ${r.twin}` : r.name, fmt(r.msPerUnit), fmt(t?.msPerUnit), fmt(r.gflops), fmt(torchGflops), fmt(ratio, 2)]);
}
for (const t of torch?.results ?? []) {
  if (!tfjs.results.some((r) => (r.twin ?? r.name) === t.name)) rows.push([t.name, '-', fmt(t.msPerUnit), '-', '-', '-']);
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
console.log(`tfjs: ${tfjs.backend}, ${tfjs.threads} thread(s)   pytorch: ${torch ? `${torch.version}, ${torch.threads} thread(s)` : 'not run'}`);
if (torch) {
  // What PyTorch's numbers depend on (older saved runs lack these fields).
  const coretype = torch.openblasCoretype === undefined ? 'not recorded' : `${torch.openblasCoretype}${torch.openblasCoretypeWasUnset ? '; OPENBLAS_CORETYPE was unset in the environment' : ''}`;
  console.log(`pytorch BLAS: ${torch.blas ?? 'not recorded'}; OpenBLAS kernels: ${coretype}`);
}
for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));

// The performance issue's targets, from this one run.
const get = (name) => tfjs.results.find((r) => r.name === name);
const checks = [];
const full = get('s2cpnet.train.b2x5');
if (full) checks.push(['paper-preset training >= 1.6 caption samples/s', full.samplesPerSecond, full.samplesPerSecond >= 1.6]);
const lite = get('lite.train.b16x5');
if (lite) checks.push(['lite step (16 images x 5 captions) < 2 s', lite.ms / 1000, lite.ms < 2000]);
const fwd = get('resnet50.forward.b8');
const fwdTorch = byName.get('resnet50.forward.b8');
if (fwd && fwdTorch) checks.push(['ResNet50 forward >= 0.5x PyTorch GFLOP/s (batch 8)', fwdTorch.ms / fwd.ms, fwdTorch.ms / fwd.ms >= 0.5]);
const train = get('resnet50.train.b8');
if (fwd && train) checks.push(['ResNet50 training GFLOP/s >= 0.5x forward', train.gflops / fwd.gflops, train.gflops >= 0.5 * fwd.gflops]);
const cap = get('caption.beam3.paper');
if (cap) checks.push(['beam-3 captioning (paper preset) < 1 s per image', cap.msPerUnit / 1000, cap.msPerUnit < 1000]);
const capRef = byName.get('caption.beam3.paper');
if (cap && capRef) checks.push(["faster than reference-style beam search (PyTorch, prefix re-run)", capRef.msPerUnit / cap.msPerUnit, cap.msPerUnit < capRef.msPerUnit]);
const heap = Math.max(0, ...tfjs.results.map((r) => r.wasmHeapMiB ?? 0));
const rss = Math.max(0, ...tfjs.results.map((r) => r.maxRssMiB ?? 0));
checks.push(['peak wasm heap < 4 GiB (MiB)', heap, heap < 4096]);
checks.push(['peak RSS < 6 GiB (MiB)', rss, rss < 6144]);
console.log('\ntargets:');
for (const [what, value, ok] of checks) console.log(`  ${ok ? 'met ' : 'MISS'}  ${what}: ${fmt(value, 2)}`);
