import { promises as fsp, existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError, S2CPNetError, writeDirAtomic } from '@s2cpnet/core';
import { Vocabulary, type VocabularyJson } from '@s2cpnet/data';
import { validateConfig, type S2CPNetConfig } from './config';
import { buildS2CPNet, type ComponentFactories, type S2CPNet } from './s2cpnet';
import { readTensorData, readTensorFile, readTensorManifest, writeTensorFile, type StoredTensor } from './tensor-file';
import { MAX_JSON_BYTES, brief, readJsonFile, readJsonFileSync, resolveInside } from './safe-read';
import { minimumParameterCounts } from './parameter-bounds';
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
  /** How the training data's mask views were made, so captioning computes them the same way. */
  masks?: CheckpointMaskSettings;
}

/**
 * The mask settings of the data a checkpoint was trained on (from `prepare`'s manifest): captioning new images must
 * compute their mask views the same way (same segmenter, same working size) or the model sees another input.
 */
export interface CheckpointMaskSettings {
  /** The mask provider's name (`felzenszwalb`, `folder`, ...). */
  provider: string;
  /** True when training used precomputed mask images (captioning then needs `--masks` of the same kind). */
  precomputed: boolean;
  /** The side images were resized to before segmentation; null for precomputed masks. */
  workingSize: number | null;
  /**
   * Version of the built-in segmenter (`prepare --masks-version`): `v1` Felzenszwalb segments, `v2` targets on a
   * background. Absent (checkpoints written before versions, other providers): v1.
   */
  version?: 'v1' | 'v2';
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
  /** The mask settings of the training data (`prepare`'s manifest), recorded in checkpoint.json. */
  masks?: CheckpointMaskSettings | null;
}

/** Every weight of the model by path, as stored tensors (read asynchronously: GPU backends have no sync reads). */
async function modelTensors(model: S2CPNet): Promise<StoredTensor[]> {
  const out: StoredTensor[] = [];
  for (const { path: name, variable } of model.namedWeights()) {
    out.push({ name, shape: variable.shape as number[], values: (await variable.read().data()) as Float32Array });
  }
  return out;
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
  if (options.masks) {
    json.masks = { provider: options.masks.provider, precomputed: options.masks.precomputed, workingSize: options.masks.workingSize };
    if (options.masks.version !== undefined) json.masks.version = options.masks.version;
  }
  if (options.optimizer) json.files.optimizer = 'optimizer';
  if (options.training) json.files.training = 'training.json';
  const weights = await modelTensors(model);
  const optimizerTensors = options.optimizer ? await options.optimizer.stateArrays() : [];
  await writeDirAtomic(dir, async (tmp) => {
    await writeTensorFile(tmp, 'weights', weights, options.weightsDtype === 'uint8' ? { quantize: 'uint8', groupSize: options.quantizeGroupSize ?? 32 } : {});
    if (options.optimizer) await writeTensorFile(tmp, 'optimizer', optimizerTensors);
    await fsp.writeFile(path.join(tmp, 'vocabulary.json'), `${JSON.stringify(options.vocabulary.toJSON())}\n`);
    await fsp.writeFile(path.join(tmp, 'nouns.json'), `${JSON.stringify({ classes: options.classNames }, null, 1)}\n`);
    if (options.training) await fsp.writeFile(path.join(tmp, 'training.json'), `${JSON.stringify(options.training, null, 1)}\n`);
    for (const [name, text] of Object.entries(options.extraFiles ?? {})) await fsp.writeFile(path.join(tmp, name), text);
    // Last: a folder with a checkpoint.json was written to the end (crash recovery in train relies on it).
    await fsp.writeFile(path.join(tmp, 'checkpoint.json'), `${JSON.stringify(json, null, 2)}\n`);
  }, { durable: true });
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
  /** How the training data's masks were made; null for checkpoints written before this was recorded. */
  masks: CheckpointMaskSettings | null;
}

