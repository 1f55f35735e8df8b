import { parseArgs } from 'node:util';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ConfigError, InputError } from '@s2cpnet/core';
import { loadCheckpoint, saveCheckpoint } from '@s2cpnet/model';
import type { Command, CommandContext } from '../command';
import { ExitCode } from '../command';
import { initBackend } from '../backend';
import { numberFlag } from './train';

export const exportCommand: Command = {
  name: 'export',
  summary: 'Write an inference-only copy of a checkpoint (no optimiser state), optionally 8-bit quantised, for release',
  usage:
    's2cpnet export --checkpoint DIR|PACKAGE --out DIR [--quantize uint8 [--group-size N]] [--include FILE ...] [--json]\n' +
    '  --quantize uint8   weights of 1,024+ values stored as 8 bits with a min and step per group of 32 rows of each output channel (~1.25 bytes per value)\n' +
    '  --include FILE     copy a file (README, licence, the command that trained it) into the checkpoint folder',
  async run(argv: string[], context: CommandContext) {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        checkpoint: { type: 'string' },
        out: { type: 'string' },
        quantize: { type: 'string' },
        'group-size': { type: 'string' },
        include: { type: 'string', multiple: true },
        json: { type: 'boolean', default: false },
      },
    });
    if (!values.checkpoint) throw new ConfigError('--checkpoint', 'required: a checkpoint folder or an npm package that holds one');
    if (!values.out) throw new ConfigError('--out', 'required: the folder to write');
    if (values.quantize !== undefined && values.quantize !== 'uint8') throw new ConfigError('--quantize', `expected "uint8", found ${JSON.stringify(values.quantize)}`);
    const extraFiles: Record<string, string> = {};
    for (const file of values.include ?? []) {
      const full = path.resolve(context.cwd, file);
      try {
        extraFiles[path.basename(full)] = await fsp.readFile(full, 'utf8');
      } catch (error) {
        throw new InputError(`cannot read a file to include (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { file: full });
      }
    }
    await initBackend({ ...context.backend, backend: context.backend?.backend ?? 'cpu' });
    const loaded = await loadCheckpoint(values.checkpoint, { cwd: context.cwd });
    if (loaded.training) {
      // Where the weights came from: the run settings and the per-epoch validation scores, not the optimiser.
      const { run, history, epoch } = loaded.training;
      extraFiles['training-summary.json'] = `${JSON.stringify({ epochs: epoch, run, history }, null, 1)}\n`;
    }
    const out = path.resolve(context.cwd, values.out);
    await saveCheckpoint(out, {
      model: loaded.model,
      vocabulary: loaded.vocabulary,
      classNames: loaded.classNames,
      weightsDtype: values.quantize === 'uint8' ? 'uint8' : 'float32',
      quantizeGroupSize: numberFlag(values['group-size'], '--group-size', { integer: true, min: 1 }) ?? 32,
      extraFiles,
    });
    const stat = await fsp.stat(path.join(out, 'weights.bin'));
    const summary = { from: loaded.dir, out, weightsBytes: stat.size, quantize: values.quantize ?? null, parameters: loaded.model.countParams() };
    loaded.model.dispose();
    context.stdout(values.json ? `${JSON.stringify(summary, null, 2)}\n` : `exported ${summary.parameters} parameters to ${out} (weights.bin ${(stat.size / 2 ** 20).toFixed(1)} MiB${values.quantize ? ', uint8' : ''})\n`);
    return ExitCode.ok;
  },
};
