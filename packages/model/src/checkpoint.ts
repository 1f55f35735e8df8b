import { promises as fsp, existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError, S2CPNetError, writeDirAtomic } from '@s2cpnet/core';
import { Vocabulary, type VocabularyJson } from '@s2cpnet/data';
import { validateConfig, type S2CPNetConfig } from './config';
import { buildS2CPNet, type ComponentFactories, type S2CPNet } from './s2cpnet';
import { readTensorFile, writeTensorFile, type StoredTensor } from './tensor-file';
import type { Adam } from './optimizer';

export const CHECKPOINT_FORMAT = 's2cpnet-checkpoint';
export const CHECKPOINT_VERSION = 1;

/** Where training stands, saved with the weights so `--resume` continues the same run. */
export interface TrainingState {
  /** Epochs fully done. */
  epoch: number;
  /** Batches done within the current (unfinished) epoch; 0 at an epoch boundary. */
  batchInEpoch: number;
  /** Optimiser steps done. */
  step: number;
  learningRate: number;
  schedule: { best: number | null; bestEpoch: number; epochsSinceImprovement: number; epochsSinceDecay: number; options: { factor: number; patience: number; stopPatience: number } };
  /** Settings of the run (batch size, seed, data folder, ...), checked on resume. */
  run: Record<string, unknown>;
  /** Per epoch: losses and validation scores. */
  history: Record<string, unknown>[];
  finished: boolean;
}

interface CheckpointJson {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  created: string;
  tfjsVersion: string;
  config: S2CPNetConfig;
  vocabSize: number;
  numClasses: number;
  /** Files beside this one. */
  files: { vocabulary: string; nouns: string; weights: string; optimizer?: string; training?: string };
}

export interface SaveCheckpointOptions {
  model: S2CPNet;
  vocabulary: Vocabulary;
  classNames: readonly string[];
  optimizer?: Adam;
  training?: TrainingState;
  /** 'uint8': weights of 1,024+ values as 8-bit per-channel quantised (inference releases; ~1/4 the size). */
  weightsDtype?: 'float32' | 'uint8';
  /** With uint8: rows per quantisation group of each channel (default 32; smaller is more accurate and larger). */
  quantizeGroupSize?: number;
  /** Extra JSON files to write in the checkpoint (e.g. a README or licence note). */
  extraFiles?: Record<string, string>;
}

/** Every weight of the model by path, as stored tensors. */
function modelTensors(model: S2CPNet): StoredTensor[] {
  return model.namedWeights().map(({ path: name, variable }) => ({
    name,
    shape: variable.shape as number[],
    values: variable.read().dataSync() as Float32Array,
  }));
}

/**
 * Writes a checkpoint folder atomically (a temp folder renamed into place): `checkpoint.json` (config and
 * sizes), `vocabulary.json`, `nouns.json`, `weights.json` + `weights.bin`, and with training state
 * `training.json` + `optimizer.json` + `optimizer.bin`. Only JSON and raw float32 data: loading runs no code.
 */
export async function saveCheckpoint(dir: string, options: SaveCheckpointOptions): Promise<void> {
  const { model } = options;
  const json: CheckpointJson = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    created: new Date().toISOString(),
    tfjsVersion: tf.version_core,
    config: model.config,
    vocabSize: model.vocabSize,
    numClasses: model.numClasses,
    files: { vocabulary: 'vocabulary.json', nouns: 'nouns.json', weights: 'weights' },
  };
  if (options.optimizer) json.files.optimizer = 'optimizer';
  if (options.training) json.files.training = 'training.json';
  const weights = modelTensors(model);
  const optimizerTensors = options.optimizer
    ? options.optimizer.stateArrays()
    : [];
  await writeDirAtomic(dir, async (tmp) => {
    await writeTensorFile(tmp, 'weights', weights, options.weightsDtype === 'uint8' ? { quantize: 'uint8', groupSize: options.quantizeGroupSize ?? 32 } : {});
    if (options.optimizer) await writeTensorFile(tmp, 'optimizer', optimizerTensors);
    await fsp.writeFile(path.join(tmp, 'vocabulary.json'), `${JSON.stringify(options.vocabulary.toJSON())}\n`);
    await fsp.writeFile(path.join(tmp, 'nouns.json'), `${JSON.stringify({ classes: options.classNames }, null, 1)}\n`);
    if (options.training) await fsp.writeFile(path.join(tmp, 'training.json'), `${JSON.stringify(options.training, null, 1)}\n`);
    for (const [name, text] of Object.entries(options.extraFiles ?? {})) await fsp.writeFile(path.join(tmp, name), text);
    await fsp.writeFile(path.join(tmp, 'checkpoint.json'), `${JSON.stringify(json, null, 2)}\n`);
  });
}

export interface LoadedCheckpoint {
  dir: string;
  model: S2CPNet;
  vocabulary: Vocabulary;
  classNames: string[];
  training: TrainingState | null;
  /** Optimiser moments by name, when the checkpoint has them (dispose after use). */
  /** Adam moments by `<path>#m` / `<path>#v`, in host memory (for `Adam.loadState`). */
  optimizerState: Map<string, StoredTensor> | null;
}

/**
 * Resolves a checkpoint reference: a folder, or an npm package that ships one (e.g.
 * `@s2cpnet/weights-ucm-mobilenet`, whose package.json names the folder under `"s2cpnet": {"checkpoint": ...}`).
 */
