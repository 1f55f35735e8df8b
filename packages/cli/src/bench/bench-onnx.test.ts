import { describe, expect, it } from 'vitest';
import * as pkg from '@s2cpnet/runtime-onnx';
import { runCli } from '../commands/cli.test-util';
import { ONNX_SKIP_REASONS, onnxBenchPlan } from './onnx-workloads';
import type { BenchReport } from './run';
import { benchWorkloads } from './workloads';

describe('s2cpnet bench --runtime onnx', () => {
  it('plans an ONNX twin of every inference workload, under the same name, and skips training', () => {
    const { workloads, skipped } = onnxBenchPlan(benchWorkloads(), pkg, { threads: 1 });
    const names = workloads.map((w) => w.name);
    expect(names).toEqual(['resnet50.forward.b1', 'resnet50.forward.b8', 'mobilenet.forward.b1', 'mobilenet.forward.b8', 'caption.beam3.paper', 'caption.beam3.lite']);
    for (const w of workloads) {
      const tfjs = benchWorkloads().find((t) => t.name === w.name)!;
      expect(w.units).toEqual(tfjs.units);
      expect(Boolean(w.heavy)).toBe(Boolean(tfjs.heavy));
    }
    for (const s of skipped.filter((s) => s.name.includes('.train.'))) expect(s.reason).toBe(ONNX_SKIP_REASONS.training);
    expect(skipped.map((s) => s.name).sort()).toEqual(benchWorkloads().map((w) => w.name).filter((n) => !names.includes(n)).sort());
  });

  it('runs an inference workload in ONNX Runtime and reports a training workload as skipped', async () => {
    const { code, out, err } = await runCli(['--threads', '1', 'bench', '--runtime', 'onnx', '--only', 'mobilenet.forward.b1,mobilenet.train', '--reps', '1', '--json'], process.cwd());
    expect(code, err).toBe(0);
    const report = JSON.parse(out) as BenchReport;
    expect(report.runtime).toBe('onnx');
    expect(report.backend).toBe('onnxruntime-cpu');
    expect(report.threads).toBe(1);
    expect(report.onnxruntimeVersion).toMatch(/^\d+\.\d+/);
    expect(report.results.map((r) => r.name)).toEqual(['mobilenet.forward.b1']);
    const [result] = report.results;
    expect(result!.ms).toBeGreaterThan(0);
    expect(result!.reps).toBe(1);
    expect(result!.unit).toBe('batch');
    expect(result!.wasmHeapMiB).toBeUndefined();
    expect(report.skipped).toEqual([{ name: 'mobilenet.train.b8', reason: ONNX_SKIP_REASONS.training }]);
    expect(err).toMatch(/runtime onnx \(onnxruntime-node [\d.]+, cpu, 1 intra-op thread\)/);
  }, 120_000);

  it('prints the runtime and the skipped workloads in the table', async () => {
    const { code, out } = await runCli(['--threads', '1', 'bench', '--runtime', 'onnx', '--only', 'lite.train'], process.cwd());
    expect(code).toBe(0);
    expect(out).toMatch(/^runtime onnx \(onnxruntime-node /);
    expect(out).toMatch(/skipped lite\.train\.b16x5: training workload: ONNX Runtime has no training API/);
  }, 60_000);

  it('refuses an unknown runtime, naming the flag', async () => {
    const { code, err } = await runCli(['bench', '--runtime', 'torch', '--only', 'mobilenet.forward.b1'], process.cwd());
    expect(code).not.toBe(0);
    expect(err).toMatch(/--runtime.*expected one of tfjs, onnx, found "torch"/);
  });
});
