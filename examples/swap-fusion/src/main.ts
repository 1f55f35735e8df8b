/**
 * Swap the fusion strategy: the same small S²CPNet (two views, gated decoder) built with the built-in fusions
 * `cvff`, `add` and `concat` and with a user-defined `gated-sum` strategy plugged in through the factory map,
 * each trained for a few steps on a synthetic aerial set.
 *
 *   npm start -- [--images 64] [--epochs 3] [--batch-size 8] [--dim 32] [--fusions cvff,add,concat,gated-sum]
 *                [--backend wasm|cpu|tensorflow] [--work-dir DIR]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@s2cpnet/cli';
import { prepareDataset, writeSyntheticAerialSet } from '@s2cpnet/data';
import { defaultFusions } from '@s2cpnet/fusion';
import { presetConfig, train, type ComponentFactories, type S2CPNetConfig } from '@s2cpnet/model';
import { createGatedSumFusion } from './gated-sum-fusion';

/** The built-in strategies this example compares, plus the one it defines. */
export const FUSION_TYPES = ['cvff', 'add', 'concat', 'gated-sum'] as const;

/** The built-in map extended with the user-defined strategy: every `type` the model can now be built with. */
export const fusions = { ...defaultFusions, 'gated-sum': createGatedSumFusion };
const factories: ComponentFactories = { fusion: fusions };

export interface SwapFusionOptions {
  /** tfjs backend (default: `S2CPNET_BACKEND`, else the fastest available). */
  backend?: string;
  /** Fusion types to compare, in order. Default all four. */
  fusions?: readonly string[];
  /** Synthetic images to generate (80% train). Default 64. */
  images?: number;
  /** Training epochs per fusion. Default 3. */
  epochs?: number;
  batchSize?: number;
  /** Model width d. Default 32. */
  dim?: number;
  learningRate?: number;
  seed?: number;
  /** Where the synthetic set, the prepared set and the runs go. Default: a temp folder, removed at the end. */
  workDir?: string;
  log?: (line: string) => void;
}

export interface FusionRun {
  fusion: string;
  /** model.countParams() of the trained model. */
  parameters: number;
  /** Parameters of the fusion layer alone. */
  fusionParameters: number;
  /** Shape of the memory the fusion returns for a batch of two images: [B, G*G, memoryWidth]. */
  memoryShape: number[];
  /** Training loss of every optimiser step, in order. */
  stepLosses: number[];
  /** Mean training loss of every epoch. */
  epochLosses: number[];
  seconds: number;
}

export interface SwapFusionResult {
  backend: string;
  trainImages: number;
  runs: FusionRun[];
  /** The printed table. */
  table: string;
}

/**
 * The `model2` ablation (both views, no enhancers, no noun task, gated decoder), shrunk so it trains in seconds on a
 * CPU: a ResNet50 with one bottleneck per stage and base width 8 on 64 px inputs (a 2x2 grid), one fusion unit,
 * one decoder layer. Only `fusion.type` changes between runs.
 */
export function smallConfig(fusionType: string, dim: number, seed: number): S2CPNetConfig {
  const base = presetConfig('model2');
  return {
    ...base,
    name: `swap-fusion-${fusionType}`,
    encoder: { type: 'resnet50', inputSize: 64, grid: 'native', blocksPerStage: [1, 1, 1, 1], baseWidth: 8, freeze: 'none' },
    fusion: { type: fusionType, dim, heads: 4, units: 1, ffnMultiplier: 2, dropout: 0.1 },
    captionDecoder: { type: 'gated', dim, numLayers: 1, numHeads: 4, dropout: 0.1, maxLength: 32 },
    seed,
  };
}

