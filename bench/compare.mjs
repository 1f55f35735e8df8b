#!/usr/bin/env node
// Runs `s2cpnet bench --json` on TensorFlow.js, `s2cpnet bench --runtime onnx --json` on ONNX Runtime and the
// PyTorch twin (bench/pytorch/bench.py) on this machine, and prints the three side by side per workload name with
// the ratios, plus the targets of the performance issues. Usage (after `npm run build`):
//   node bench/compare.mjs [--threads N] [--torch-threads N] [--only a,b] [--reps N] [--out DIR]
//                          [--runtimes tfjs,onnx,torch] [--sequential]
//   node bench/compare.mjs --tfjs tfjs.json --onnx onnx.json --torch torch.json   (only print, from saved runs)
// By default the sides are interleaved: for each workload, tfjs, then ONNX Runtime, then PyTorch, each in its own
// process (`--only NAME`), so that a slower minute of a shared machine falls on all three. `--sequential` runs each
// side's whole selection in one process instead (tfjs, then ONNX Runtime, then PyTorch).
// GFLOP/s of every side use the FLOP count the tfjs run measured from its executed kernels (same model, same sizes).
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
    runtimes: { type: 'string', default: 'tfjs,onnx,torch' },
    sequential: { type: 'boolean', default: false },
    tfjs: { type: 'string' },
    onnx: { type: 'string' },
    torch: { type: 'string' },
  },
});

const SIDES = ['tfjs', 'onnx', 'torch'];
const wanted = values.runtimes.split(',').map((s) => s.trim()).filter(Boolean);
for (const side of wanted) if (!SIDES.includes(side)) throw new Error(`--runtimes: expected a comma list of ${SIDES.join(', ')}, found ${JSON.stringify(side)}`);
const fromFiles = Boolean(values.tfjs || values.onnx || values.torch);
const bin = path.join(root, 'packages/cli/dist/bin.js');
const onlyList = values.only ? values.only.split(',').map((s) => s.trim()).filter(Boolean) : [];

