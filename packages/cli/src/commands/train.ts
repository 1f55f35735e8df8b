import { parseArgs } from 'node:util';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ConfigError, InputError } from '@s2cpnet/core';
import { PRESET_NAMES, loadCheckpoint, presetConfig, train, validateConfig, type FeatureExtractor, type S2CPNet, type S2CPNetConfig } from '@s2cpnet/model';
import type { Command, CommandContext } from '../command';
import { ExitCode } from '../command';
import { initBackend } from '../backend';
import { ProgressBar, formatDuration } from '../progress';
import { loadRuntimeOnnxPackage, ONNX_INSTALL_HINT, type RuntimeOnnxPackage } from './runtime-package';

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

/** The flags `s2cpnet train` accepts (its `--help` lists each one). */
export const TRAIN_OPTIONS = {
  preset: { type: 'string' },
  config: { type: 'string' },
  data: { type: 'string' },
  out: { type: 'string' },
  'batch-size': { type: 'string' },
  'micro-batch': { type: 'string' },
  lr: { type: 'string' },
  'trainable-from': { type: 'string' },
  'encoder-lr': { type: 'string' },
  epochs: { type: 'string' },
  seed: { type: 'string' },
  'time-budget': { type: 'string' },
  'lr-patience': { type: 'string' },
  'lr-factor': { type: 'string' },
  'stop-patience': { type: 'string' },
  'val-beam': { type: 'string' },
  'val-max': { type: 'string' },
  'encoder-weights': { type: 'string' },
  'allow-random-backbone': { type: 'boolean', default: false },
  'init-from': { type: 'string' },
  init: { type: 'string' },
  objective: { type: 'string' },
  'scst-samples': { type: 'string' },
  'scst-baseline': { type: 'string' },
  'scst-max-length': { type: 'string' },
  'extend-vocabulary': { type: 'boolean', default: false },
  'feature-cache': { type: 'boolean' },
  'no-feature-cache': { type: 'boolean' },
  'feature-runtime': { type: 'string' },
  resume: { type: 'boolean', default: false },
  force: { type: 'boolean', default: false },
  'keep-epochs': { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
} as const;

const RESNET50_BLOCKS = [3, 4, 6, 3];

/**
 * The feature extractor of `--feature-runtime`: ONNX Runtime (`onnx`, or `auto` when @s2cpnet/runtime-onnx and
 * onnxruntime-node are installed), else undefined (the tfjs backbone).
 */
async function featureExtractorFor(flag: string | undefined, context: CommandContext): Promise<((model: S2CPNet) => Promise<FeatureExtractor>) | undefined> {
  const wanted = flag ?? 'auto';
  if (!['tfjs', 'onnx', 'auto'].includes(wanted)) throw new ConfigError('--feature-runtime', `expected tfjs, onnx or auto, found ${JSON.stringify(flag)}`);
  if (wanted === 'tfjs') return undefined;
  let pkg: RuntimeOnnxPackage;
  try {
    pkg = await loadRuntimeOnnxPackage();
  } catch (error) {
    if (wanted === 'auto') return undefined;
    throw error;
  }
  if (!pkg.haveOnnxRuntime()) {
    if (wanted === 'auto') return undefined;
    throw new ConfigError('--feature-runtime', `onnx needs onnxruntime-node: ${ONNX_INSTALL_HINT}`);
  }
  return (model) => pkg.onnxFeatureExtractor(model, { threads: context.backend?.threads });
}

/**
 * True for a backbone at a size ImageNet weights are published for (a ResNet50 at its real depth and widths, a
 * MobileNetV1 at any of its widths): training one from random weights is almost always a mistake (a forgotten
 * `--encoder-weights`). Reduced backbones (`blocksPerStage`/`baseWidth` set smaller, as in the demo and the
 * tests) are meant to be trained from scratch; backbone types this rule does not know are left alone.
 */
export function isPretrainedSizeBackbone(encoder: S2CPNetConfig['encoder']): boolean {
  if (encoder.type === 'mobilenet-v1') return true;
  if (encoder.type !== 'resnet50') return false;
  const blocks = (encoder.blocksPerStage as number[] | undefined) ?? RESNET50_BLOCKS;
  const width = (encoder.baseWidth as number | undefined) ?? 64;
  return width === 64 && blocks.length === 4 && blocks.every((n, i) => n === RESNET50_BLOCKS[i]);
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'Train S²CPNet or an ablation preset on a prepared dataset (resumable; checkpoints and a JSONL log)',
  usage: `s2cpnet train (--preset NAME | --config FILE | --init-from CHECKPOINT) --data DIR [options]

Options:
  --preset NAME             one of ${PRESET_NAMES.join(', ')} (see \`s2cpnet presets\`);
                            one of --preset, --config, --init-from is required
  --config FILE             a model config JSON instead of a preset (required unless --preset or --init-from)
  --data DIR                (required) a folder written by \`s2cpnet prepare\`; it needs a val split (model selection)
  --out DIR                 run folder for checkpoints (last/, best/) and log.jsonl (default runs/<preset name>)
  --batch-size N            images per optimiser step, each with all its captions (default 48, the paper's)
  --micro-batch N           images per forward/backward pass; gradients accumulate up to --batch-size
                            (default: the batch size)
  --lr X                    Adam learning rate (default 1e-4)
  --trainable-from N        partial fine-tuning of the backbone: blocks N and later train, the stem and earlier
                            blocks stay frozen (MobileNetV1: 13 blocks, e.g. 12 trains the last two; ResNet50: 16
                            bottlenecks). Sets the config's encoder.freeze "none" and encoder.trainableFrom N; the
                            frozen part's output is cached (default: the config's freeze policy)
  --encoder-lr X            learning rate of the backbone's trainable weights; decays with --lr (default: --lr)
  --epochs N                most epochs (default 100; the plateau schedule usually stops earlier)
  --seed N                  seed of weights, data order and dropout (default: the config's seed, 1 in the presets)
  --time-budget MINUTES     stop after the epoch during which this many minutes have passed (default: no limit)
  --lr-patience N           multiply the learning rate by --lr-factor after N epochs without a better val METEOR
                            (default 5)
  --lr-factor X             the factor of --lr-patience (default 0.2)
  --stop-patience N         stop after N epochs without a better val METEOR (default 20)
  --val-beam K              beam width of the per-epoch validation (default 1: greedy)
  --val-max N               validate on at most N val images (default: all)
  --encoder-weights DIR|FILE  ImageNet weights for the backbone: a TF.js layers folder (model.json), a Keras .h5 or
                            a torchvision .safetensors (default: the config's encoderWeights; where to get them:
                            the @s2cpnet/encoder README)
  --allow-random-backbone   train a full-size backbone (ResNet50, MobileNetV1) from random weights on purpose;
                            without it such a run with no --encoder-weights is refused (exit 2) (default off)
  --init-from CHECKPOINT    fine-tune: start from a checkpoint folder or weights package (e.g.
                            @s2cpnet/weights-ucm-mobilenet) with its config and vocabulary (default: off, fresh
                            weights). Not with --preset/--config/--encoder-weights; --seed may change.
  --init CHECKPOINT         the same as --init-from (default off)
  --objective ce|scst       ce: cross-entropy on the reference captions, best/ and the schedule on val METEOR;
                            scst: self-critical sequence training on the CIDEr-D reward (document frequencies of the
                            training references), fine-tuning --init-from; best/ and the schedule on val CIDEr
                            (default ce)
  --scst-samples K          scst: captions sampled per image (default 5)
  --scst-baseline B         scst: mean (the mean reward of the image's other samples) or greedy (the greedy
                            caption's reward; one more decoding per step) (default mean)
  --scst-max-length N       scst: most tokens per sampled caption (default 25, as in decoding)
  --extend-vocabulary       with --init-from: words and noun classes of --data that the checkpoint lacks are added
                            after its own (their embedding, output and class rows start random). Default off: such
                            words are refused, the message says how many and shows a few.
  --feature-cache           cache backbone features on disk and train on them (needs freeze "all")
                            (default: on when the encoder is fully frozen)
  --no-feature-cache        never cache features
  --feature-runtime R       what computes the cached backbone features: tfjs, onnx (ONNX Runtime, needs
                            @s2cpnet/runtime-onnx and onnxruntime-node), or auto: onnx when both are installed
                            (default auto; training itself always runs on tfjs)
  --keep-epochs             also keep the weights after every epoch N in OUT/epoch-N (for \`s2cpnet export\`
                            averaging) (default off)
  --resume                  continue the run in OUT from its newest complete checkpoint (OUT/last; log.jsonl is cut
                            back to it) (default off)
  --force                   start over in an OUT that holds a previous run: removes its log.jsonl, last/, best/,
                            epoch-N/ and temp leftovers (keeps features/ and other files) (default off)
  --json                    print the run summary as JSON on stdout (default off: one line)

Without --resume or --force a non-empty OUT is refused (exit 2). One process per OUT: OUT/train.lock names the
owner (a busy OUT: exit 2). SIGTERM (or Ctrl-C) saves OUT/last and stops (exit 130); a second one quits at once.`,
  async run(argv: string[], context: CommandContext) {
    const { values } = parseArgs({ args: argv, strict: true, options: TRAIN_OPTIONS });
    if (!values.data) throw new ConfigError('--data', 'required: a folder written by `s2cpnet prepare`');
    if (values.init && values['init-from']) throw new ConfigError('--init', 'give one of --init and --init-from (they are the same)');
    const initFrom = values['init-from'] ?? values.init;
    const objective = values.objective ?? 'ce';
    if (objective !== 'ce' && objective !== 'scst') throw new ConfigError('--objective', `expected ce or scst, found ${JSON.stringify(values.objective)}`);
    const scstFlags = (['scst-samples', 'scst-baseline', 'scst-max-length'] as const).filter((f) => values[f] !== undefined);
    if (objective !== 'scst' && scstFlags.length > 0) throw new ConfigError(`--${scstFlags[0]}`, 'only applies with --objective scst');
    if (objective === 'scst' && !initFrom && !values.resume) throw new ConfigError('--objective', 'scst fine-tunes a cross-entropy model: give --init-from CHECKPOINT');
    const scstBaseline = values['scst-baseline'];
    if (scstBaseline !== undefined && scstBaseline !== 'mean' && scstBaseline !== 'greedy') throw new ConfigError('--scst-baseline', `expected mean or greedy, found ${JSON.stringify(scstBaseline)}`);
    if (initFrom) {
      if (values.preset || values.config) throw new ConfigError('--init-from', 'the model is built from the checkpoint\'s own config: leave out --preset and --config');
      if (values['encoder-weights']) throw new ConfigError('--init-from', 'the checkpoint holds the backbone\'s weights: leave out --encoder-weights');
    } else {
      if (values['extend-vocabulary']) throw new ConfigError('--extend-vocabulary', 'only applies with --init-from CHECKPOINT');
      if (Boolean(values.preset) === Boolean(values.config)) throw new ConfigError('--preset/--config', `give exactly one of --preset NAME (${PRESET_NAMES.join(', ')}) or --config FILE (or --init-from CHECKPOINT)`);
    }
    const seed = numberFlag(values.seed, '--seed', { integer: true });
    let config: S2CPNetConfig | undefined;
    if (!initFrom) {
      config = values.config ? await readConfigFile(path.resolve(context.cwd, values.config)) : presetConfig(values.preset!);
      if (seed !== undefined) config.seed = seed;
      if (values['encoder-weights']) config.encoderWeights = { path: path.resolve(context.cwd, values['encoder-weights']) };
      if (!config.encoderWeights && !values.resume && isPretrainedSizeBackbone(config.encoder)) {
        if (!values['allow-random-backbone']) {
          throw new ConfigError(
            '--encoder-weights',
            `the ${config.name} ${values.config ? 'config' : 'preset'} uses a full-size ${String(config.encoder.type)} backbone${config.encoder.freeze === 'all' ? ' (frozen)' : ''} ` +
              'but no ImageNet weights were given, so it would start from random weights. Give --encoder-weights DIR|FILE ' +
              '(where to get them: the @s2cpnet/encoder README, "Pretrained ImageNet weights"), or pass --allow-random-backbone to train it from scratch on purpose',
          );
        }
      }
      if (!config.encoderWeights && !values.resume && config.encoder.freeze === 'all') {
        context.stderr(
          `train: warning: the ${config.name} preset freezes its backbone but no pretrained weights were given ` +
            '(--encoder-weights DIR|FILE): the frozen backbone stays random\n',
        );
      }
    }
    const info = await initBackend({ ...context.backend });
    const from = initFrom ? await loadCheckpoint(initFrom, { cwd: context.cwd }) : undefined;
    if (from) {
      config = { ...from.model.config };
      if (seed !== undefined) config.seed = seed;
    }
    if (!config) throw new ConfigError('--preset/--config', 'required');
    const trainableFrom = numberFlag(values['trainable-from'], '--trainable-from', { integer: true, min: 1 });
    if (trainableFrom !== undefined) config = { ...config, encoder: { ...config.encoder, freeze: 'none', trainableFrom } };
    context.stderr(`train: backend ${info.backend} (${info.threads} thread${info.threads === 1 ? '' : 's'}), preset ${config.name}${from ? `, starting from ${from.dir}` : ''}\n`);
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
        encoderLearningRate: numberFlag(values['encoder-lr'], '--encoder-lr', { min: 0 }),
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
        featureExtractor: await featureExtractorFor(values['feature-runtime'], context),
        resume: values.resume,
        force: values.force,
        keepEpochs: values['keep-epochs'],
        initFrom: from,
        extendVocabulary: values['extend-vocabulary'],
        objective,
        ...(objective === 'scst'
          ? {
              scst: {
                samples: numberFlag(values['scst-samples'], '--scst-samples', { integer: true, min: 1 }),
                baseline: scstBaseline as 'mean' | 'greedy' | undefined,
                maxLength: numberFlag(values['scst-max-length'], '--scst-max-length', { integer: true, min: 1 }),
              },
            }
          : {}),
        signal: stop.signal,
        log: (line) => {
          bar.end();
          context.stderr(`train: ${line}\n`);
        },
        onProgress: (p) =>
          bar.update(
            p.batch,
            p.batchesPerEpoch,
            `epoch ${p.epoch} loss ${p.loss.toFixed(3)}${p.reward !== undefined ? ` reward ${p.reward.toFixed(3)}` : ''} ${p.samplesPerSecond.toFixed(1)} samples/s ETA ${formatDuration(p.etaSeconds)}`,
          ),
      });
    } finally {
      from?.model.dispose();
      process.off('SIGTERM', onTerm);
      context.signal.removeEventListener('abort', onAbort);
    }
    bar.end();
    const summary = {
      runDir: outDir,
      best: result.bestDir,
      last: result.lastDir,
      bestEpoch: result.bestEpoch,
      ...(objective === 'scst' ? { objective, bestValCIDEr: result.bestScore } : { bestValMeteor: result.bestScore }),
      epochs: result.history.length,
      stoppedBecause: result.stoppedBecause,
      history: result.history,
    };
    if (values.json) context.stdout(`${JSON.stringify(summary, null, 2)}\n`);
    else context.stdout(`trained ${config.name}${objective === 'scst' ? ' (scst)' : ''}: ${summary.epochs} epochs, best val ${objective === 'scst' ? 'CIDEr' : 'METEOR'} ${Number(result.bestScore).toFixed(4)} at epoch ${summary.bestEpoch}; checkpoints in ${outDir} (stopped: ${summary.stoppedBecause})\n`);
    result.model.dispose();
    return ExitCode.ok;
  },
};
