import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initialTensor, type WeightInit } from './init';
import { deriveSeed } from './rng';

export type LayerVariable = tfl.LayerVariable;

/** Arguments every S²CPNet layer takes on top of tfjs' own: a seed for its weights. */
export interface S2LayerArgs {
  name?: string;
  trainable?: boolean;
  /** Seed of this layer's weight initialisation; children derive theirs from it by name. Default 0. */
  seed?: number;
}

/** Options passed to every forward call. */
export interface ForwardOptions {
  /** Training mode: dropout active, batch norm uses batch statistics. Default false. */
  training?: boolean;
  /** Seed of this call's dropout masks (derived per use), so training is reproducible. */
  dropoutSeed?: number;
}

/** A weight together with its path in the layer tree, e.g. `fusion/unit0/imageAttention/query/kernel`. */
export interface NamedWeight {
  path: string;
  variable: LayerVariable;
}

/**
 * Base class of every S²CPNet layer: a tfjs `Layer` whose weights are created from a seed, that may hold child
 * layers and reports their weights as its own (tfjs does not track nested layers: tfjs#8253, #8569), and that
 * names every weight by its path in the tree so checkpoints do not depend on tfjs' global name counters.
 */
export abstract class S2Layer extends tfl.layers.Layer {
  readonly seed: number;
  private readonly childLayers = new Map<string, tfl.layers.Layer>();
  private readonly ownWeightNames = new Map<LayerVariable, string>();

  constructor(args: S2LayerArgs = {}) {
    super({ name: args.name, trainable: args.trainable ?? true });
    this.seed = args.seed ?? 0;
  }

  /** Registers a child layer under a stable name; its weights become part of this layer's weights. */
  protected child<T extends tfl.layers.Layer>(name: string, layer: T): T {
    if (this.childLayers.has(name)) throw new Error(`${this.getClassName()}: child '${name}' registered twice`);
    this.childLayers.set(name, layer);
    return layer;
  }

  /** The seed a child named `name` should use. */
  protected childSeed(name: string): number {
    return deriveSeed(this.seed, name);
  }

  /** Creates a weight whose initial value comes from the layer seed and the weight name. */
  protected addSeededWeight(name: string, shape: number[], init: WeightInit, trainable = true): LayerVariable {
    const variable = this.addWeight(name, shape, 'float32', tfl.initializers.zeros(), undefined, trainable);
    const value = initialTensor(shape, init, deriveSeed(this.seed, name));
    variable.write(value);
    value.dispose();
    this.ownWeightNames.set(variable, name);
    return variable;
  }

  /** Builds a child once with the given input shape (tfjs builds lazily on `apply`; we build eagerly). */
  protected buildChild(layer: tfl.layers.Layer, inputShape: tfl.Shape | tfl.Shape[]): void {
    if (!layer.built) {
      layer.build(inputShape);
      layer.built = true;
    }
  }

  /** Builds this layer if it is not built yet. */
  ensureBuilt(inputShape: tfl.Shape | tfl.Shape[]): void {
    if (!this.built) {
      this.build(inputShape);
      this.built = true;
    }
  }

  children(): ReadonlyMap<string, tfl.layers.Layer> {
    return this.childLayers;
  }

  /** tfjs declares this field private; subclasses need it to report their own weights. */
  private get ownNonTrainable(): LayerVariable[] {
    return (this as unknown as { _nonTrainableWeights: LayerVariable[] })._nonTrainableWeights;
  }

  private set ownNonTrainable(weights: LayerVariable[]) {
    (this as unknown as { _nonTrainableWeights: LayerVariable[] })._nonTrainableWeights = weights;
  }

  override get trainableWeights(): LayerVariable[] {
    if (!this.trainable) return [];
    const own = this._trainableWeights.filter((w) => w.trainable);
    return [...own, ...[...this.childLayers.values()].flatMap((c) => c.trainableWeights)];
  }

  override set trainableWeights(weights: LayerVariable[]) {
    this._trainableWeights = weights;
  }

  override get nonTrainableWeights(): LayerVariable[] {
    const childNon = [...this.childLayers.values()].flatMap((c) => c.nonTrainableWeights);
    if (!this.trainable) {
      const childAll = [...this.childLayers.values()].flatMap((c) => c.weights);
      return [...this._trainableWeights, ...this.ownNonTrainable, ...childAll];
    }
    return [...this._trainableWeights.filter((w) => !w.trainable), ...this.ownNonTrainable, ...childNon];
  }

  override set nonTrainableWeights(weights: LayerVariable[]) {
    this.ownNonTrainable = weights;
  }

  /** Every weight (own and children's) with its path; the order is stable for a given config. */
  namedWeights(prefix = ''): NamedWeight[] {
    const out: NamedWeight[] = [];
    for (const w of [...this._trainableWeights, ...this.ownNonTrainable]) {
      out.push({ path: `${prefix}${this.ownWeightNames.get(w) ?? w.originalName}`, variable: w });
    }
    for (const [name, layer] of this.childLayers) {
      if (layer instanceof S2Layer) out.push(...layer.namedWeights(`${prefix}${name}/`));
      else for (const w of layer.weights) out.push({ path: `${prefix}${name}/${w.originalName.split('/').pop()}`, variable: w });
    }
    return out;
  }

  /** Number of parameters (own and children's). */
  override countParams(): number {
    return this.weights.reduce((n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
  }

  /**
   * Frees every weight of this layer and its children. tfjs' own `dispose` refuses layers that were never
   * `apply`-ed (ours are called through typed methods) and would free shared children twice.
   */
  override dispose(): ReturnType<tfl.layers.Layer['dispose']> {
    let numDisposedVariables = 0;
    const own = [...this._trainableWeights, ...this.ownNonTrainable];
    for (const variable of own) {
      if (!(variable as unknown as { val: tf.Variable }).val.isDisposed) {
        variable.dispose();
        numDisposedVariables += 1;
      }
    }
    // children free their own weights and whatever else they hold (e.g. an encoder's folded inference weights)
    for (const child of this.childLayers.values()) {
      if (child instanceof S2Layer) numDisposedVariables += child.dispose().numDisposedVariables;
      else for (const variable of child.weights) {
        if (!(variable as unknown as { val: tf.Variable }).val.isDisposed) {
          variable.dispose();
          numDisposedVariables += 1;
        }
      }
    }
    return { refCountAfterDispose: 0, numDisposedVariables };
  }

  /** The seed for dropout number `index` of this call, or undefined when not training. */
  protected dropoutSeed(options: ForwardOptions | undefined, name: string): number | undefined {
    if (!options?.training) return undefined;
    return deriveSeed((options.dropoutSeed ?? 0) ^ this.seed, name);
  }
}

/** Applies dropout in training mode with a derived seed; identity otherwise. */
export function dropout(x: tf.Tensor, rate: number, seed: number | undefined): tf.Tensor {
  if (seed === undefined || rate <= 0) return x;
  return tf.dropout(x, rate, undefined, seed);
}

/** Every S²CPNet layer class, for registration with tfjs serialization. */
export interface LayerClass {
  className: string;
  new (...args: any[]): tfl.layers.Layer;
}

/** Registers layer classes with tfjs serialization under the `S2CP` package prefix. Call explicitly; never on import. */
export function registerLayers(classes: readonly LayerClass[]): void {
  for (const cls of classes) {
    tf.serialization.registerClass(cls as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>, 'S2CP');
  }
}
