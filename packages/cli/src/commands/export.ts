import { parseArgs } from 'node:util';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ConfigError, InputError } from '@s2cpnet/core';
import { averageCheckpoints, loadCheckpoint, saveCheckpoint, type LoadedCheckpoint, type S2CPNetConfig } from '@s2cpnet/model';
import type { Command, CommandContext } from '../command';
import { ExitCode } from '../command';
import { initBackend } from '../backend';
import { numberFlag } from './train';
import { loadRuntimeOnnxPackage } from './runtime-package';

/** An absolute path on any system at the start of a string: `/x`, `C:\x`, `C:/x`, `\\server\x`. */
const ABSOLUTE_AT_START = /^(?:\/|\\\\|[A-Za-z]:[\\/])/;
/** An absolute path inside a string (a recorded command line, `--data=/x`), after a space, `=`, a quote or `(`. */
const ABSOLUTE_INSIDE = /(^|[\s="'(,])((?:\/|\\\\|[A-Za-z]:[\\/])[^\s"'(),]+)/g;

function baseName(absolute: string): string {
  return /^(?:\\\\|[A-Za-z]:)/.test(absolute) ? path.win32.basename(absolute) : path.posix.basename(absolute);
}

/**
 * A copy of a JSON value with every absolute path replaced by its base name (`/home/me/runs/ucm-prep` -> `ucm-prep`):
 * a released file must not carry the folders of the machine that trained it.
 */
function withoutAbsolutePaths<T>(value: T): T {
  if (typeof value === 'string') {
    return (ABSOLUTE_AT_START.test(value) ? baseName(value) : value.replace(ABSOLUTE_INSIDE, (_, before: string, p: string) => `${before}${baseName(p)}`)) as T;
  }
  if (Array.isArray(value)) return value.map((v) => withoutAbsolutePaths(v)) as T;
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withoutAbsolutePaths(v)])) as T;
  return value;
}

/** How a source checkpoint is named in averaged.json: its path relative to the working folder, or its last two folders. */
function sourceLabel(checkpoint: LoadedCheckpoint, cwd: string): string {
  const relative = path.relative(cwd, checkpoint.dir);
  if (relative && !relative.startsWith('..') && !path.isAbsolute(relative)) return relative.split(path.sep).join('/');
  return checkpoint.dir.split(/[\\/]+/).filter(Boolean).slice(-2).join('/');
}

/** The flags `s2cpnet export` accepts (its `--help` lists each one). */
export const EXPORT_OPTIONS = {
  checkpoint: { type: 'string', multiple: true },
  out: { type: 'string' },
  format: { type: 'string' },
  quantize: { type: 'string' },
  'group-size': { type: 'string' },
  include: { type: 'string', multiple: true },
  json: { type: 'boolean', default: false },
} as const;