/** `$.masks` of checkpoint.json, checked: null when absent. */
function maskSettingsOf(value: unknown, file: string): CheckpointMaskSettings | null {
  if (value === undefined || value === null) return null;
  const fail = (what: string, found: unknown) => new CheckpointError(`${file}: $.masks.${what}, found ${brief(found)}`);
  if (!isRecord(value)) throw new CheckpointError(`${file}: $.masks: expected an object, found ${brief(value)}`);
  if (typeof value.provider !== 'string' || value.provider.length > 200) throw fail('provider: expected a name', value.provider);
  if (typeof value.precomputed !== 'boolean') throw fail('precomputed: expected true or false', value.precomputed);
  const size = value.workingSize;
  if (size !== null && !(Number.isInteger(size) && (size as number) >= 1 && (size as number) <= 16384)) throw fail('workingSize: expected null or an integer in [1, 16384]', size);
  const settings: CheckpointMaskSettings = { provider: value.provider, precomputed: value.precomputed, workingSize: size as number | null };
  if (value.version !== undefined) {
    if (value.version !== 'v1' && value.version !== 'v2') throw fail('version: expected "v1" or "v2"', value.version);
    settings.version = value.version;
  }
  return settings;
}

/**
 * Resolves a checkpoint reference: a checkpoint folder, a weights package folder (whose package.json names its
 * checkpoint folder under `"s2cpnet": {"checkpoint": ...}`, e.g. `weights/ucm-mobilenet`), or the npm name of an
 * installed package that ships one (e.g. `@s2cpnet/weights-ucm-mobilenet`). The folder a package.json names must
 * lie inside the package.
 */
export function resolveCheckpointDir(reference: string, cwd = process.cwd()): string {
  if (typeof reference !== 'string' || reference === '') throw new CheckpointError(`checkpoint: expected a folder or an npm package name, found ${brief(reference)}`);
  const asPath = path.resolve(cwd, reference);
  if (existsSync(asPath)) return checkpointInFolder(asPath);
  if (/^(@[a-z0-9._-]+\/)?[a-z0-9._-]+$/.test(reference)) {
    let pkgFile: string;
    try {
      pkgFile = createRequire(path.join(cwd, 'index.js')).resolve(`${reference}/package.json`);
    } catch (error) {
      throw new CheckpointError(`checkpoint ${JSON.stringify(reference)}: no such folder, and no installed npm package of that name (npm install ${reference})`, { cause: error });
    }
    return packageCheckpoint(path.dirname(pkgFile)) ?? path.join(path.dirname(pkgFile), 'checkpoint');
  }
  throw new CheckpointError(`checkpoint ${JSON.stringify(reference)}: no such folder (${asPath})`);
}

/** An existing path given as a checkpoint: the checkpoint folder itself, its checkpoint.json, or a weights package. */
function checkpointInFolder(dir: string): string {
  if (path.basename(dir) === 'checkpoint.json' && statSync(dir).isFile()) return path.dirname(dir);
  if (existsSync(path.join(dir, 'checkpoint.json'))) return dir;
  if (existsSync(path.join(dir, 'package.json'))) return packageCheckpoint(dir) ?? dir;
  return dir;
}

/** The checkpoint folder a package's package.json names (`"s2cpnet": {"checkpoint": "..."}`), checked to lie inside it. */
function packageCheckpoint(pkgDir: string): string | null {
  const pkgFile = path.join(pkgDir, 'package.json');
  const pkg = readJsonFileSync(pkgFile, { what: 'the package description', maxBytes: 4 * 2 ** 20 }) as { s2cpnet?: { checkpoint?: unknown } } | null;
  const named = typeof pkg === 'object' && pkg !== null && typeof pkg.s2cpnet === 'object' && pkg.s2cpnet !== null ? pkg.s2cpnet.checkpoint : undefined;
  if (named === undefined) return null;
  resolveInside(pkgDir, named, '$.s2cpnet.checkpoint', pkgFile, 'package folder');
  return path.resolve(pkgDir, named as string);
}

/** Reads a JSON file of a checkpoint: a regular file of at most 64 MiB; errors never quote its content. */
async function readJson(file: string, what: string, jsonPath?: string): Promise<unknown> {
  return readJsonFile(file, { what, jsonPath, maxBytes: MAX_JSON_BYTES });
}

