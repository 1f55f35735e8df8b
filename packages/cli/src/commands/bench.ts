import { parseArgs } from 'node:util';
import { ConfigError } from '@s2cpnet/core';
import type { Command, CommandContext } from '../command';
import { ExitCode } from '../command';
import { initBackend, requestedThreads } from '../backend';
import { benchWorkloads, tfjsBenchPlan } from '../bench/workloads';
import { formatBenchTable, runBench, type BenchReport } from '../bench/run';
import { onnxBenchPlan, onnxRuntimeVersion } from '../bench/onnx-workloads';
import { loadRuntimeOnnxPackage, ONNX_INSTALL_HINT } from './runtime-package';
import { numberFlag } from './train';

/** The flags `s2cpnet bench` accepts (its `--help` lists each one). */
export const BENCH_OPTIONS = {
  json: { type: 'boolean', default: false },
  only: { type: 'string' },
  reps: { type: 'string' },
  'heavy-reps': { type: 'string' },
  warmup: { type: 'string' },
  list: { type: 'boolean', default: false },
  runtime: { type: 'string' },
} as const;

const BENCH_RUNTIMES = ['tfjs', 'onnx'] as const;

export const benchCommand: Command = {
  name: 'bench',
  summary: 'Time the model workloads (backbones, CVFF, decoder, training steps, beam search, metrics) with GFLOP/s',
  usage: `s2cpnet bench [options]

Options:
  --only NAME[,NAME...]     run workloads whose name contains one of these strings, e.g. --only resnet50,lite
                            (default: all; --list shows them)
  --reps N                  timed repetitions per workload, median reported (default 3)
  --heavy-reps N            timed repetitions of the heavy workloads (default 2)
  --warmup N                untimed runs before timing (default 1)
  --list                    list the workloads and exit (default off)
  --runtime R               tfjs | onnx: onnx exports the same seeded models to ONNX and runs the inference
                            workloads (same names, same work) in ONNX Runtime at --threads intra-op threads;
                            training workloads are listed as skipped. Needs @s2cpnet/runtime-onnx and
                            onnxruntime-node (default tfjs)
  --json                    {runtime, backend, threads, results: [{name, ms, msPerUnit, unit, gflop, gflops,
                            samplesPerSecond, ...}], skipped?: [{name, reason}]} on stdout (default off: a table)

Threads: --threads N / S2CPNET_THREADS (default one per core). bench/compare.mjs runs tfjs, ONNX Runtime and the
PyTorch twin side by side.`,
  async run(argv: string[], context: CommandContext) {
    const { values } = parseArgs({ args: argv, strict: true, options: BENCH_OPTIONS });
    const runtime = values.runtime ?? 'tfjs';
    if (!(BENCH_RUNTIMES as readonly string[]).includes(runtime)) {
      throw new ConfigError('--runtime', `expected one of ${BENCH_RUNTIMES.join(', ')}, found ${JSON.stringify(values.runtime)}`);
    }
    let workloads = benchWorkloads();
    if (values.list) {
      for (const w of workloads) context.stdout(`${w.name.padEnd(20)}  ${w.description}\n`);
      return ExitCode.ok;
    }
    if (values.only) {
      const wanted = values.only.split(',').map((s) => s.trim()).filter(Boolean);
      workloads = workloads.filter((w) => wanted.some((s) => w.name.includes(s)));
      if (workloads.length === 0) {
        throw new ConfigError('--only', `no workload matches ${JSON.stringify(values.only)}; names: ${benchWorkloads().map((w) => w.name).join(', ')}`);
      }
    }
    const options = {
      reps: numberFlag(values.reps, '--reps', { integer: true, min: 1 }),
      heavyReps: numberFlag(values['heavy-reps'], '--heavy-reps', { integer: true, min: 1 }),
      warmup: numberFlag(values.warmup, '--warmup', { integer: true, min: 1 }),
      onProgress: (line: string) => context.stderr(`bench: ${line}\n`),
    };
    let report: BenchReport;
    if (runtime === 'onnx') {
      const pkg = await loadRuntimeOnnxPackage();
      if (!pkg.haveOnnxRuntime()) throw new ConfigError('--runtime', `onnx needs onnxruntime-node: ${ONNX_INSTALL_HINT}`);
      const threads = requestedThreads(context.backend?.threads);
      // tfjs still builds the seeded models that are exported; the timed work runs in ONNX Runtime only.
      await initBackend({ ...context.backend });
      const plan = onnxBenchPlan(workloads, pkg, { threads });
      const version = await onnxRuntimeVersion(pkg);
      context.stderr(
        `bench: runtime onnx (onnxruntime-node ${version}, cpu, ${threads} intra-op thread${threads === 1 ? '' : 's'}), ${plan.workloads.length} workloads` +
          `${plan.skipped.length ? `, ${plan.skipped.length} skipped (${plan.skipped.map((s) => s.name).join(', ')})` : ''}\n`,
      );
      report = await runBench(plan.workloads, { backend: 'onnxruntime-cpu', threads, runtime: 'onnx' }, options);
      report.onnxruntimeVersion = version;
      report.skipped = plan.skipped;
    } else {
      const info = await initBackend({ ...context.backend });
      const plan = tfjsBenchPlan(workloads, info.backend);
      context.stderr(
        `bench: backend ${info.backend} (${info.threads} thread${info.threads === 1 ? '' : 's'}), ${plan.workloads.length} workloads` +
          `${plan.skipped.length ? `, ${plan.skipped.length} skipped (${plan.skipped.map((s) => s.name).join(', ')})` : ''}\n`,
      );
      report = await runBench(plan.workloads, info, options);
      if (plan.skipped.length) report.skipped = plan.skipped;
    }
    context.stdout(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatBenchTable(report));
    return ExitCode.ok;
  },
};
