import { existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { ConfigError, InputError } from '@s2cpnet/core';
import { loadKerasHdf5Weights, loadSafetensorsWeights, loadTfjsLayersWeights, type WeightLoadReport } from '@s2cpnet/encoder';
import type { S2CPNetConfig } from './config';
import type { S2CPNet } from './s2cpnet';

export type EncoderWeightsFormat = NonNullable<NonNullable<S2CPNetConfig['encoderWeights']>['format']>;

/** The weight format a path holds, from its shape on disk. */
export function detectEncoderWeightsFormat(file: string): EncoderWeightsFormat {
  if (!existsSync(file)) throw new InputError('no such file or folder (pretrained encoder weights)', { file });
  if (statSync(file).isDirectory()) {
    if (existsSync(path.join(file, 'model.json'))) return 'tfjs-layers';
    throw new InputError('a folder of pretrained weights must hold a TF.js layers model (model.json + shards)', { file });
  }
  if (/\.(h5|hdf5|keras)$/i.test(file)) return 'keras-hdf5';
  if (/\.safetensors$/i.test(file)) return 'safetensors';
  throw new InputError('unknown weight format: expected a TF.js model folder, a .h5/.hdf5 Keras file or a .safetensors file', { file });
}

/** Loads pretrained backbone weights into a model's shared encoder (both views use them). */
export async function loadEncoderWeights(model: S2CPNet, spec: NonNullable<S2CPNetConfig['encoderWeights']>, cwd = process.cwd()): Promise<WeightLoadReport> {
  if (!spec.path) throw new ConfigError('$.encoderWeights.path', 'required');
  const file = path.resolve(cwd, spec.path);
  const format = spec.format ?? detectEncoderWeightsFormat(file);
  switch (format) {
    case 'tfjs-layers':
      return loadTfjsLayersWeights(model.encoder, file);
    case 'keras-hdf5':
      return loadKerasHdf5Weights(model.encoder, file);
    case 'safetensors':
      return loadSafetensorsWeights(model.encoder, file);
    default: {
      const never: never = format;
      throw new ConfigError('$.encoderWeights.format', `unknown format ${JSON.stringify(never)}`);
    }
  }
}