function formatTable(runs: readonly FusionRun[]): string {
  const header = ['fusion', 'parameters', 'fusion params', 'memory shape', 'loss: first step', 'last step', 'epoch means', 'seconds'];
  const rows = runs.map((r) => [
    r.fusion,
    r.parameters.toLocaleString('en-US'),
    r.fusionParameters.toLocaleString('en-US'),
    `[${r.memoryShape.join(', ')}]`,
    r.stepLosses[0]!.toFixed(3),
    r.stepLosses[r.stepLosses.length - 1]!.toFixed(3),
    r.epochLosses.map((l) => l.toFixed(3)).join(' > '),
    r.seconds.toFixed(1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export async function run(options: SwapFusionOptions = {}): Promise<SwapFusionResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const fusionTypes = options.fusions ?? FUSION_TYPES;
  const images = options.images ?? 64;
  const epochs = options.epochs ?? 3;
  const batchSize = options.batchSize ?? 8;
  const dim = options.dim ?? 32;
  const seed = options.seed ?? 1;
  for (const type of fusionTypes) {
    if (!Object.prototype.hasOwnProperty.call(fusions, type) || type === 'single-view') {
      throw new Error(`--fusions: unknown two-view fusion ${JSON.stringify(type)}; expected some of: ${Object.keys(fusions).filter((t) => t !== 'single-view').join(', ')}`);
    }
  }

  const info = await initBackend({ backend: options.backend });
  log(`backend: ${info.backend}`);
  const workDir = options.workDir ?? mkdtempSync(path.join(os.tmpdir(), 's2cpnet-swap-fusion-'));
  try {
    const set = await writeSyntheticAerialSet(path.join(workDir, 'synthetic'), { seed, count: images, size: 64 });
    const preparedDir = path.join(workDir, 'prepared');
    await prepareDataset({ annotations: set.datasetFile, imagesDir: set.imagesDir, masksDir: set.masksDir, outDir: preparedDir, size: 64 });
    log(`synthetic set: ${set.splitSizes.train} train / ${set.splitSizes.val} val images, ${epochs} epochs of batch ${batchSize} per fusion\n`);

    const runs: FusionRun[] = [];
    for (const fusion of fusionTypes) {
      const started = Date.now();
      const stepLosses: number[] = [];
      const result = await train({
        data: preparedDir,
        runDir: path.join(workDir, 'runs', fusion),
        config: smallConfig(fusion, dim, seed),
        factories,
        batchSize,
        learningRate: options.learningRate ?? 2e-3,
        maxEpochs: epochs,
        // a few epochs only: never decay the learning rate or stop early on the tiny validation split
        schedule: { factor: 0.2, patience: 1000, stopPatience: 1000 },
        validation: { beamSize: 1, maxImages: 4 },
        onProgress: (progress) => stepLosses.push(progress.loss),
      });
      const model = result.model;
      const memoryShape = tf.tidy(() => {
        const pixels = tf.randomNormal([2, model.inputSize, model.inputSize, 3], 0, 1, 'float32', seed) as tf.Tensor4D;
        return model.memory({ images: pixels, masks: pixels }, { training: false }).shape;
      });
      const run: FusionRun = {
        fusion,
        parameters: model.countParams(),
        fusionParameters: model.fusion.countParams(),
        memoryShape,
        stepLosses,
        epochLosses: result.history.map((h) => h.trainLoss),
        seconds: (Date.now() - started) / 1000,
      };
      model.dispose();
      runs.push(run);
      log(`${fusion}: ${run.parameters.toLocaleString('en-US')} parameters, memory [${memoryShape.join(', ')}], loss ${stepLosses[0]!.toFixed(3)} -> ${stepLosses[stepLosses.length - 1]!.toFixed(3)} in ${stepLosses.length} steps`);
    }
    const table = formatTable(runs);
    log(`\n${table}`);
    return { backend: info.backend, trainImages: set.splitSizes.train, runs, table };
  } finally {
    if (!options.workDir) rmSync(workDir, { recursive: true, force: true });
  }
}

function positiveInteger(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: expected a positive integer, found ${JSON.stringify(value)}`);
  return n;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      backend: { type: 'string' },
      fusions: { type: 'string' },
      images: { type: 'string' },
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      dim: { type: 'string' },
      'work-dir': { type: 'string' },
    },
  });
  run({
    backend: values.backend,
    fusions: values.fusions?.split(',').map((s) => s.trim()),
    images: positiveInteger(values.images, '--images'),
    epochs: positiveInteger(values.epochs, '--epochs'),
    batchSize: positiveInteger(values['batch-size'], '--batch-size'),
    dim: positiveInteger(values.dim, '--dim'),
    workDir: values['work-dir'] ? path.resolve(values['work-dir']) : undefined,
  }).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
