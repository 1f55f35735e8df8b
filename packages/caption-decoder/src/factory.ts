import type * as tf from '@tensorflow/tfjs-core';
import {
  ConfigError,
  createFromFactoryMap,
  type CaptionDecoder,
  type CaptionDecoderOutput,
  type FactoryMap,
  type S2Layer,
  type TypedConfig,
} from '@s2cpnet/core';
import { validateCaptionDecoderSizes, type CaptionDecoderSizes } from './config';
import { TransformerCaptionDecoder, type CaptionForwardOptions } from './decoder';

interface CaptionDecoderConfigBase extends CaptionDecoderSizes {
  /** Seed of the decoder's weights. Default 0. */
  seed?: number;
}

/** The paper's gated decoder (Eq. 6). */
export interface GatedCaptionDecoderConfig extends CaptionDecoderConfigBase {
  type: 'gated';
}
/** Plain post-norm transformer decoder (Baseline1). */
export interface PlainCaptionDecoderConfig extends CaptionDecoderConfigBase {
  type: 'plain';
}
/** Gated decoder with the released code's gate `LN((1+sigmoid(V))*V) + LN((1+sigmoid(T))*T) + T` (spec section 9). */
export interface ReferenceGatedCaptionDecoderConfig extends CaptionDecoderConfigBase {
  type: 'gated-reference';
}

export type CaptionDecoderConfig = GatedCaptionDecoderConfig | PlainCaptionDecoderConfig | ReferenceGatedCaptionDecoderConfig;

/**
 * A caption decoder whose teacher-forced pass also takes `captionsPerImage` (memory [B,N,D] with tokens [B*c,T],
 * the memory projected once per image). Core's `CaptionDecoder` contract plus that option.
 */
export interface SharedMemoryCaptionDecoder<State = unknown> extends CaptionDecoder<State> {
  forward(memory: tf.Tensor3D, tokens: tf.Tensor2D, options?: CaptionForwardOptions): CaptionDecoderOutput;
}

/** What a caption-decoder factory returns: a layer (its weights are tracked and saved) that keeps the decoder contract. */
export type CaptionDecoderComponent = S2Layer & SharedMemoryCaptionDecoder<unknown>;

/** Options of `createCaptionDecoder`. */
export interface CreateCaptionDecoderOptions {
  /** JSON path of the config, used in error messages. Default `$.captionDecoder`. */
  jsonPath?: string;
}

/**
 * The caption decoders that ship with the toolkit, by config `type`. Spread it to add your own:
 * `{ ...defaultCaptionDecoders, mine: (config) => new MyDecoder(config) }`.
 */
export const defaultCaptionDecoders: FactoryMap<CaptionDecoderConfig, CaptionDecoderComponent> = {
  gated: (config) => new TransformerCaptionDecoder({ ...config, layerType: 'gated' }),
  plain: (config) => new TransformerCaptionDecoder({ ...config, layerType: 'plain' }),
  'gated-reference': (config) => new TransformerCaptionDecoder({ ...config, layerType: 'gated-reference' }),
};

/**
 * Creates the caption decoder named by `config.type`. Unknown types give a `ConfigError` listing the valid names;
 * sizes are validated with their JSON path.
 *
 * @example
 * ```ts
 * const decoder = createCaptionDecoder({ type: 'gated', vocabSize: 300, memoryWidth: 1024, seed: 7 });
 * const { logits } = decoder.forward(memory, tokens, { captionsPerImage: 5 });
 * ```
 */
export function createCaptionDecoder<Config extends TypedConfig = CaptionDecoderConfig>(
  config: Config,
  map: FactoryMap<Config, CaptionDecoderComponent> = defaultCaptionDecoders as unknown as FactoryMap<Config, CaptionDecoderComponent>,
  options: CreateCaptionDecoderOptions = {},
): CaptionDecoderComponent {
  const jsonPath = options.jsonPath ?? '$.captionDecoder';
  if (typeof config !== 'object' || config === null) throw new ConfigError(jsonPath, `expected an object, found ${JSON.stringify(config)}`);
  const factories = map as unknown as Record<string, (config: Config, context: void) => CaptionDecoderComponent>;
  const builtIns = defaultCaptionDecoders as unknown as Record<string, unknown>;
  // The built-in factories share one config shape and are validated here; a user's own factory checks its own config.
  if (Object.prototype.hasOwnProperty.call(builtIns, config.type) && factories[config.type] === builtIns[config.type]) {
    validateCaptionDecoderSizes(config as unknown as CaptionDecoderSizes, jsonPath);
  }
  return createFromFactoryMap(factories, config, undefined, { kind: 'caption decoder', jsonPath });
}
