import { ConfigError } from '@s2cpnet/core';
import { PRESETS, PRESET_NAMES, isPresetName, type PresetName } from './presets';

/**
 * The typed JSON document that describes a model. Every component is named by `type`; sizes that follow from
 * other parts (channels from the encoder, grid, memory width, vocabulary and class counts) are filled in when the
 * model is built, so a config stays valid across datasets.
 */
export interface S2CPNetConfig {
  schemaVersion: 1;
  /** Preset the config came from, or 'custom'. */
  name: string;
  /** Backbone shared by both views; any `type` of the encoder factory map (`@s2cpnet/encoder`). */
  encoder: { type: string; [key: string]: unknown };
  /**
   * Pretrained backbone weights loaded into the encoder when training starts (not on resume: checkpoints hold
   * every weight). `format` is detected from the path when omitted: a folder with `model.json` is a TF.js layers
   * model, `.h5`/`.hdf5` Keras HDF5, `.safetensors` safetensors (torchvision names). Null: random initialisation.
   */
  encoderWeights?: { path: string; format?: 'tfjs-layers' | 'keras-hdf5' | 'safetensors' } | null;
  /** Read the mask view (the second input). */
  useMaskView: boolean;
  /** Semantic enhancer on the image view, or null. */
  semanticEnhancer: { reduction?: number; variant?: 'paper' | 'reference' } | null;
  /** Spatial enhancer on the mask view, or null. */
  spatialEnhancer: { outputChannels?: number; variant?: 'paper' | 'reference'; lowPassGrid?: number | null } | null;
  /** Fusion strategy; `dim`, `heads`, `units`, `ffnMultiplier`, `dropout` as in `@s2cpnet/fusion`. */
  fusion: { type: string; dim: number; [key: string]: unknown };
  /** Category (noun) head, or null for presets without the task. */
  categoryHead: { type: string; [key: string]: unknown } | null;
  /** Caption decoder; `dim`, `numLayers`, `numHeads`, `dropout`, `maxLength` as in `@s2cpnet/caption-decoder`. */
  captionDecoder: { type: string; [key: string]: unknown };
  /** Weight lambda of the category loss (spec: 1). */
  categoryLossWeight: number;
  /** Seed of every weight initialisation. */
  seed: number;
}

/** Paper-sized components (spec sections 4-6). */
function paperConfig(name: PresetName): S2CPNetConfig {
  const p = PRESETS[name];
  return {
    schemaVersion: 1,
    name,
    encoder: { type: 'resnet50', strideOn: '3x3', inputSize: 224, grid: 14, freeze: 'stem-stage1' },
    useMaskView: p.masks,
    semanticEnhancer: p.semanticEnhancer ? { reduction: 16, variant: 'paper' } : null,
    spatialEnhancer: p.spatialEnhancer ? { outputChannels: 512, variant: 'paper' } : null,
    fusion: { type: p.fusion, dim: 512, heads: 8, units: 3, ffnMultiplier: 4, dropout: 0.1 },
    categoryHead: p.categoryTask ? { type: 'multi-label', dim: 512, numHeads: 8, dropout: 0.1 } : null,
    captionDecoder: { type: p.captionDecoder, dim: 512, numLayers: 3, numHeads: 8, dropout: 0.1, maxLength: 32 },
    categoryLossWeight: 1,
    seed: 1,
  };
}

/** The `lite` preset: S²CPNet sized for CPU training on cached features of a frozen, pretrained MobileNetV1. */
function liteConfig(): S2CPNetConfig {
  return {
    schemaVersion: 1,
    name: 'lite',
    encoder: { type: 'mobilenet-v1', width: 0.75, inputSize: 224, grid: 'native', freeze: 'all' },
    useMaskView: true,
    semanticEnhancer: { reduction: 16, variant: 'paper' },
    spatialEnhancer: { outputChannels: 256, variant: 'paper' },
    fusion: { type: 'cvff', dim: 256, heads: 8, units: 3, ffnMultiplier: 4, dropout: 0.1 },
    categoryHead: { type: 'multi-label', dim: 256, numHeads: 8, dropout: 0.1 },
    captionDecoder: { type: 'gated', dim: 256, numLayers: 2, numHeads: 8, dropout: 0.1, maxLength: 32 },
    categoryLossWeight: 1,
    seed: 1,
  };
}

