import type * as tf from '@tensorflow/tfjs-core';
import { ConfigError, createFromFactoryMap, type CategoryHead, type FactoryMap, type S2Layer, type TypedConfig } from '@s2cpnet/core';
import { validateMultiLabelSizes, validateNextNounSizes, type MultiLabelSizes, type NextNounSizes } from './config';
import { MultiLabelCategoryDecoder, type CategoryTargetKind } from './multi-label';
import { NextNounCategoryDecoder, type NextNounForwardOptions } from './next-noun';

/** The paper's multi-label query decoder with binary cross-entropy (default). */
export interface MultiLabelCategoryHeadConfig extends MultiLabelSizes {
  type: 'multi-label';
  seed?: number;
}

/** The released code's next-noun generation with softmax cross-entropy (spec section 9). */
export interface NextNounCategoryHeadConfig extends NextNounSizes {
  type: 'next-noun';
  seed?: number;
}

export type CategoryHeadConfig = MultiLabelCategoryHeadConfig | NextNounCategoryHeadConfig;

/**
 * What a category-head factory returns: a layer (weights tracked and saved) that keeps core's `CategoryHead`
 * contract, says which targets its loss takes (`multi-hot` [B,K] or `sequence` [B,S] of ids), and accepts
 * `nounTokens` for teacher forcing (the multi-label head ignores them).
 */
export type CategoryHeadComponent = S2Layer &
  CategoryHead & {
    readonly targetKind: CategoryTargetKind;
    logits(memory: tf.Tensor3D, options?: NextNounForwardOptions): tf.Tensor2D;
  };

export interface CreateCategoryHeadOptions {
  /** JSON path of the config for error messages. Default `$.categoryHead`. */
  jsonPath?: string;
}

/** The category heads that ship with the toolkit, by config `type`; spread it to add your own. */
export const defaultCategoryHeads: FactoryMap<CategoryHeadConfig, CategoryHeadComponent> = {
  'multi-label': (config) => new MultiLabelCategoryDecoder(config),
  'next-noun': (config) => new NextNounCategoryDecoder(config),
};

const validators: Record<string, (config: never, jsonPath: string) => void> = {
  'multi-label': validateMultiLabelSizes as (config: never, jsonPath: string) => void,
  'next-noun': validateNextNounSizes as (config: never, jsonPath: string) => void,
};

/**
 * Creates the category head named by `config.type`. Unknown types give a `ConfigError` listing the valid names;
 * the built-in heads' sizes are validated with their JSON path.
 *
 * @example
 * ```ts
 * const head = createCategoryHead({ type: 'multi-label', numClasses: 100, memoryWidth: 1024, seed: 7 });
 * const loss = head.loss(head.logits(memory, { training: true }), nounTargets);
 * ```
 */
export function createCategoryHead<Config extends TypedConfig = CategoryHeadConfig>(
  config: Config,
  map: FactoryMap<Config, CategoryHeadComponent> = defaultCategoryHeads as unknown as FactoryMap<Config, CategoryHeadComponent>,
  options: CreateCategoryHeadOptions = {},
): CategoryHeadComponent {
  const jsonPath = options.jsonPath ?? '$.categoryHead';
  if (typeof config !== 'object' || config === null) throw new ConfigError(jsonPath, `expected an object, found ${JSON.stringify(config)}`);
  const factories = map as unknown as Record<string, (config: Config, context: void) => CategoryHeadComponent>;
  const builtIns = defaultCategoryHeads as unknown as Record<string, unknown>;
  if (Object.prototype.hasOwnProperty.call(builtIns, config.type) && factories[config.type] === builtIns[config.type]) {
    validators[config.type]!(config as never, jsonPath);
  }
  return createFromFactoryMap(factories, config, undefined, { kind: 'category head', jsonPath });
}