/** Largest vocabulary accepted in a checkpoint. */
const MAX_VOCABULARY = 10_000_000;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Loads a checkpoint folder: rebuilds the model from its config, then assigns every weight by path, checking that
 * each weight exists and has the shape the model expects. Nothing in the folder is executed.
 *
 * The folder is untrusted: every file that checkpoint.json names must lie inside it (after symbolic links) and be
 * a regular file; JSON files are read up to 64 MiB and the weights up to exactly the size weights.json gives; the
 * config's sizes are bounded, and the parameters they imply are compared with the weights on disk before the model
 * is built. Errors are CheckpointErrors naming the file and JSON entry, never quoting a file's content.
 */
export async function loadCheckpoint(reference: string, options: { factories?: ComponentFactories; cwd?: string } = {}): Promise<LoadedCheckpoint> {
  const dir = resolveCheckpointDir(reference, options.cwd);
  const file = path.join(dir, 'checkpoint.json');
  if (!existsSync(file)) throw new CheckpointError(`${dir}: not a checkpoint (no checkpoint.json, and no package.json naming one under "s2cpnet": {"checkpoint": ...})`);
  const json = await readJson(resolveInside(dir, 'checkpoint.json', 'checkpoint.json', dir), 'the checkpoint description');
  if (!isRecord(json)) throw new CheckpointError(`${file}: $: expected a JSON object, found ${brief(json)}`);
  if (json.format !== CHECKPOINT_FORMAT) throw new CheckpointError(`${file}: $.format: expected "${CHECKPOINT_FORMAT}", found ${brief(json.format)}`);
  if (json.version !== CHECKPOINT_VERSION) throw new CheckpointError(`${file}: $.version: expected ${CHECKPOINT_VERSION}, found ${brief(json.version)}`);
  let config: S2CPNetConfig;
  try {
    config = validateConfig(json.config, `${file} (config)`);
  } catch (error) {
    throw new CheckpointError(`${file}: invalid model config: ${(error as Error).message}`, { cause: error });
  }
  const masks = maskSettingsOf(json.masks, file);
  const files = json.files === undefined ? { vocabulary: 'vocabulary.json', nouns: 'nouns.json', weights: 'weights' } : json.files;
  if (!isRecord(files)) throw new CheckpointError(`${file}: $.files: expected an object naming the files of the checkpoint, found ${brief(files)}`);
  // Every file the checkpoint names must lie inside its folder; checked before anything is read.
  const inside = (key: string, suffix = '') => {
    const name = files[key];
    if (suffix && (typeof name !== 'string' || name === '')) throw new CheckpointError(`${file}: $.files.${key}: expected the base name of a tensor file pair, found ${brief(name)}`);
    return resolveInside(dir, suffix ? `${name as string}${suffix}` : name, `$.files.${key}`, file);
  };
  const vocabularyFile = inside('vocabulary');
  const nounsFile = inside('nouns');
  inside('weights', '.json');
  inside('weights', '.bin');
  const trainingFile = files.training === undefined ? null : inside('training');
  const optimizerManifest = files.optimizer === undefined ? null : (inside('optimizer', '.bin'), inside('optimizer', '.json'));

  const vocabSize = json.vocabSize;
  if (typeof vocabSize !== 'number' || !Number.isSafeInteger(vocabSize) || vocabSize < 4 || vocabSize > MAX_VOCABULARY) {
    throw new CheckpointError(`${file}: $.vocabSize: expected an integer from 4 to ${MAX_VOCABULARY}, found ${brief(vocabSize)}`);
  }
  let vocabulary: Vocabulary;
  try {
    vocabulary = Vocabulary.fromJSON((await readJson(vocabularyFile, 'the vocabulary', '$.files.vocabulary')) as VocabularyJson, vocabularyFile);
  } catch (error) {
    if (!S2CPNetError.isInstance(error) || error.code === 'CHECKPOINT') throw error;
    // The vocabulary's own messages quote the values they found: keep where and what was expected only.
    const jsonPath = (error as { jsonPath?: string }).jsonPath ?? '$';
    const expected = error.message.slice(error.message.indexOf(`${jsonPath}: `) + jsonPath.length + 2).replace(/,? found [\s\S]*$/, '');
    throw new CheckpointError(`${vocabularyFile}: not a valid vocabulary: ${jsonPath}: ${expected}`, { cause: error });
  }
  if (vocabulary.size !== vocabSize) {
    throw new CheckpointError(`${vocabularyFile}: vocabulary has ${vocabulary.size} words but the model was trained with ${vocabSize}: checkpoint of another vocabulary`);
  }
  const nouns = (await readJson(nounsFile, 'the noun classes', '$.files.nouns')) as { classes?: unknown };
  if (!isRecord(nouns) || !Array.isArray(nouns.classes) || !nouns.classes.every((c) => typeof c === 'string')) {
    throw new CheckpointError(`${nounsFile}: $.classes: expected an array of strings`);
  }
  const classNames = nouns.classes as string[];
  const numClasses = json.numClasses ?? classNames.length;
  if (typeof numClasses !== 'number' || !Number.isSafeInteger(numClasses) || numClasses < 0 || (config.categoryHead ? numClasses !== classNames.length : numClasses > classNames.length)) {
    throw new CheckpointError(`${file}: $.numClasses: expected ${config.categoryHead ? '' : 'at most '}${classNames.length} (the classes in ${path.basename(nounsFile)}), found ${brief(numClasses)}`);
  }

  // The weights on disk bound the model: compare what the config implies with them before building anything.
  const weights = await readTensorManifest(dir, files.weights as string, { jsonPath: '$.files.weights', source: file });
  const bounds = minimumParameterCounts(config, { vocabSize, numClasses, factories: options.factories });
  const implied = bounds.reduce((sum, b) => sum + b.parameters, 0);
  if (implied > weights.totalValues) {
    const largest = bounds.reduce((a, b) => (b.parameters > a.parameters ? b : a));
    const count = (n: number) => Math.round(n).toLocaleString('en-US');
    throw new CheckpointError(
      `${file}: $.config${largest.jsonPath.slice(1)}: this config implies at least ${count(largest.parameters)} parameters there (${count(implied)} in all), ` +
        `but ${path.basename(weights.manifestFile)} holds ${count(weights.totalValues)}: the config does not fit the weights`,
    );
  }
  let model: S2CPNet;
  try {
    model = buildS2CPNet(config, { vocabSize, numClasses, factories: options.factories });
  } catch (error) {
    if (S2CPNetError.isInstance(error)) throw new CheckpointError(`${file}: cannot build the model: ${error.message}`, { cause: error });
    throw error;
  }
  try {
    const stored = await readTensorData(weights);
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
    if (unexpected.length) problems.push(`${unexpected.length} weight(s) the model does not have, e.g. ${unexpected.slice(0, 3).map((k) => brief(k)).join(', ')}`);
    if (problems.length) {
      throw new CheckpointError(`${dir}: weights do not fit the model:\n  ${problems.slice(0, 10).join('\n  ')}${problems.length > 10 ? `\n  ... and ${problems.length - 10} more` : ''}`);
    }
    for (const { path: name, variable } of expected) {
      const t = stored.get(name)!;
      const value = tf.tensor(t.values, t.shape);
      variable.write(value);
      value.dispose();
    }
    let training: TrainingState | null = null;
    if (trainingFile && existsSync(trainingFile)) training = (await readJson(trainingFile, 'the training state', '$.files.training')) as TrainingState;
    let optimizerState: Map<string, StoredTensor> | null = null;
    if (optimizerManifest && existsSync(optimizerManifest)) {
      optimizerState = await readTensorFile(dir, files.optimizer as string, { jsonPath: '$.files.optimizer', source: file });
    }
    return { dir, model, vocabulary, classNames, training, optimizerState, masks };
  } catch (error) {
    model.dispose();
    throw error;
  }
}