/** The full config of a preset. */
export function presetConfig(name: string): S2CPNetConfig {
  if (!isPresetName(name)) {
    throw new ConfigError('$.preset', `unknown preset ${JSON.stringify(name)}; expected one of: ${PRESET_NAMES.join(', ')}`);
  }
  return name === 'lite' ? liteConfig() : paperConfig(name);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function expectTypedObject(value: unknown, jsonPath: string, file?: string): { type: string; [key: string]: unknown } {
  if (!isObject(value)) throw new ConfigError(jsonPath, `expected an object with a "type", found ${JSON.stringify(value)}`, { file });
  if (typeof value.type !== 'string' || value.type === '') {
    throw new ConfigError(`${jsonPath}.type`, `expected a non-empty string, found ${JSON.stringify(value.type)}`, { file });
  }
  return value as { type: string };
}

function expectNumber(value: unknown, jsonPath: string, options: { integer?: boolean; min?: number; file?: string }): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || (options.integer && !Number.isInteger(value)) || (options.min !== undefined && value < options.min)) {
    const what = `${options.integer ? 'an integer' : 'a number'}${options.min !== undefined ? ` >= ${options.min}` : ''}`;
    throw new ConfigError(jsonPath, `expected ${what}, found ${JSON.stringify(value)}`, { file: options.file });
  }
  return value;
}

/**
 * Checks an untrusted JSON value against the config shape, naming the JSON path of the first problem
 * (`$.fusion.dim: expected an integer >= 1, found "512"`). Component-specific fields are checked again, with
 * the same paths, by each component's factory when the model is built.
 */
export function validateConfig(value: unknown, file?: string): S2CPNetConfig {
  if (!isObject(value)) throw new ConfigError('$', `expected a JSON object, found ${JSON.stringify(value)?.slice(0, 40)}`, { file });
  if (value.schemaVersion !== 1) throw new ConfigError('$.schemaVersion', `expected 1, found ${JSON.stringify(value.schemaVersion)}`, { file });
  const known = new Set(['schemaVersion', 'name', 'encoder', 'encoderWeights', 'useMaskView', 'semanticEnhancer', 'spatialEnhancer', 'fusion', 'categoryHead', 'captionDecoder', 'categoryLossWeight', 'seed']);
  for (const key of Object.keys(value)) {
    if (!known.has(key)) throw new ConfigError(`$.${key}`, `unknown field; expected one of: ${[...known].join(', ')}`, { file });
  }
  if (typeof value.name !== 'string') throw new ConfigError('$.name', `expected a string, found ${JSON.stringify(value.name)}`, { file });
  expectTypedObject(value.encoder, '$.encoder', file);
  if (value.encoderWeights !== undefined && value.encoderWeights !== null) {
    const w = value.encoderWeights;
    if (!isObject(w) || typeof w.path !== 'string' || w.path === '') {
      throw new ConfigError('$.encoderWeights', `expected {"path": "...", "format"?: "tfjs-layers" | "keras-hdf5" | "safetensors"} or null, found ${JSON.stringify(w)}`, { file });
    }
    if (w.format !== undefined && !['tfjs-layers', 'keras-hdf5', 'safetensors'].includes(w.format as string)) {
      throw new ConfigError('$.encoderWeights.format', `expected "tfjs-layers", "keras-hdf5" or "safetensors", found ${JSON.stringify(w.format)}`, { file });
    }
  }
  if (typeof value.useMaskView !== 'boolean') throw new ConfigError('$.useMaskView', `expected true or false, found ${JSON.stringify(value.useMaskView)}`, { file });
  if (value.semanticEnhancer !== null && !isObject(value.semanticEnhancer)) {
    throw new ConfigError('$.semanticEnhancer', `expected an object or null, found ${JSON.stringify(value.semanticEnhancer)}`, { file });
  }
  if (value.spatialEnhancer !== null && !isObject(value.spatialEnhancer)) {
    throw new ConfigError('$.spatialEnhancer', `expected an object or null, found ${JSON.stringify(value.spatialEnhancer)}`, { file });
  }
  if (value.spatialEnhancer !== null && value.useMaskView === false) {
    throw new ConfigError('$.spatialEnhancer', 'a spatial enhancer needs the mask view; set useMaskView to true or spatialEnhancer to null', { file });
  }
  const fusion = expectTypedObject(value.fusion, '$.fusion', file);
  expectNumber(fusion.dim, '$.fusion.dim', { integer: true, min: 1, file });
  if ((fusion.type === 'single-view') === value.useMaskView) {
    throw new ConfigError('$.fusion.type', value.useMaskView ? `"single-view" ignores the mask view; set useMaskView to false or pick a two-view fusion` : `fusion "${fusion.type}" needs the mask view; set useMaskView to true or use "single-view"`, { file });
  }
  if (value.categoryHead !== null) expectTypedObject(value.categoryHead, '$.categoryHead', file);
  expectTypedObject(value.captionDecoder, '$.captionDecoder', file);
  expectNumber(value.categoryLossWeight, '$.categoryLossWeight', { min: 0, file });
  expectNumber(value.seed, '$.seed', { integer: true, file });
  checkSizeLimits(value, file);
  return value as unknown as S2CPNetConfig;
}

