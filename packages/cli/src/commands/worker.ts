import { parseArgs } from 'node:util';
import { ConfigError } from '@s2cpnet/core';
import { parsePixelCount } from '@s2cpnet/data';
import type { Command, CommandContext } from '../command';
import { ExitCode } from '../command';
import { formatDuration } from '../progress';
import { cliCaptionerOptions, DECODING_FLAGS, decodingFlags } from './caption';
import { numberFlag } from './train';
import { loadQueuePackage, REDIS_FLAG_HELP } from './queue-package';

/** The options of `worker` (for the help test). */
export const WORKER_OPTIONS = {
  redis: { type: 'string' },
  queue: { type: 'string' },
  checkpoint: { type: 'string' },
  runtime: { type: 'string' },
  concurrency: { type: 'string' },
  'lock-seconds': { type: 'string' },
  'exit-when-empty': { type: 'boolean', default: false },
  ...DECODING_FLAGS,
  'mask-size': { type: 'string' },
  'cache-dir': { type: 'string' },
  'no-cache': { type: 'boolean', default: false },
  'max-pixels': { type: 'string' },
} as const;

const WORKER_USAGE = `s2cpnet worker --queue NAME --checkpoint REF [--redis URL] [options]

Captions the batches of a queue ('s2cpnet queue add') until stopped. Run as many as you like, on as many machines
as see the images at the same paths. The first worker binds the queue to its checkpoint and decoding settings;
a worker with others refuses to start (exit 2), so results of two checkpoints never mix. Images whose result is
already stored (same file content, same checkpoint and settings) are not captioned again.

Options (default in brackets):
  ${REDIS_FLAG_HELP}
  --queue NAME            queue name [required]
  --checkpoint REF        checkpoint folder, weights package name, or http(s) URL#sha256=HEX of a .tgz [required]
  --runtime R             tfjs (queue workers run tfjs; onnx is for caption and evaluate) [default: tfjs]
  --concurrency N         batches this process runs at once [default: 1]; tfjs computes one forward pass at a time
                          per process, so more only overlaps file reading with it: on a machine with several
                          cores run one worker per core (with --threads 1) instead
  --lock-seconds S        a batch's lock, extended after every forward pass; a worker that dies loses its batch
                          to another worker after this long [default: 30]
  --exit-when-empty       stop (exit 0) once no batch is waiting, delayed or running [off: wait for more]
  --beam K                beam width; 1 decodes greedily [default: 3]
  --length-penalty A      GNMT length-penalty exponent [default: 0]
  --max-length N          most words per caption [default: 25]
  --batch-size N          images per forward pass [default: 8]
  --mask-size N           working size masks are computed at [default: the checkpoint's training data's, else 224]
  --cache-dir DIR         mask cache folder [default: S2CPNET_CACHE_DIR, else $XDG_CACHE_HOME/s2cpnet, else
                          ~/.cache/s2cpnet]
  --no-cache              compute masks without a cache [off]
  --max-pixels N          largest image accepted, in pixels [default: S2CPNET_MAX_IMAGE_PIXELS, else 64000000]

The same checkpoint and settings give the captions 's2cpnet caption' gives. SIGTERM (or Ctrl-C) finishes the
running batch, stores its results and exits 0 (130 for Ctrl-C); a second one quits at once (the batch goes back
to the queue when its lock expires). Global --backend and --threads apply.`;

export const workerCommand: Command = {
  name: 'worker',
  summary: 'Caption the batches of a Redis queue (queue add) with a checkpoint, until stopped',
  usage: WORKER_USAGE,
  async run(argv: string[], context: CommandContext) {
    const { values, positionals } = parseArgs({ args: argv, strict: true, allowPositionals: true, options: WORKER_OPTIONS });
    if (positionals.length > 0) throw new ConfigError(positionals[0]!, 'unexpected argument (worker takes only options)');
    if (!values.queue) throw new ConfigError('--queue', 'required: the name of the queue');
    if (!values.checkpoint) throw new ConfigError('--checkpoint', 'required: a checkpoint folder or an installed weights package');
    const runtime = values.runtime ?? 'tfjs';
    if (runtime === 'onnx') throw new ConfigError('--runtime', 'queue workers run tfjs only: the onnx runtime is not available to workers yet (s2cpnet caption|evaluate --runtime onnx have it); use tfjs (the default)');
    if (runtime !== 'tfjs') throw new ConfigError('--runtime', `expected tfjs or onnx, found ${JSON.stringify(runtime)}`);
    const decoding = decodingFlags(values);
    const concurrency = numberFlag(values.concurrency, '--concurrency', { integer: true, min: 1 }) ?? 1;
    const lockSeconds = numberFlag(values['lock-seconds'], '--lock-seconds', { min: 1 }) ?? 30;
    const maskSize = numberFlag(values['mask-size'], '--mask-size', { integer: true, min: 16 });
    const maxPixels = values['max-pixels'] === undefined ? undefined : parsePixelCount(values['max-pixels'], '--max-pixels');
    const queueLib = await loadQueuePackage();

    // SIGTERM stops like Ctrl-C: the running batch is finished and stored; a second SIGTERM quits at once.
    const stop = new AbortController();
    let reason: 'term' | 'interrupt' | null = null;
    const onAbort = () => {
      reason ??= 'interrupt';
      stop.abort();
    };
    if (context.signal.aborted) onAbort();
    context.signal.addEventListener('abort', onAbort);
    let terms = 0;
    const onTerm = () => {
      terms += 1;
      if (terms > 1) process.exit(143);
      context.stderr('worker: SIGTERM received: finishing the running batch, then exiting (send it again to quit at once)\n');
      reason ??= 'term';
      stop.abort();
    };
    process.on('SIGTERM', onTerm);
    try {
      const summary = await queueLib.runWorker({
        redis: values.redis ?? queueLib.defaultRedisUrl(),
        queue: values.queue,
        names: { redis: '--redis', queue: '--queue' },
        checkpoint: values.checkpoint,
        runtime,
        concurrency,
        lockSeconds,
        exitWhenEmpty: values['exit-when-empty'],
        signal: stop.signal,
        ...cliCaptionerOptions('worker', context, decoding),
        maskSize,
        cacheDir: values['no-cache'] ? false : values['cache-dir'],
        maxPixels,
        onLog: (line) => context.stderr(`worker: ${line}\n`),
        onLoadProgress: (p) => {
          if (p.stage === 'checkpoint') context.stderr(`worker: ${p.message}\n`);
        },
      });
      context.stderr(
        `worker: stopped (${summary.stopped === 'empty' ? 'queue empty' : reason === 'term' ? 'SIGTERM' : 'interrupted'}) after ${formatDuration(summary.seconds)}: ` +
          `${summary.batches} batches, ${summary.captioned} images captioned, ${summary.cached} already stored, ${summary.failed} failed\n`,
      );
      return reason === 'interrupt' ? ExitCode.interrupted : ExitCode.ok;
    } finally {
      process.off('SIGTERM', onTerm);
      context.signal.removeEventListener('abort', onAbort);
    }
  },
};