function spawn(label, command, args, { allowNoMatch = false } = {}) {
  process.stderr.write(`compare: ${label}: ${path.basename(command)} ${args.join(' ')}\n`);
  const started = Date.now();
  const result = spawnSync(command, args, { cwd: root, env: process.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
  // bench.py exits 2 when --only matches none of its workloads (a workload without a PyTorch twin).
  if (allowNoMatch && result.status === 2) return null;
  if (result.status !== 0) throw new Error(`${label} failed (exit ${result.status ?? result.signal})`);
  process.stderr.write(`compare: ${label}: ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  return JSON.parse(result.stdout);
}

function torchPython() {
  for (const python of ['python3', '/usr/bin/python3']) {
    if (spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0) return python;
  }
  return null;
}

const reps = values.reps ? ['--reps', values.reps] : [];
const tfjsArgs = (only) => [bin, '--threads', values.threads, 'bench', '--json', ...(only ? ['--only', only] : []), ...reps];
const onnxArgs = (only) => [...tfjsArgs(only), '--runtime', 'onnx'];
const torchArgs = (only) => [path.join(root, 'bench/pytorch/bench.py'), '--json', '--threads', values['torch-threads'] ?? values.threads, ...(only ? ['--only', only] : []), ...reps];

/** One report per side from several runs: the first run's header, every run's results and skipped workloads. */
function merge(reports) {
  const present = reports.filter(Boolean);
  if (present.length === 0) return null;
  const results = [];
  const skipped = [];
  for (const r of present) {
    for (const x of r.results) if (!results.some((y) => y.name === x.name)) results.push(x);
    for (const s of r.skipped ?? []) if (!skipped.some((y) => y.name === s.name)) skipped.push(s);
  }
  return { ...present[0], results, ...(skipped.length ? { skipped } : {}) };
}

let tfjs = null;
let onnx = null;
let torch = null;
if (fromFiles) {
  const read = (file) => (file ? JSON.parse(readFileSync(file, 'utf8')) : null);
  [tfjs, onnx, torch] = [read(values.tfjs), read(values.onnx), read(values.torch)];
} else {
  const python = wanted.includes('torch') ? torchPython() : null;
  if (wanted.includes('torch') && !python) process.stderr.write('compare: PyTorch not importable (apt-get install python3-torch python3-torchvision); no PyTorch column\n');
  if (values.sequential) {
    const only = values.only;
    if (wanted.includes('tfjs')) tfjs = spawn('tfjs', process.execPath, tfjsArgs(only));
    if (wanted.includes('onnx')) onnx = spawn('onnx', process.execPath, onnxArgs(only));
    if (python) torch = spawn('pytorch', python, torchArgs(only), { allowNoMatch: true });
  } else {
    // The workload names, selected as `s2cpnet bench --only` selects them (names containing one of the strings).
    const listed = spawnSync(process.execPath, [bin, 'bench', '--list'], { cwd: root, encoding: 'utf8' });
    if (listed.status !== 0) throw new Error(`s2cpnet bench --list failed (exit ${listed.status}); run npm run build first`);
    const names = listed.stdout.split('\n').map((line) => line.split(/\s+/)[0]).filter(Boolean).filter((n) => onlyList.length === 0 || onlyList.some((s) => n.includes(s)));
    if (names.length === 0) throw new Error(`--only ${values.only}: no workload matches`);
    const runs = { tfjs: [], onnx: [], torch: [] };
    for (const name of names) {
      const t = wanted.includes('tfjs') ? spawn(`tfjs ${name}`, process.execPath, tfjsArgs(name)) : null;
      if (t) runs.tfjs.push({ ...t, results: t.results.filter((r) => r.name === name) });
      const o = wanted.includes('onnx') ? spawn(`onnx ${name}`, process.execPath, onnxArgs(name)) : null;
      if (o) runs.onnx.push({ ...o, results: o.results.filter((r) => r.name === name), skipped: (o.skipped ?? []).filter((s) => s.name === name) });
      if (python) {
        // PyTorch runs the twin name where the tfjs workload names one (a different batch size), and its
        // variants (e.g. `caption.beam3.paper.kvcache`) come along with `--only NAME`.
        const twin = t?.results.find((r) => r.name === name)?.twin ?? name;
        const p = spawn(`pytorch ${twin}`, python, torchArgs(twin), { allowNoMatch: true });
        if (p) runs.torch.push({ ...p, results: p.results.filter((r) => r.name.startsWith(twin)) });
      }
    }
    [tfjs, onnx, torch] = [merge(runs.tfjs), merge(runs.onnx), merge(runs.torch)];
  }
}
if (values.out) {
  mkdirSync(values.out, { recursive: true });
  for (const [name, report] of [['tfjs', tfjs], ['onnx', onnx], ['torch', torch]]) {
    if (report) writeFileSync(path.join(values.out, `${name}.json`), `${JSON.stringify(report, null, 2)}\n`);
  }
}

const lines = [];
const say = (line = '') => lines.push(line);
const torchByName = new Map((torch?.results ?? []).map((r) => [r.name, r]));
const onnxByName = new Map((onnx?.results ?? []).map((r) => [r.name, r]));
const onnxSkipped = new Map((onnx?.skipped ?? []).map((s) => [s.name, s.reason]));
const tfjsByName = new Map((tfjs?.results ?? []).map((r) => [r.name, r]));
const fmt = (x, digits = 1) => (x === null || x === undefined || Number.isNaN(x) ? '-' : x.toFixed(digits));
/** ONNX Runtime decodes with a key/value cache: compare it with PyTorch's cached variant where there is one. */
const torchForOnnx = (name) => torchByName.get(`${name}.kvcache`) ?? torchByName.get(name);

const names = [...new Set([...(tfjs?.results ?? []).map((r) => r.name), ...(onnx?.results ?? []).map((r) => r.name), ...onnxSkipped.keys()])];
const rows = [['workload', 'unit', 'tfjs ms', 'ORT ms', 'torch ms', 'tfjs GFLOP/s', 'ORT GFLOP/s', 'torch GFLOP/s', 'ORT/torch', 'ORT/tfjs', 'tfjs/torch']];
for (const name of names) {
  const t = tfjsByName.get(name);
  const o = onnxByName.get(name);
  const twinName = t?.twin ?? name;
  const p = torchByName.get(twinName);
  const pk = torchForOnnx(name);
  // Speeds as time ratios of the same work (per unit); a twin of another batch size compares caption samples per second.
  const tfjsVsTorch = !t || !p ? null : t.twin ? t.samplesPerSecond / p.samplesPerSecond : p.msPerUnit / t.msPerUnit;
  const onnxVsTorch = o && pk ? pk.msPerUnit / o.msPerUnit : null;
  const onnxVsTfjs = o && t ? t.msPerUnit / o.msPerUnit : null;
  const gflopPerUnit = t?.gflop != null ? t.gflop / (t.ms / t.msPerUnit) : null;
  const gflops = (r) => (r && gflopPerUnit !== null ? gflopPerUnit / (r.msPerUnit / 1000) : null);
  const torchGflops = t?.twin ? (tfjsVsTorch && t.gflops !== null ? t.gflops / tfjsVsTorch : null) : gflops(p);
  rows.push([
    t?.twin ? `${name} ~ ${t.twin}` : name,
    t?.unit ?? o?.unit ?? p?.unit ?? '-',
    fmt(t?.msPerUnit),
    o ? fmt(o.msPerUnit) : onnxSkipped.has(name) ? 'skipped' : '-',
    fmt(p?.msPerUnit),
    fmt(t?.gflops),
    fmt(gflops(o)),
    fmt(torchGflops),
    onnxVsTorch === null ? '-' : `${fmt(onnxVsTorch, 2)}${pk !== p ? ' (kv)' : ''}`,
    fmt(onnxVsTfjs, 2),
    fmt(tfjsVsTorch, 2),
  ]);
}
for (const p of torch?.results ?? []) {
  if (!names.some((n) => (tfjsByName.get(n)?.twin ?? n) === p.name)) rows.push([p.name, p.unit, '-', '-', fmt(p.msPerUnit), '-', '-', '-', '-', '-', '-']);
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
say(`tfjs: ${tfjs ? `${tfjs.backend}, ${tfjs.threads} thread(s)` : 'not run'}   onnx: ${onnx ? `onnxruntime-node ${onnx.onnxruntimeVersion ?? '?'} (${onnx.backend}), ${onnx.threads} intra-op thread(s)` : 'not run'}   pytorch: ${torch ? `${torch.version}, ${torch.threads} thread(s)` : 'not run'}`);
if (torch) {
  // What PyTorch's numbers depend on (older saved runs lack these fields).
  const coretype = torch.openblasCoretype === undefined ? 'not recorded' : `${torch.openblasCoretype}${torch.openblasCoretypeWasUnset ? '; OPENBLAS_CORETYPE was unset in the environment' : ''}`;
  say(`pytorch BLAS: ${torch.blas ?? 'not recorded'}; OpenBLAS kernels: ${coretype}`);
}
say('ms per unit; ratios are speeds (how many times faster the first is); (kv): against PyTorch with a key/value cache');
for (const r of rows) say(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
for (const [name, reason] of onnxSkipped) say(`ORT skipped ${name}: ${reason}`);

// The performance issues' targets, from this one run.
const checks = [];
const get = (name) => tfjsByName.get(name);
const full = get('s2cpnet.train.b2x5');
if (full) checks.push(['paper-preset training >= 1.6 caption samples/s', full.samplesPerSecond, full.samplesPerSecond >= 1.6]);
const lite = get('lite.train.b16x5');
if (lite) checks.push(['lite step (16 images x 5 captions) < 2 s', lite.ms / 1000, lite.ms < 2000]);
const fwd = get('resnet50.forward.b8');
const fwdTorch = torchByName.get('resnet50.forward.b8');
if (fwd && fwdTorch) checks.push(['ResNet50 forward >= 0.5x PyTorch GFLOP/s (batch 8)', fwdTorch.ms / fwd.ms, fwdTorch.ms / fwd.ms >= 0.5]);
const train = get('resnet50.train.b8');
if (fwd && train) checks.push(['ResNet50 training GFLOP/s >= 0.5x forward', train.gflops / fwd.gflops, train.gflops >= 0.5 * fwd.gflops]);
const cap = get('caption.beam3.paper');
if (cap) checks.push(['beam-3 captioning (paper preset) < 1 s per image', cap.msPerUnit / 1000, cap.msPerUnit < 1000]);
const capRef = torchByName.get('caption.beam3.paper');
if (cap && capRef) checks.push(['faster than reference-style beam search (PyTorch, prefix re-run)', capRef.msPerUnit / cap.msPerUnit, cap.msPerUnit < capRef.msPerUnit]);
if (tfjs) {
  const heap = Math.max(0, ...tfjs.results.map((r) => r.wasmHeapMiB ?? 0));
  const rss = Math.max(0, ...tfjs.results.map((r) => r.maxRssMiB ?? 0));
  checks.push(['peak wasm heap < 4 GiB (MiB)', heap, heap < 4096]);
  checks.push(['peak RSS < 6 GiB (MiB)', rss, rss < 6144]);
}
// Issue #14 (ONNX Runtime), at the thread count of this run.
const ortFwd = onnxByName.get('resnet50.forward.b1');
const torchFwd = torchByName.get('resnet50.forward.b1');
if (ortFwd && torchFwd) checks.push(['ORT: ResNet50 forward (batch 1) >= 1.0x PyTorch', torchFwd.ms / ortFwd.ms, torchFwd.ms >= ortFwd.ms]);
const ortCap = onnxByName.get('caption.beam3.paper');
const torchKv = torchByName.get('caption.beam3.paper.kvcache');
if (ortCap && torchKv) checks.push(["ORT: beam-3 captioning (paper) per image <= PyTorch's K/V-cache time (speed ratio)", torchKv.msPerUnit / ortCap.msPerUnit, ortCap.msPerUnit <= torchKv.msPerUnit]);
if (ortCap && cap) checks.push([`ORT: beam-3 captioning (paper) >= 4x faster than tfjs-${tfjs.backend}`, cap.msPerUnit / ortCap.msPerUnit, cap.msPerUnit >= 4 * ortCap.msPerUnit]);
say('\ntargets:');
for (const [what, value, ok] of checks) say(`  ${ok ? 'met ' : 'MISS'}  ${what}: ${fmt(value, 2)}`);
if (onnx) say('  (evaluate on 210 images >= 3x faster with ONNX Runtime: an end-to-end `s2cpnet evaluate` timing, not a bench workload; see bench/README.md)');

const text = `${lines.join('\n')}\n`;
process.stdout.write(text);
if (values.out) writeFileSync(path.join(values.out, 'compare.txt'), text);
