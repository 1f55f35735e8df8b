import { parseArgs } from 'node:util';
import { ConfigError } from '@s2cpnet/core';
import type { Command, CommandContext } from '../command';
import { ExitCode } from '../command';
import { initBackend } from '../backend';
import { benchWorkloads } from '../bench/workloads';
import { formatBenchTable, runBench } from '../bench/run';
import { numberFlag } from './train';

/** The flags `s2cpnet bench` accepts (its `--help` lists each one). */
export const BENCH_OPTIONS = {
  json: { type: 'boolean', default: false },
  only: { type: 'string' },
  reps: { type: 'string' },
  'heavy-reps': { type: 'string' },
  warmup: { type: 'string' },
  list: { type: 'boolean', default: false },
} as const;

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
  --json                    {backend, threads, results: [{name, ms, msPerUnit, unit, gflop, gflops, samplesPerSecond, ...}]}
                            on stdout (default off: a table)

Threads: --threads N / S2CPNET_THREADS (default one per core). bench/compare.mjs runs the PyTorch twin.`,
  async run(argv: string[], context: CommandContext) {
    const { values } = parseArgs({ args: argv, strict: true, options: BENCH_OPTIONS });
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
    const info = await initBackend({ ...context.backend });
    context.stderr(`bench: backend ${info.backend} (${info.threads} thread${info.threads === 1 ? '' : 's'}), ${workloads.length} workloads\n`);
    const report = await runBench(workloads, info, {
      reps: numberFlag(values.reps, '--reps', { integer: true, min: 1 }),
      heavyReps: numberFlag(values['heavy-reps'], '--heavy-reps', { integer: true, min: 1 }),
      warmup: numberFlag(values.warmup, '--warmup', { integer: true, min: 1 }),
      onProgress: (line) => context.stderr(`bench: ${line}\n`),
    });
    context.stdout(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatBenchTable(report));
    return ExitCode.ok;
  },
};
