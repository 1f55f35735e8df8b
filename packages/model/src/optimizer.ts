import * as tf from '@tensorflow/tfjs-core';

/** A trainable weight with a stable name (its path in the model), so optimiser state survives save and resume. */
export interface NamedVariable {
  path: string;
  variable: tf.Variable;
}

export interface AdamOptions {
  learningRate: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Clip gradients to this global L2 norm before the update; 0 or undefined disables clipping. */
  clipNorm?: number;
}

export interface AdamState {
  step: number;
  learningRate: number;
  /** First and second moments per weight path. */
  moments: Map<string, { m: tf.Tensor; v: tf.Tensor }>;
}

/**
 * Adam (Kingma & Ba 2015) with bias correction and global-norm gradient clipping, keyed by weight path.
 * tfjs' own optimiser keys its state by tfjs variable names, which depend on global counters and so differ between
 * runs; keying by path makes `--resume` restore the exact state.
 */
export class Adam {
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly clipNorm: number;
  learningRate: number;
  step = 0;
  private readonly moments = new Map<string, { m: tf.Variable; v: tf.Variable }>();

  constructor(options: AdamOptions) {
    this.learningRate = options.learningRate;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.clipNorm = options.clipNorm ?? 0;
  }

  /** Global L2 norm of a set of gradients. */
  static globalNorm(grads: readonly tf.Tensor[]): tf.Scalar {
    return tf.tidy(() => tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))) as tf.Scalar);
  }

  /**
   * Applies one update. `grads` maps weight path to gradient (paths without a gradient are skipped).
   * Returns the global gradient norm before clipping.
   */
  apply(variables: readonly NamedVariable[], grads: ReadonlyMap<string, tf.Tensor>): number {
    const present = variables.filter((v) => grads.has(v.path));
    if (present.length === 0) return 0;
    this.step += 1;
    const t = this.step;
    const norm = Adam.globalNorm(present.map((v) => grads.get(v.path)!));
    const normValue = norm.dataSync()[0]!;
    norm.dispose();
    const scale = this.clipNorm > 0 && normValue > this.clipNorm ? this.clipNorm / normValue : 1;
    const correction1 = 1 - this.beta1 ** t;
    const correction2 = 1 - this.beta2 ** t;
    const stepSize = (this.learningRate * Math.sqrt(correction2)) / correction1;
    tf.tidy(() => {
      for (const { path, variable } of present) {
        const g = scale === 1 ? grads.get(path)! : tf.mul(grads.get(path)!, scale);
        let slot = this.moments.get(path);
        if (!slot) {
          slot = { m: tf.variable(tf.zerosLike(variable), false), v: tf.variable(tf.zerosLike(variable), false) };
          this.moments.set(path, slot);
        }
        const m = tf.add(tf.mul(slot.m, this.beta1), tf.mul(g, 1 - this.beta1));
        const v = tf.add(tf.mul(slot.v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        slot.m.assign(m);
        slot.v.assign(v);
        // epsilon is applied to the uncorrected sqrt(v) scaled like the bias-corrected form (Adam paper, sec. 2)
        const update = tf.div(tf.mul(m, stepSize), tf.add(tf.sqrt(v), this.epsilon * Math.sqrt(correction2)));
        variable.assign(tf.sub(variable, update));
      }
    });
    return normValue;
  }

  /** Tensors of the optimiser state with stable names, for checkpoints. */
  stateTensors(): { name: string; tensor: tf.Tensor }[] {
    const out: { name: string; tensor: tf.Tensor }[] = [];
    for (const [path, { m, v }] of [...this.moments].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      out.push({ name: `${path}#m`, tensor: m }, { name: `${path}#v`, tensor: v });
    }
    return out;
  }

  /** Restores state saved by `stateTensors` (tensors are copied). */
  loadState(step: number, learningRate: number, tensors: ReadonlyMap<string, tf.Tensor>): void {
    this.dispose();
    this.step = step;
    this.learningRate = learningRate;
    for (const [name, tensor] of tensors) {
      const [path, kind] = [name.slice(0, name.lastIndexOf('#')), name.slice(name.lastIndexOf('#') + 1)];
      if (kind !== 'm' && kind !== 'v') continue;
      const slot = this.moments.get(path) ?? { m: null as unknown as tf.Variable, v: null as unknown as tf.Variable };
      slot[kind] = tf.variable(tensor, false);
      this.moments.set(path, slot);
    }
  }

  dispose(): void {
    for (const { m, v } of this.moments.values()) tf.dispose([m, v]);
    this.moments.clear();
  }
}

/**
 * Learning-rate schedule of the paper: multiply by `factor` when the validation score has not improved for
 * `patience` epochs; stop after `stopPatience` epochs without improvement.
 */
export class PlateauSchedule {
  best = -Infinity;
  bestEpoch = -1;
  epochsSinceImprovement = 0;
  epochsSinceDecay = 0;

  constructor(
    readonly options: { factor: number; patience: number; stopPatience: number } = { factor: 0.2, patience: 5, stopPatience: 20 },
  ) {}

  /** Records an epoch's score; returns whether it improved, whether to decay the lr now, and whether to stop. */
  observe(epoch: number, score: number): { improved: boolean; decay: boolean; stop: boolean } {
    const improved = score > this.best;
    if (improved) {
      this.best = score;
      this.bestEpoch = epoch;
      this.epochsSinceImprovement = 0;
      this.epochsSinceDecay = 0;
    } else {
      this.epochsSinceImprovement += 1;
      this.epochsSinceDecay += 1;
    }
    const decay = !improved && this.epochsSinceDecay >= this.options.patience;
    if (decay) this.epochsSinceDecay = 0;
    return { improved, decay, stop: this.epochsSinceImprovement >= this.options.stopPatience };
  }

  toJSON() {
    return { best: this.best, bestEpoch: this.bestEpoch, epochsSinceImprovement: this.epochsSinceImprovement, epochsSinceDecay: this.epochsSinceDecay, options: this.options };
  }

  static fromJSON(json: ReturnType<PlateauSchedule['toJSON']>): PlateauSchedule {
    const s = new PlateauSchedule(json.options);
    s.best = json.best ?? -Infinity;
    s.bestEpoch = json.bestEpoch;
    s.epochsSinceImprovement = json.epochsSinceImprovement;
    s.epochsSinceDecay = json.epochsSinceDecay;
    return s;
  }
}
