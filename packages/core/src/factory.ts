import { unknownTypeError } from './errors';

/** A config that names its implementation by `type` (a discriminated union member). */
export interface TypedConfig {
  type: string;
}

/**
 * A typed, extendable map from `type` to factory. Users spread the default map and add their own entries:
 * `{ ...defaultFusions, 'gated-sum': createGatedSum }`.
 */
export type FactoryMap<Config extends TypedConfig, Product, Context = void> = {
  [Type in Config['type']]: (config: Extract<Config, { type: Type }>, context: Context) => Product;
};

/** Looks up `config.type` in `map` and calls its factory; unknown types give an error listing the valid ones. */
export function createFromFactoryMap<Config extends TypedConfig, Product, Context>(
  map: Record<string, (config: any, context: Context) => Product>,
  config: Config,
  context: Context,
  options: { kind: string; jsonPath: string },
): Product {
  const factory = Object.prototype.hasOwnProperty.call(map, config.type) ? map[config.type] : undefined;
  if (!factory) throw unknownTypeError(`${options.jsonPath}.type`, options.kind, config.type, Object.keys(map));
  return factory(config, context);
}
