import { parseArgs } from 'node:util';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ConfigError, InputError } from '@s2cpnet/core';
import { PRESET_NAMES, presetConfig, train, validateConfig, type S2CPNetConfig } from '@s2cpnet/model';
import type { Command, CommandContext } from '../command';
import { ExitCode } from '../command';
import { initBackend } from '../backend';
import { ProgressBar, formatDuration } from '../progress';

export async function readConfigFile(file: string): Promise<S2CPNetConfig> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (error) {
    throw new InputError(`cannot read the config (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { file });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InputError(`not valid JSON (${(error as Error).message})`, { file });
  }
  return validateConfig(json, file);
}

function numberFlag(value: string | undefined, flag: string, options: { integer?: boolean; min?: number } = {}): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || (options.integer && !Number.isInteger(n)) || (options.min !== undefined && n < options.min)) {
    throw new ConfigError(flag, `expected ${options.integer ? 'an integer' : 'a number'}${options.min !== undefined ? ` >= ${options.min}` : ''}, found ${JSON.stringify(value)}`);
  }
  return n;
}

export { numberFlag };

export const trainCommand: Command = {
  name: 'train',
  summary: 'Train S²CPNet or an ablation preset on a prepared dataset (resumable; checkpoints and a JSONL log)',
  usage:
    's2cpnet train (--preset NAME | --config FILE) --data DIR [--out DIR] [--batch-size N] [--micro-batch N] [--lr X]\n' +
    '              [--epochs N] [--seed N] [--time-budget MINUTES]\n' +
    '              [--lr-patience N] [--lr-factor X] [--stop-patience N] [--val-beam K] [--val-max N] [--feature-cache|--no-feature-cache]\n' +
    '              [--encoder-weights DIR|FILE] [--keep-epochs] [--resume | --force] [--json]\n' +
    '  --keep-epochs   also keep the weights after every epoch N in OUT/epoch-N (for `s2cpnet export` averaging)\n' +
    '  --resume        continue the run in OUT from its newest complete checkpoint (OUT/last; log.jsonl is cut back to it)\n' +
    '  --force         start over in an OUT that holds a previous run: removes its log.jsonl, last/, best/, epoch-N/\n' +
    '                  and temp leftovers (keeps features/ and other files). Without --resume or --force a non-empty\n' +
    '                  OUT is refused (exit 2). One process per OUT: OUT/train.lock names the owner (a busy OUT: exit 2).\n' +
    '                  SIGTERM (or Ctrl-C) saves OUT/last and stops (exit 130); a second one quits at once.',
  async run(argv: string[], context: CommandContext) {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        preset: { type: 'string' },
        config: { type: 'string' },
        data: { type: 'string' },
        out: { type: 'string' },
        'batch-size': { type: 'string' },
        'micro-batch': { type: 'string' },
        lr: { type: 'string' },
        epochs: { type: 'string' },
        seed: { type: 'string' },
        'time-budget': { type: 'string' },
        'lr-patience': { type: 'string' },
        'lr-factor': { type: 'string' },
        'stop-patience': { type: 'string' },
        'val-beam': { type: 'string' },
        'val-max': { type: 'string' },
        'encoder-weights': { type: 'string' },
        'feature-cache': { type: 'boolean' },
        'no-feature-cache': { type: 'boolean' },
        resume: { type: 'boolean', default: false },
        force: { type: 'boolean', default: false },
        'keep-epochs': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
      },
    });
    if (!values.data) throw new ConfigError('--data', 'required: a folder written by `s2cpnet prepare`');
    if (Boolean(values.preset) === Boolean(values.config)) throw new ConfigError('--preset/--config', `give exactly one of --preset NAME (${PRESET_NAMES.join(', ')}) or --config FILE`);
    const config = values.config ? await readConfigFile(path.resolve(context.cwd, values.config)) : presetConfig(values.preset!);
    const seed = numberFlag(values.seed, '--seed', { integer: true });
    if (seed !== undefined) config.seed = seed;
    if (values['encoder-weights']) config.encoderWeights = { path: path.resolve(context.cwd, values['encoder-weights']) };
    if (config.encoder.freeze === 'all' && !config.encoderWeights && !values.resume) {
      context.stderr(
        `train: warning: the ${config.name} preset freezes its backbone but no pretrained weights were given ` +
          '(--encoder-weights DIR|FILE): the frozen backbone stays random\n',
      );
    }
    const info = await initBackend({ ...context.backend });
    context.stderr(`train: backend ${info.backend} (${info.threads} thread${info.threads === 1 ? '' : 's'}), preset ${config.name}\n`);
    const outDir = path.resolve(context.cwd, values.out ?? path.join('runs', config.name));
    const bar = new ProgressBar(context, 'train');
    // SIGTERM stops like Ctrl-C: last/ is saved and the run folder's lock released; a second SIGTERM quits at once.
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    if (context.signal.aborted) stop.abort();
    context.signal.addEventListener('abort', onAbort);
    let terms = 0;
    const onTerm = () => {
      terms += 1;
      if (terms > 1) process.exit(143);
      bar.end();
      context.stderr('train: SIGTERM received: saving state and stopping (send it again to quit at once)\n');
      stop.abort();
    };
    process.on('SIGTERM', onTerm);
    let result: Awaited<ReturnType<typeof train>>;
    try {
      result = await train({
        data: path.resolve(context.cwd, values.data),
        runDir: outDir,
        config,
        batchSize: numberFlag(values['batch-size'], '--batch-size', { integer: true, min: 1 }),
        microBatchSize: numberFlag(values['micro-batch'], '--micro-batch', { integer: true, min: 1 }),
        learningRate: numberFlag(values.lr, '--lr', { min: 0 }),
        maxEpochs: numberFlag(values.epochs, '--epochs', { integer: true, min: 1 }),
        seed,
        timeBudgetMinutes: numberFlag(values['time-budget'], '--time-budget', { min: 0 }),
        // Spec defaults: lr x 1/5 after 5 epochs without a better val METEOR, stop after 20.
        schedule: {
          factor: numberFlag(values['lr-factor'], '--lr-factor', { min: 0 }) ?? 0.2,
          patience: numberFlag(values['lr-patience'], '--lr-patience', { integer: true, min: 1 }) ?? 5,
          stopPatience: numberFlag(values['stop-patience'], '--stop-patience', { integer: true, min: 1 }) ?? 20,
        },
        validation: {
          beamSize: numberFlag(values['val-beam'], '--val-beam', { integer: true, min: 1 }) ?? 1,
          maxImages: numberFlag(values['val-max'], '--val-max', { integer: true, min: 1 }),
        },
        featureCache: values['feature-cache'] ? true : values['no-feature-cache'] ? false : undefined,
        resume: values.resume,
        force: values.force,
        keepEpochs: values['keep-epochs'],
        signal: stop.signal,
        log: (line) => {
          bar.end();
          context.stderr(`train: ${line}\n`);
        },
        onProgress: (p) =>
          bar.update(
            p.batch,
            p.batchesPerEpoch,
            `epoch ${p.epoch} loss ${p.loss.toFixed(3)} ${p.samplesPerSecond.toFixed(1)} samples/s ETA ${formatDuration(p.etaSeconds)}`,
          ),
      });
    } finally {
      process.off('SIGTERM', onTerm);
      context.signal.removeEventListener('abort', onAbort);
    }
    bar.end();
    const summary = {
      runDir: outDir,
      best: result.bestDir,
      last: result.lastDir,
      bestEpoch: result.bestEpoch,
      bestValMeteor: result.bestScore,
      epochs: result.history.length,
      stoppedBecause: result.stoppedBecause,
      history: result.history,
    };
    if (values.json) context.stdout(`${JSON.stringify(summary, null, 2)}\n`);
    else context.stdout(`trained ${config.name}: ${summary.epochs} epochs, best val METEOR ${Number(summary.bestValMeteor).toFixed(4)} at epoch ${summary.bestEpoch}; checkpoints in ${outDir} (stopped: ${summary.stoppedBecause})\n`);
    result.model.dispose();
    return ExitCode.ok;
  },
};