export const exportCommand: Command = {
  name: 'export',
  summary: 'Write an inference-only copy of a checkpoint (no optimiser state), optionally 8-bit quantised, for release',
  usage: `s2cpnet export --checkpoint DIR|PACKAGE [--checkpoint DIR ...] --out DIR [options]

Options:
  --checkpoint DIR|PACKAGE  (required) the checkpoint to export; given several times the weights are averaged
                            (checkpoint averaging, e.g. the last epochs of a run kept with train --keep-epochs)
  --out DIR                 (required) the folder to write
  --quantize uint8          store weights of 1,024+ values as 8 bits with a min and step per group of rows of each
                            output channel (~1.25 bytes per value) (default: none, float32)
  --group-size N            rows per quantisation group with --quantize uint8 (default 32)
  --include FILE            copy a file (README, licence, the command that trained it) into the checkpoint folder;
                            may be repeated (default: none)
  --format F                tfjs: a checkpoint folder (default); onnx: an ONNX export for ONNX Runtime
                            (encoder.onnx, decoder-step.onnx, vocabulary, nouns, manifest.json with checksums) for
                            s2cpnet caption|evaluate --runtime onnx; with --quantize uint8 its large weights are stored
                            as 8 bits with the same grouping (dequantised once when a session starts); needs
                            @s2cpnet/runtime-onnx
  --json                    print {from, out, weightsBytes, quantize, parameters} on stdout (default off: one line)`,
  async run(argv: string[], context: CommandContext) {
    const { values } = parseArgs({ args: argv, strict: true, options: EXPORT_OPTIONS });
    const references = values.checkpoint ?? [];
    if (references.length === 0) throw new ConfigError('--checkpoint', 'required: a checkpoint folder or an npm package that holds one');
    if (!values.out) throw new ConfigError('--out', 'required: the folder to write');
    if (values.quantize !== undefined && values.quantize !== 'uint8') throw new ConfigError('--quantize', `expected "uint8", found ${JSON.stringify(values.quantize)}`);
    const format = values.format ?? 'tfjs';
    if (format !== 'tfjs' && format !== 'onnx') throw new ConfigError('--format', `expected tfjs or onnx, found ${JSON.stringify(values.format)}`);
    if (format === 'onnx') {
      if (values.include !== undefined) throw new ConfigError('--include', 'only for --format tfjs (an ONNX export holds the graphs, vocabulary, nouns and manifest)');
    }
    const onnx = format === 'onnx' ? await loadRuntimeOnnxPackage() : null;
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
    const all: LoadedCheckpoint[] = [];
    try {
      for (const reference of references) all.push(await loadCheckpoint(reference, { cwd: context.cwd }));
      averageCheckpoints(all);
    } catch (error) {
      for (const checkpoint of all) checkpoint.model.dispose();
      throw error;
    }
    for (const checkpoint of all.slice(1)) checkpoint.model.dispose();
    const loaded = all[0]!;
    const withTraining = [...all].reverse().find((c) => c.training);
    if (withTraining?.training) {
      // Where the weights came from: the run settings and the per-epoch validation scores, not the optimiser.
      const { run, history, epoch } = withTraining.training;
      extraFiles['training-summary.json'] = `${JSON.stringify(withoutAbsolutePaths({ epochs: epoch, run, history }), null, 1)}\n`;
    }
    if (all.length > 1) {
      extraFiles['averaged.json'] = `${JSON.stringify({ averageOf: all.map((c) => withoutAbsolutePaths(sourceLabel(c, context.cwd))) }, null, 1)}\n`;
    }
    // The exported checkpoint holds every weight: the pretrained backbone it started from (a path on the trainer's
    // machine) is not needed to load it, so its config does not name it.
    const portableConfig: S2CPNetConfig = { ...loaded.model.config };
    delete portableConfig.encoderWeights;
    (loaded.model as { config: S2CPNetConfig }).config = withoutAbsolutePaths(portableConfig);
    const out = path.resolve(context.cwd, values.out);
    if (onnx) {
      try {
        const started = Date.now();
        const { manifest } = await onnx.exportOnnx(loaded, out, {
          quantize: values.quantize === 'uint8' ? 'uint8' : undefined,
          groupSize: numberFlag(values['group-size'], '--group-size', { integer: true, min: 1 }),
          onProgress: (line) => context.stderr(`export: ${line}\n`),
        });
        const bytes = Object.values(manifest.files).reduce((n, f) => n + f.bytes, 0);
        const summary = { from: all.length > 1 ? all.map((c) => c.dir) : loaded.dir, out, format: 'onnx', weights: manifest.weights, bytes, files: manifest.files, parameters: loaded.model.countParams(), seconds: (Date.now() - started) / 1000 };
        context.stdout(values.json ? `${JSON.stringify(summary, null, 2)}\n` : `exported ${summary.parameters} parameters${all.length > 1 ? ` (mean of ${all.length} checkpoints)` : ''} to ONNX in ${out} (${(bytes / 2 ** 20).toFixed(1)} MiB, ${manifest.weights} weights)\n`);
      } finally {
        loaded.model.dispose();
      }
      return ExitCode.ok;
    }
    await saveCheckpoint(out, {
      model: loaded.model,
      vocabulary: loaded.vocabulary,
      classNames: loaded.classNames,
      weightsDtype: values.quantize === 'uint8' ? 'uint8' : 'float32',
      quantizeGroupSize: numberFlag(values['group-size'], '--group-size', { integer: true, min: 1 }) ?? 32,
      extraFiles,
      masks: loaded.masks,
    });
    const stat = await fsp.stat(path.join(out, 'weights.bin'));
    const summary = { from: all.length > 1 ? all.map((c) => c.dir) : loaded.dir, out, weightsBytes: stat.size, quantize: values.quantize ?? null, parameters: loaded.model.countParams() };
    loaded.model.dispose();
    context.stdout(values.json ? `${JSON.stringify(summary, null, 2)}\n` : `exported ${summary.parameters} parameters${all.length > 1 ? ` (mean of ${all.length} checkpoints)` : ''} to ${out} (weights.bin ${(stat.size / 2 ** 20).toFixed(1)} MiB${values.quantize ? ', uint8' : ''})\n`);
    return ExitCode.ok;
  },
};
