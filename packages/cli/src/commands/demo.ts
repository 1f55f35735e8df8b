import { parseArgs } from 'node:util';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '@s2cpnet/core';
import { writeSyntheticAerialSet, prepareDataset, imagesOfSplit, type DatasetImage } from '@s2cpnet/data';
import { presetConfig, train, evaluateSplit, loadCheckpoint, type S2CPNetConfig } from '@s2cpnet/model';
import type { Command, CommandContext } from '../command';
import { ExitCode } from '../command';
import { initBackend } from '../backend';
import { ProgressBar, formatDuration } from '../progress';
import { numberFlag } from './train';
import { scoreCaptions } from '@s2cpnet/metrics';
import { renderReport, stepLossSeries, type ReportItem } from '../demo/report';
import { pngDataUri } from '../demo/heatmap';

/** Size of the embedded demo: chosen so that it trains in a few minutes on 2 CPU cores (wasm backend). */
export const DEMO_SETTINGS = {
  seed: 7,
  images: 4000,
  imageSize: 64,
  /** A fixed number of epochs (not a time budget) keeps the demo deterministic under its seed. */
  epochs: 2,
  batchSize: 16,
  learningRate: 1e-3,
  /** Gallery page size of the report (every evaluated test image is in the report). */
  reportPageSize: 24,
} as const;

/** A small S²CPNet for the 64 px synthetic scenes: a reduced ResNet trained from scratch, narrow fusion and decoder. */
export function demoConfig(seed: number = DEMO_SETTINGS.seed): S2CPNetConfig {
  const config = presetConfig('s2cpnet');
  const d = 128;
  return {
    ...config,
    name: 'demo',
    encoder: { type: 'resnet50', inputSize: DEMO_SETTINGS.imageSize, grid: 'native', blocksPerStage: [1, 1, 1, 1], baseWidth: 8, freeze: 'none' },
    semanticEnhancer: { reduction: 16, variant: 'paper' },
    spatialEnhancer: { outputChannels: d, variant: 'paper' },
    fusion: { type: 'cvff', dim: d, heads: 4, units: 1, ffnMultiplier: 4, dropout: 0.1 },
    categoryHead: { type: 'multi-label', dim: d, numHeads: 4, dropout: 0.1 },
    captionDecoder: { type: 'gated', dim: d, numLayers: 2, numHeads: 4, dropout: 0.1, maxLength: 32 },
    seed,
  };
}

async function fileDataUri(file: string): Promise<string> {
  return pngDataUri(await fsp.readFile(file));
}