export function resolveCheckpointDir(reference: string, cwd = process.cwd()): string {
  const asPath = path.resolve(cwd, reference);
  if (existsSync(asPath)) return asPath;
  if (/^(@[a-z0-9._-]+\/)?[a-z0-9._-]+$/.test(reference)) {
    try {
      const pkgFile = createRequire(path.join(cwd, 'index.js')).resolve(`${reference}/package.json`);
      const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { s2cpnet?: { checkpoint?: string } };
      return path.join(path.dirname(pkgFile), pkg.s2cpnet?.checkpoint ?? 'checkpoint');
    } catch {
      throw new CheckpointError(`checkpoint ${JSON.stringify(reference)}: no such folder, and no installed npm package of that name (npm install ${reference})`);
    }
  }
  throw new CheckpointError(`checkpoint ${JSON.stringify(reference)}: no such folder (${asPath})`);
}

async function readJson(file: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (error) {
    throw new CheckpointError(`${file}: cannot read ${what} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { cause: error });
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CheckpointError(`${file}: ${what} is not valid JSON (${(error as Error).message})`, { cause: error });
  }
}

/**
 * Loads a checkpoint folder: rebuilds the model from its config, then assigns every weight by path, checking that
 * each weight exists and has the shape the model expects. Nothing in the folder is executed.
 */
export async function loadCheckpoint(reference: string, options: { factories?: ComponentFactories; cwd?: string } = {}): Promise<LoadedCheckpoint> {
  const dir = resolveCheckpointDir(reference, options.cwd);
  const file = path.join(dir, 'checkpoint.json');
  if (!existsSync(file)) throw new CheckpointError(`${dir}: not a checkpoint (no checkpoint.json)`);
  const json = (await readJson(file, 'the checkpoint description')) as Partial<CheckpointJson>;
  if (json?.format !== CHECKPOINT_FORMAT) throw new CheckpointError(`${file}: $.format: expected "${CHECKPOINT_FORMAT}", found ${JSON.stringify(json?.format)}`);
  if (json.version !== CHECKPOINT_VERSION) throw new CheckpointError(`${file}: $.version: expected ${CHECKPOINT_VERSION}, found ${JSON.stringify(json.version)}`);
  let config: S2CPNetConfig;
  try {
    config = validateConfig(json.config, `${file} (config)`);
  } catch (error) {
    throw new CheckpointError(`${file}: invalid model config: ${(error as Error).message}`, { cause: error });
  }
  const files = json.files ?? { vocabulary: 'vocabulary.json', nouns: 'nouns.json', weights: 'weights' };
  const vocabularyFile = path.join(dir, files.vocabulary);
  const vocabulary = Vocabulary.fromJSON((await readJson(vocabularyFile, 'the vocabulary')) as VocabularyJson, vocabularyFile);
  if (vocabulary.size !== json.vocabSize) {
    throw new CheckpointError(`${vocabularyFile}: vocabulary has ${vocabulary.size} words but the model was trained with ${json.vocabSize}: checkpoint of another vocabulary`);
  }
  const nounsFile = path.join(dir, files.nouns);
  const nouns = (await readJson(nounsFile, 'the noun classes')) as { classes?: unknown };
  if (!Array.isArray(nouns?.classes) || !nouns.classes.every((c) => typeof c === 'string')) {
    throw new CheckpointError(`${nounsFile}: $.classes: expected an array of strings`);
  }
  const classNames = nouns.classes as string[];
  let model: S2CPNet;
  try {
    model = buildS2CPNet(config, { vocabSize: json.vocabSize ?? vocabulary.size, numClasses: json.numClasses ?? classNames.length, factories: options.factories });
  } catch (error) {
    if (S2CPNetError.isInstance(error)) throw new CheckpointError(`${file}: cannot build the model: ${error.message}`, { cause: error });
    throw error;
  }
  const stored = await readTensorFile(dir, files.weights);
  const expected = model.namedWeights();
  const problems: string[] = [];
  for (const { path: name, variable } of expected) {
    const t = stored.get(name);
    if (!t) problems.push(`missing weight ${name} [${variable.shape.join(', ')}]`);
    else if (t.shape.length !== variable.shape.length || t.shape.some((d, i) => d !== variable.shape[i])) {
      problems.push(`weight ${name}: the model expects [${variable.shape.join(', ')}], the checkpoint has [${t.shape.join(', ')}]`);
    }
  }
  const known = new Set(expected.map((w) => w.path));
  const unexpected = [...stored.keys()].filter((k) => !known.has(k));
  if (unexpected.length) problems.push(`${unexpected.length} weight(s) the model does not have, e.g. ${unexpected.slice(0, 3).join(', ')}`);
  if (problems.length) {
    model.dispose();
    throw new CheckpointError(`${dir}: weights do not fit the model:\n  ${problems.slice(0, 10).join('\n  ')}${problems.length > 10 ? `\n  ... and ${problems.length - 10} more` : ''}`);
  }
  for (const { path: name, variable } of expected) {
    const t = stored.get(name)!;
    const value = tf.tensor(t.values, t.shape);
    variable.write(value);
    value.dispose();
  }
  let training: TrainingState | null = null;
  if (files.training && existsSync(path.join(dir, files.training))) training = (await readJson(path.join(dir, files.training), 'the training state')) as TrainingState;
  let optimizerState: Map<string, StoredTensor> | null = null;
  if (files.optimizer && existsSync(path.join(dir, `${files.optimizer}.json`))) {
    const opt = await readTensorFile(dir, files.optimizer);
    optimizerState = opt;
  }
  return { dir, model, vocabulary, classNames, training, optimizerState };
}
