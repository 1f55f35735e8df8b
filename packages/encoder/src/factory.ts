import { createFromFactoryMap, registerLayers, type FactoryMap } from '@s2cpnet/core';
import type { BackboneEncoder } from './backbone';
import { validateMobileNetV1Config, validateResNet50Config, type EncoderConfig } from './config';
import { Bottleneck } from './layers/bottleneck';
import { ConvBn } from './layers/conv-bn';
import { DepthwiseSeparable } from './layers/depthwise-separable';
import { MobileNetV1 } from './mobilenet-v1';
import { ResNet50 } from './resnet50';

/** Where the config sits in a larger document, for error messages. */
export interface EncoderFactoryContext {
  jsonPath: string;
}

/**
 * The built-in encoders by `type`. Extend it with your own: `{ ...defaultEncoders, 'my-net': createMyNet }` and pass
 * the map to `createEncoder`.
 */
export const defaultEncoders: FactoryMap<EncoderConfig, BackboneEncoder, EncoderFactoryContext> = {
  resnet50: (config, context) => {
    validateResNet50Config(config, context.jsonPath);
    const { type: _type, ...args } = config;
    return new ResNet50(args);
  },
  'mobilenet-v1': (config, context) => {
    validateMobileNetV1Config(config, context.jsonPath);
    const { type: _type, ...args } = config;
    return new MobileNetV1(args);
  },
};

/**
 * Makes an encoder from its config. Unknown `type`s and invalid fields throw a ConfigError naming the JSON path.
 *
 * @example
 * ```ts
 * const encoder = createEncoder({ type: 'resnet50', strideOn: '3x3', grid: 14, freeze: 'stem-stage1', seed: 1 });
 * const features = encoder.encode(images); // [B, 14, 14, 2048]
 * ```
 */
export function createEncoder(config: EncoderConfig, options?: { jsonPath?: string }): BackboneEncoder;
/** With a user-extended factory map, any `type` the map knows. */
export function createEncoder(config: { type: string; [field: string]: unknown }, options: { jsonPath?: string; factories: EncoderFactories }): BackboneEncoder;
export function createEncoder(config: { type: string }, options: { jsonPath?: string; factories?: EncoderFactories } = {}): BackboneEncoder {
  const jsonPath = options.jsonPath ?? '$.encoder';
  const factories = (options.factories ?? defaultEncoders) as Parameters<typeof createFromFactoryMap>[0];
  return createFromFactoryMap(factories, config, { jsonPath }, { kind: 'encoder', jsonPath }) as BackboneEncoder;
}

/** Any map from `type` to an encoder factory (`defaultEncoders`, or an extension of it). */
export type EncoderFactories = Record<string, (config: never, context: EncoderFactoryContext) => BackboneEncoder>;

/** Registers the encoder layer classes with tfjs serialization (`S2CP>ResNet50`, ...). Explicit; never on import. */
export function registerEncoderLayers(): void {
  registerLayers([ResNet50, MobileNetV1, Bottleneck, DepthwiseSeparable, ConvBn]);
}
