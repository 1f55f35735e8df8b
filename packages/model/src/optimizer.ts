import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '@s2cpnet/core';

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
  /**
   * Where the moments live: 'host' (JavaScript memory, one fused loop per weight) or 'device' (backend tensors,
   * updated by tfjs ops). Default: 'host' on the cpu and wasm backends, 'device' on the others (webgpu, tensorflow),
   * where reading every weight and gradient back to the host each step would cost more than the update.
   */
  moments?: 'host' | 'device';
  /**
   * Per-group learning rates: a weight whose path starts with `prefix` is updated at `learningRate x scale` (the
   * first matching entry wins; other weights use `learningRate`). The schedule's decays change `learningRate`, so
   * every group decays together. E.g. `[{ prefix: 'encoder/', scale: 0.1 }]`: the backbone at a tenth of the rate.
   */
  learningRateScales?: ReadonlyArray<{ prefix: string; scale: number }>;
}

/** One weight's optimiser state, kept in host memory. */
interface AdamSlot {
  shape: number[];
  m: Float32Array;
  v: Float32Array;
}

/** One weight's optimiser state on the backend. */
interface DeviceSlot {
  m: tf.Variable;
  v: tf.Variable;
}

/** One saved moment (`<path>#m` or `<path>#v`). */
export interface AdamStateArray {
  name: string;
  shape: number[];
  values: Float32Array;
}

/** A non-trainable variable holding `initial` (which it takes over: `initial` is disposed). */
function momentVariable(initial: tf.Tensor): tf.Variable {
  const variable = tf.variable(initial, false);
  initial.dispose();
  return variable;
}

const zeroMoment = (like: tf.Tensor) => momentVariable(tf.zerosLike(like));

/** The moments' placement for the current backend when none is asked for. */
function defaultMomentPlacement(): 'host' | 'device' {
  const backend = tf.getBackend();
  return backend === 'cpu' || backend === 'wasm' ? 'host' : 'device';
}

/**
 * Adam (Kingma & Ba 2015) with bias correction and global-norm gradient clipping, keyed by weight path.
 * tfjs' own optimiser keys its state by tfjs variable names, which depend on global counters and so differ between
 * runs; keying by path makes `--resume` restore the exact state.
 *
 * On cpu and wasm the moments live in JavaScript memory, not on the backend: on wasm the heap stops at 4 GiB, and
 * two moments per weight would take twice the model's size out of it (736 MB for the paper preset's 92 M
 * parameters). The update runs as one fused loop per weight instead of ~10 backend kernels, which is also faster.
 * On GPU backends (webgpu, tensorflow) the moments stay on the device and nothing but the gradient norm is read
 * back, asynchronously.
 */
export class Adam {
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly clipNorm: number;
  learningRate: number;
  readonly learningRateScales: ReadonlyArray<{ prefix: string; scale: number }>;
  step = 0;
  private placement: 'host' | 'device' | undefined;
  private readonly moments = new Map<string, AdamSlot>();
  private readonly deviceMoments = new Map<string, DeviceSlot>();

  constructor(options: AdamOptions) {
    this.learningRate = options.learningRate;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.clipNorm = options.clipNorm ?? 0;
    this.placement = options.moments;
    this.learningRateScales = (options.learningRateScales ?? []).map(({ prefix, scale }) => {
      if (typeof prefix !== 'string' || !(typeof scale === 'number' && scale >= 0 && Number.isFinite(scale))) {
        throw new ConfigError('$.learningRateScales', `expected { prefix: string, scale: number >= 0 } entries, found ${JSON.stringify({ prefix, scale })}`);
      }
      return { prefix, scale };
    });
  }

  /** The learning-rate multiplier of a weight path (1 unless a `learningRateScales` prefix matches). */
  scaleOf(path: string): number {
    return this.learningRateScales.find((entry) => path.startsWith(entry.prefix))?.scale ?? 1;
  }

  /** Where the moments live ('host' or 'device'); fixed at the first update or state load. */
  get momentPlacement(): 'host' | 'device' {
    this.placement ??= defaultMomentPlacement();
    return this.placement;
  }

  /** Global L2 norm of a set of gradients. */
  static globalNorm(grads: readonly tf.Tensor[]): tf.Scalar {
    return tf.tidy(() => {
      // Summed in groups of 8: one AddN over every weight binds one buffer per input, more than a WebGPU shader
      // stage may have (the limit can be as low as 8).
      let terms: tf.Tensor[] = grads.map((g) => tf.sum(tf.square(g)));
      while (terms.length > 1) {
        const next: tf.Tensor[] = [];
        for (let i = 0; i < terms.length; i += 8) next.push(terms.length - i === 1 ? terms[i]! : tf.addN(terms.slice(i, i + 8)));
        terms = next;
      }
      return tf.sqrt(terms[0]!) as tf.Scalar;
    });
  }