export async function runDemo(
  context: CommandContext,
  options: { out: string; seed: number; images: number; epochs: number; trainMinutes?: number },
): Promise<Record<string, number>> {
  const started = Date.now();
  const say = (line: string) => context.stderr(`demo: ${line}\n`);
  const info = await initBackend({ ...context.backend });
  say(`backend ${info.backend} (${info.threads} thread${info.threads === 1 ? '' : 's'}); output in ${options.out}`);
  const dataDir = path.join(options.out, 'synthetic');
  const preparedDir = path.join(options.out, 'prepared');
  const runDir = path.join(options.out, 'run');
  await fsp.rm(runDir, { recursive: true, force: true });

  say(`1/5 generating ${options.images} synthetic aerial scenes (seed ${options.seed})`);
  const set = await writeSyntheticAerialSet(dataDir, { seed: options.seed, count: options.images, size: DEMO_SETTINGS.imageSize });

  say('2/5 preparing: vocabulary, target nouns, masks');
  await prepareDataset({ annotations: set.datasetFile, imagesDir: set.imagesDir, masksDir: set.masksDir, outDir: preparedDir, size: DEMO_SETTINGS.imageSize, signal: context.signal });

  say(`3/5 training a small S²CPNet for ${options.epochs} epochs${options.trainMinutes !== undefined ? ` (at most ${options.trainMinutes} minutes)` : ''}`);
  const bar = new ProgressBar(context, 'demo: train', 10000);
  const stepLosses: { x: number; y: number }[] = [];
  const result = await train({
    data: preparedDir,
    runDir,
    config: demoConfig(options.seed),
    batchSize: DEMO_SETTINGS.batchSize,
    learningRate: DEMO_SETTINGS.learningRate,
    maxEpochs: options.epochs,
    timeBudgetMinutes: options.trainMinutes,
    schedule: { factor: 0.2, patience: 3, stopPatience: 1000 },
    validation: { beamSize: 1, maxImages: 100 },
    signal: context.signal,
    log: (line) => {
      bar.end();
      say(line);
    },
    onProgress: (p) => {
      stepLosses.push({ x: p.step, y: p.loss });
      bar.update(p.batch, p.batchesPerEpoch, `epoch ${p.epoch} loss ${p.loss.toFixed(3)} ${p.samplesPerSecond.toFixed(0)} samples/s ETA ${formatDuration(p.etaSeconds)}`);
    },
  });
  bar.end();

  // model selection on VAL only: the checkpoint of the best validation METEOR is the one tested
  const best = await loadCheckpoint(result.bestDir);
  result.model.dispose();
  say(`4/5 evaluating the best epoch (${result.bestEpoch}, by val METEOR) on the held-out test split (beam 3)`);
  const { scores, predictions } = await evaluateSplit(best.model, result.prepared, 'test', { beamSize: 3, signal: context.signal });
  const corpus = Object.fromEntries(Object.entries(scores).map(([k, v]) => [k, Number(v)])) as Record<string, number>;
  await writeJsonAtomic(path.join(options.out, 'scores.json'), { split: 'test', beam: 3, images: predictions.length, corpus, seed: options.seed, backend: info.backend });
  await writeJsonAtomic(path.join(options.out, 'predictions_test.json'), predictions.map((p) => ({ image_id: p.image_id, caption: p.caption })));

  say('5/5 writing the report');
  const testImages = new Map(imagesOfSplit(result.prepared.dataset, 'test').map((i) => [i.id, i] as [string, DatasetImage]));
  // per-image scores within the test set (CIDEr-D's document frequencies come from all its references)
  const perImage = (
    await scoreCaptions(
      predictions.map((p) => ({ imageId: p.image_id, candidate: p.caption, references: testImages.get(p.image_id)!.captions.map((c) => c.raw) })),
      { metrics: ['CIDEr', 'Bleu', 'ROUGE_L'] },
    )
  ).perImage;
  const items: ReportItem[] = [];
  for (const [index, p] of predictions.entries()) {
    const image = testImages.get(p.image_id)!;
    const maskFile = path.join(set.masksDir, path.basename(image.file));
    const scored = perImage[index]!;
    items.push({
      id: path.basename(image.file),
      image: await fileDataUri(image.file),
      mask: await fileDataUri(maskFile),
      generated: p.caption,
      references: image.captions.map((c) => c.raw),
      categories: p.result.categories.map((c) => ({ name: c.name, probability: c.probability })),
      cider: scored.CIDEr,
      scores: { Bleu_4: scored.Bleu_4 ?? 0, ROUGE_L: scored.ROUGE_L ?? 0 },
      grid: p.result.grid,
      attention: p.result.attention.map((a) => ({ word: a.word, weights: a.weights })),
    });
  }
  const html = renderReport({
    title: 'S²CPNet toolkit demo: synthetic aerial scenes',
    subtitle: `A small S²CPNet trained from scratch for ${result.history.length} epoch${result.history.length === 1 ? '' : 's'} on ${imagesOfSplit(result.prepared.dataset, 'train').length} synthetic scenes, scored on ${predictions.length} held-out test scenes with beam search (width 3).`,
    scores: corpus,
    curves: [
      stepLosses.length
        ? { name: 'training loss', axis: 'optimiser step', yLabel: 'loss (per batch)', points: stepLosses, series: stepLossSeries(stepLosses) }
        : { name: 'training loss (epoch mean)', axis: 'epoch', yLabel: 'loss', points: result.history.map((h) => ({ x: h.epoch, y: h.trainLoss })) },
      { name: 'val METEOR (greedy)', axis: 'epoch', yLabel: 'METEOR', points: result.history.map((h) => ({ x: h.epoch, y: h.val.METEOR ?? 0 })) },
      { name: 'val CIDEr (greedy)', axis: 'epoch', yLabel: 'CIDEr', points: result.history.map((h) => ({ x: h.epoch, y: h.val.CIDEr ?? 0 })) },
    ],
    items,
    pageSize: DEMO_SETTINGS.reportPageSize,
    settings: {
      backend: `${info.backend} (${info.threads} thread${info.threads === 1 ? '' : 's'})`,
      seed: options.seed,
      images: options.images,
      'epochs (planned)': options.epochs,
      epochs: result.history.length,
      parameters: best.model.countParams(),
      'best epoch (val METEOR)': result.bestEpoch,
      'total time': formatDuration((Date.now() - started) / 1000),
    },
  });
  await writeFileAtomic(path.join(options.out, 'report.html'), html);
  best.model.dispose();
  return corpus;
}

/** The flags `s2cpnet demo` accepts (its `--help` lists each one). */
export const DEMO_OPTIONS = {
  out: { type: 'string' },
  seed: { type: 'string' },
  images: { type: 'string' },
  epochs: { type: 'string' },
  'train-minutes': { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

export const demoCommand: Command = {
  name: 'demo',
  summary: 'Generate a synthetic aerial set, train a small S²CPNet, evaluate and write demo-output/report.html',
  usage: `s2cpnet demo [options]

Options:
  --out DIR                 output folder (default demo-output): the synthetic set, the run, scores.json, report.html
  --seed N                  seed of the synthetic scenes and of training (default ${DEMO_SETTINGS.seed})
  --images N                synthetic scenes to generate, at least 50 (default ${DEMO_SETTINGS.images})
  --epochs N                training epochs (default ${DEMO_SETTINGS.epochs})
  --train-minutes M         also stop training after the epoch during which M minutes have passed
                            (default: no limit, so the result does not depend on the machine's speed)
  --json                    print the test scores as JSON on stdout (default off: a table)`,
  async run(argv, context) {
    const { values } = parseArgs({ args: argv, strict: true, options: DEMO_OPTIONS });
    const out = path.resolve(context.cwd, values.out ?? 'demo-output');
    const corpus = await runDemo(context, {
      out,
      seed: numberFlag(values.seed, '--seed', { integer: true }) ?? DEMO_SETTINGS.seed,
      images: numberFlag(values.images, '--images', { integer: true, min: 50 }) ?? DEMO_SETTINGS.images,
      epochs: numberFlag(values.epochs, '--epochs', { integer: true, min: 1 }) ?? DEMO_SETTINGS.epochs,
      // a time cap makes the result depend on the machine's speed; off by default
      trainMinutes: numberFlag(values['train-minutes'], '--train-minutes', { min: 0 }),
    });
    if (values.json) context.stdout(`${JSON.stringify(corpus, null, 2)}\n`);
    else {
      context.stdout('Scores on the synthetic test split (beam 3):\n');
      for (const [k, v] of Object.entries(corpus)) context.stdout(`  ${k.padEnd(8)} ${v.toFixed(4)}\n`);
      context.stdout(`Report: ${path.join(out, 'report.html')}\n`);
    }
    return ExitCode.ok;
  },
};