/**
 * Upper bounds of the size fields of every component, whatever its type. A config can come from an untrusted
 * checkpoint, and these sizes decide what building the model allocates: `fusion.dim: 1e6` would ask for gigabytes,
 * `numLayers: 1e5` for a model that never finishes building. The bounds are far above any model this toolkit can
 * train (the paper's sizes are dim 512, 3 layers, 8 heads). Values that are not numbers are left to the components'
 * own checks.
 */
export const CONFIG_SIZE_LIMITS: Readonly<Record<string, number>> = {
  dim: 8192,
  ffnDim: 65536,
  ffnMultiplier: 64,
  numLayers: 128,
  units: 128,
  numHeads: 1024,
  heads: 1024,
  maxLength: 4096,
  maxNouns: 4096,
  outputChannels: 16384,
  reduction: 16384,
  inputSize: 8192,
  baseWidth: 1024,
  grid: 1024,
  lowPassGrid: 1024,
  classifierClasses: 100000,
  blocksPerStage: 64,
  // Sizes the model fills in (from the data and the other components) that a config may still set.
  vocabSize: 10_000_000,
  numClasses: 1_000_000,
  memoryWidth: 65536,
  imageChannels: 65536,
  maskChannels: 65536,
  channels: 65536,
  inputChannels: 65536,
};

const SIZED_COMPONENTS = ['encoder', 'semanticEnhancer', 'spatialEnhancer', 'fusion', 'categoryHead', 'captionDecoder'] as const;

function checkSizeLimits(config: Record<string, unknown>, file?: string): void {
  for (const component of SIZED_COMPONENTS) {
    const fields = config[component];
    if (!isObject(fields)) continue;
    for (const [field, max] of Object.entries(CONFIG_SIZE_LIMITS)) {
      const value = fields[field];
      const values = Array.isArray(value) ? value.map((v, i) => [`[${i}]`, v] as const) : [['', value] as const];
      for (const [index, v] of values) {
        if (typeof v === 'number' && !(v <= max)) {
          throw new ConfigError(`$.${component}.${field}${index}`, `expected at most ${max}, found ${v}: far larger than any model this toolkit builds`, { file });
        }
      }
    }
  }
}