  /**
   * Applies one update. `grads` maps weight path to gradient (paths without a gradient are skipped).
   * Resolves to the global gradient norm before clipping. Reads from the backend only asynchronously.
   */
  async apply(variables: readonly NamedVariable[], grads: ReadonlyMap<string, tf.Tensor>): Promise<number> {
    const present = variables.filter((v) => grads.has(v.path));
    if (present.length === 0) return 0;
    this.step += 1;
    const t = this.step;
    const norm = Adam.globalNorm(present.map((v) => grads.get(v.path)!));
    const { beta1, beta2 } = this;
    const correction1 = 1 - beta1 ** t;
    const correction2 = 1 - beta2 ** t;
    const stepSize = (this.learningRate * Math.sqrt(correction2)) / correction1;
    // epsilon is applied to the uncorrected sqrt(v) scaled like the bias-corrected form (Adam paper, sec. 2)
    const epsilon = this.epsilon * Math.sqrt(correction2);
    if (this.momentPlacement === 'device') {
      // The clipping scale stays on the device and the norm is read after every update is queued, so the GPU is
      // never left idle while the host waits for a value.
      const clip = this.clipNorm;
      const scale = clip > 0 ? tf.tidy(() => tf.minimum(1, tf.div(clip, tf.maximum(norm, 1e-30)))) : null;
      try {
        for (const { path, variable } of present) {
          let slot = this.deviceMoments.get(path);
          if (!slot) {
            slot = { m: zeroMoment(variable), v: zeroMoment(variable) };
            this.deviceMoments.set(path, slot);
          }
          const { m, v } = slot;
          tf.tidy(() => {
            const g = scale ? tf.mul(grads.get(path)!, scale) : grads.get(path)!;
            const mNext = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
            const vNext = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
            m.assign(mNext);
            v.assign(vNext);
            variable.assign(tf.sub(variable, tf.div(tf.mul(mNext, stepSize * this.scaleOf(path)), tf.add(tf.sqrt(vNext), epsilon))));
          });
        }
        return (await norm.data())[0]!;
      } finally {
        tf.dispose([norm, ...(scale ? [scale] : [])]);
      }
    }
    const normValue = (await norm.data())[0]!;
    norm.dispose();
    const scale = this.clipNorm > 0 && normValue > this.clipNorm ? this.clipNorm / normValue : 1;
    for (const { path, variable } of present) {
      const g = (await grads.get(path)!.data()) as Float32Array;
      const w = Float32Array.from((await variable.data()) as Float32Array);
      let slot = this.moments.get(path);
      if (!slot) {
        slot = { shape: [...variable.shape], m: new Float32Array(w.length), v: new Float32Array(w.length) };
        this.moments.set(path, slot);
      }
      const { m, v } = slot;
      const size = stepSize * this.scaleOf(path);
      for (let i = 0; i < w.length; i++) {
        const gi = g[i]! * scale;
        const mi = (m[i] = beta1 * m[i]! + (1 - beta1) * gi);
        const vi = (v[i] = beta2 * v[i]! + (1 - beta2) * gi * gi);
        w[i] = w[i]! - (size * mi) / (Math.sqrt(vi) + epsilon);
      }
      const updated = tf.tensor(w, variable.shape, 'float32');
      variable.assign(updated);
      updated.dispose();
    }
    return normValue;
  }

  /**
   * The optimiser state with stable names (`<path>#m`, `<path>#v`), for checkpoints, sorted by path. With host
   * moments these are views, not copies; device moments are read back.
   */
  async stateArrays(): Promise<AdamStateArray[]> {
    const out: AdamStateArray[] = [];
    const byPath = <T>(map: Map<string, T>) => [...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [path, { shape, m, v }] of byPath(this.moments)) {
      out.push({ name: `${path}#m`, shape, values: m }, { name: `${path}#v`, shape, values: v });
    }
    for (const [path, { m, v }] of byPath(this.deviceMoments)) {
      const shape = [...m.shape];
      out.push({ name: `${path}#m`, shape, values: (await m.data()) as Float32Array }, { name: `${path}#v`, shape, values: (await v.data()) as Float32Array });
    }
    return out;
  }

  /** Restores state saved from `stateArrays` (values are copied; tensors are not disposed). */
  async loadState(step: number, learningRate: number, state: ReadonlyMap<string, tf.Tensor | { shape: number[]; values: Float32Array }>): Promise<void> {
    this.dispose();
    this.step = step;
    this.learningRate = learningRate;
    const device = this.momentPlacement === 'device';
    for (const [name, entry] of state) {
      const [path, kind] = [name.slice(0, name.lastIndexOf('#')), name.slice(name.lastIndexOf('#') + 1)];
      if (kind !== 'm' && kind !== 'v') continue;
      const values = Float32Array.from(entry instanceof tf.Tensor ? ((await entry.data()) as Float32Array) : entry.values);
      const shape = [...entry.shape];
      if (device) {
        const slot = this.deviceMoments.get(path) ?? ({} as Partial<DeviceSlot>);
        slot[kind] = momentVariable(tf.tensor(values, shape, 'float32'));
        this.deviceMoments.set(path, slot as DeviceSlot);
        continue;
      }
      const slot = this.moments.get(path) ?? { shape, m: new Float32Array(values.length), v: new Float32Array(values.length) };
      slot[kind] = values;
      this.moments.set(path, slot);
    }
    // A weight saved with one moment only gets a zero twin (never written by `stateArrays`, kept for robustness).
    for (const slot of this.deviceMoments.values()) {
      const some = (slot.m ?? slot.v)!;
      slot.m ??= zeroMoment(some);
      slot.v ??= zeroMoment(some);
    }
  }

  /** Frees the state (host memory, and the moments' tensors when they live on the device). */
  dispose(): void {
    this.moments.clear();
    for (const { m, v } of this.deviceMoments.values()) tf.dispose([m, v]);
    this.deviceMoments.clear();
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
