/**
 * Self-critical sequence training (Rennie et al. 2017): fine-tunes a cross-entropy model on the CIDEr-D reward.
 * Per image, k captions are sampled from the model's softmax; each sample's advantage is its reward minus a
 * baseline (the mean reward of the image's other k-1 samples, or the reward of the greedy caption), and the loss is
 * `-(1/(B*k)) * sum (r - b) * log p(sample)`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, SeededRng, ShapeError, assertRank, deriveSeed, type CaptionDecoder } from '@s2cpnet/core';
import { DEFAULT_MAX_DECODE_LENGTH, checkSearchOptions, greedyDecodeAsync } from '@s2cpnet/caption-decoder/decoding';
import { imagesOfSplit, type PreparedDataset } from '@s2cpnet/data';
import { CiderDScorer } from '@s2cpnet/metrics';
import type { S2CPNet, StepInputs } from './s2cpnet';
import type { Adam, NamedVariable } from './optimizer';
import { accumulateGradients, readScalars } from './gradients';
import { defaultSuppressedIds, type WordTable } from './inference';

export type ScstBaseline = 'mean' | 'greedy';

export interface ScstOptions {
  /** Captions sampled per image, k. Default 5 (at least 2 with the `mean` baseline). */
  samples?: number;
  /** `mean`: the mean reward of the image's other k-1 samples (default); `greedy`: the greedy caption's reward. */
  baseline?: ScstBaseline;
  /** Most generated tokens per sample (words, or words and `<end>`). Default 25, the decoding default. */
  maxLength?: number;
}

export const DEFAULT_SCST_SAMPLES = 5;

/** Resolved and checked SCST options. */
export function resolveScstOptions(options: ScstOptions = {}): Required<ScstOptions> {
  const samples = options.samples ?? DEFAULT_SCST_SAMPLES;
  const baseline = options.baseline ?? 'mean';
  const maxLength = options.maxLength ?? DEFAULT_MAX_DECODE_LENGTH;
  if (baseline !== 'mean' && baseline !== 'greedy') throw new ConfigError('$.scst.baseline', `expected mean or greedy, found ${JSON.stringify(baseline)}`);
  if (!Number.isInteger(samples) || samples < (baseline === 'mean' ? 2 : 1)) {
    throw new ConfigError('$.scst.samples', `expected an integer >= ${baseline === 'mean' ? '2 (the mean baseline needs other samples)' : 1}, found ${samples}`);
  }
  if (!Number.isInteger(maxLength) || maxLength < 1) throw new ConfigError('$.scst.maxLength', `expected a positive integer, found ${maxLength}`);
  return { samples, baseline, maxLength };
}

/**
 * The reward: CIDEr-D against the training references, with document frequencies over the training images (the
 * n-gram statistics of the references are computed once here).
 */
export function trainingRewardScorer(prepared: PreparedDataset): CiderDScorer {
  const images = imagesOfSplit(prepared.dataset, 'train');
  return new CiderDScorer(images.map((image) => ({ imageId: image.id, references: image.captions.map((c) => c.raw) })));
}

/** One sampled caption: its word ids (no `<start>`, no `<end>`), and whether it ended with `<end>`. */
export interface SampledCaption {
  tokens: number[];
  finished: boolean;
}

export interface SampleOptions {
  /** Samples per image, k: rows `i*k .. i*k+k-1` of the result belong to image i. */
  samples: number;
  startId: number;
  endId: number;
  maxLength: number;
  /** Ids never sampled (their probability is zero; the others are renormalised). */
  suppressIds: readonly number[];
  /** Seed of the draws: the same seed, model and memory give the same samples. */
  seed: number;
}

/**
 * Samples k captions per image from the decoder's softmax (temperature 1) on its cached step path: the memory is
 * projected once, each image's state expanded to k rows, and each word costs one position. `memory` [B,N,D] ->
 * B*k captions. No tensor outlives the call.
 */
export async function sampleCaptions<State>(decoder: CaptionDecoder<State>, memory: tf.Tensor3D, options: SampleOptions): Promise<SampledCaption[]> {
  const positions = (decoder as { maxLength?: unknown }).maxLength;
  const checked = checkSearchOptions('sampleCaptions', { vocabSize: decoder.vocabSize, positions: typeof positions === 'number' ? positions : undefined }, options);
  const k = options.samples;
  if (!Number.isInteger(k) || k < 1) throw new ShapeError('sampleCaptions', 'samples', `expected a positive integer, found ${k}`);
  const vocab = decoder.vocabSize;
  const rows = memory.shape[0] * k;
  const allowed = new Uint8Array(vocab).fill(1);
  for (const id of checked.suppressIds) allowed[id] = 0;
  const rng = new SeededRng(options.seed);
  const results: SampledCaption[] = Array.from({ length: rows }, () => ({ tokens: [], finished: false }));
  const current = new Int32Array(rows).fill(options.startId);
  const probabilities = new Float64Array(vocab);
  let state = decoder.initState(memory);
  try {
    const expand = tf.tensor1d(Int32Array.from({ length: rows }, (_, r) => Math.floor(r / k)), 'int32');
    try {
      state = decoder.reorderState(state, expand);
    } finally {
      expand.dispose();
    }
    let running = rows;
    for (let t = 0; t < checked.maxLength && running > 0; t++) {
      const input = tf.tensor1d(current, 'int32');
      const out = decoder.step(input, state);
      input.dispose();
      state = out.state;
      const logProbs = tf.tidy(() => tf.logSoftmax(out.logits, -1));
      tf.dispose([out.logits, ...(out.attention ? [out.attention] : [])]);
      let values: Float32Array;
      try {
        values = (await logProbs.data()) as Float32Array;
      } finally {
        logProbs.dispose();
      }
      for (let r = 0; r < rows; r++) {
        const result = results[r]!;
        if (result.finished) continue;
        const word = drawWord(values, r * vocab, vocab, allowed, probabilities, rng);
        if (word === options.endId) {
          result.finished = true;
          running -= 1;
        } else result.tokens.push(word);
        current[r] = word;
      }
    }
  } finally {
    decoder.disposeState(state);
  }
  return results;
}

/** One draw from a row of log-probabilities restricted to the allowed ids (inverse CDF in float64). */
function drawWord(values: Float32Array, offset: number, vocab: number, allowed: Uint8Array, probabilities: Float64Array, rng: SeededRng): number {
  let max = -Infinity;
  for (let i = 0; i < vocab; i++) if (allowed[i] && values[offset + i]! > max) max = values[offset + i]!;
  let total = 0;
  let last = -1;
  for (let i = 0; i < vocab; i++) {
    const p = allowed[i] ? Math.exp(values[offset + i]! - max) : 0;
    probabilities[i] = p;
    total += p;
    if (p > 0) last = i;
  }
  let u = rng.next() * total;
  for (let i = 0; i < vocab; i++) {
    u -= probabilities[i]!;
    if (u < 0 && probabilities[i]! > 0) return i;
  }
  return last;
}

/** CIDEr-D of each caption against its image's references: `imageIds[Math.floor(row / perImage)]`. */
export function captionRewards(scorer: CiderDScorer, imageIds: readonly string[], captions: readonly SampledCaption[], perImage: number, words: WordTable): Float64Array {
  const rewards = new Float64Array(captions.length);
  captions.forEach((caption, row) => {
    rewards[row] = scorer.score(imageIds[Math.floor(row / perImage)]!, caption.tokens.map((id) => words.wordOf(id)).join(' '));
  });
  return rewards;
}

/** Per sample, the mean reward of the other k-1 samples of its image (rows grouped by image, k per image). */
export function meanOfOthersBaseline(rewards: ArrayLike<number>, k: number): Float64Array {
  if (!(k >= 2) || rewards.length % k !== 0) throw new ShapeError('meanOfOthersBaseline', 'k', `expected k >= 2 dividing ${rewards.length} rewards, found ${k}`);
  const baseline = new Float64Array(rewards.length);
  for (let start = 0; start < rewards.length; start += k) {
    let sum = 0;
    for (let j = 0; j < k; j++) sum += rewards[start + j]!;
    for (let j = 0; j < k; j++) baseline[start + j] = (sum - rewards[start + j]!) / (k - 1);
  }
  return baseline;
}

/** Per sample, its image's greedy-caption reward (one per image, repeated over the image's k samples). */
export function greedyBaseline(greedyRewards: ArrayLike<number>, k: number): Float64Array {
  const baseline = new Float64Array(greedyRewards.length * k);
  for (let i = 0; i < greedyRewards.length; i++) baseline.fill(greedyRewards[i]!, i * k, (i + 1) * k);
  return baseline;
}

/**
 * Teacher-forcing tensors of sampled captions [R, T] (T = the longest sample, `<end>` counted when generated):
 * inputs `<start> w1 .. w(T-1)`, targets `w1 .. wn <end>` then `padId`, and a mask that is 1 on each sample's
 * generated tokens (its `<end>` included) and 0 after.
 */
export function sampledSequences(captions: readonly SampledCaption[], startId: number, endId: number, padId = 0): { inputs: Int32Array; targets: Int32Array; mask: Float32Array; length: number } {
  const length = Math.max(1, ...captions.map((c) => c.tokens.length + (c.finished ? 1 : 0)));
  const rows = captions.length;
  const inputs = new Int32Array(rows * length).fill(padId);
  const targets = new Int32Array(rows * length).fill(padId);
  const mask = new Float32Array(rows * length);
  captions.forEach((caption, r) => {
    const generated = [...caption.tokens, ...(caption.finished ? [endId] : [])];
    inputs[r * length] = startId;
    for (let t = 0; t < generated.length; t++) {
      targets[r * length + t] = generated[t]!;
      mask[r * length + t] = 1;
      if (t + 1 < length) inputs[r * length + t + 1] = generated[t]!;
    }
  });
  return { inputs, targets, mask, length };
}

/**
 * The policy-gradient loss `-(1/R) * sum_r advantage_r * sum_t mask_rt * log p(target_rt)` over R sampled rows,
 * where p is the softmax of `logits` [R,T,V] with the suppressed ids removed (the distribution the samples were
 * drawn from). `targets` [R,T] int32, `mask` [R,T], `advantages` [R] (reward minus baseline, constants).
 */
export function policyGradientLoss(logits: tf.Tensor3D, targets: tf.Tensor2D, mask: tf.Tensor2D, advantages: tf.Tensor1D, suppressIds: readonly number[] = []): tf.Scalar {
  assertRank('policyGradientLoss', 'logits', logits, 3);
  const [rows, length, vocab] = logits.shape;
  for (const [name, tensor] of [['targets', targets], ['mask', mask]] as const) {
    if (tensor.shape[0] !== rows || tensor.shape[1] !== length) {
      throw new ShapeError('policyGradientLoss', name, `expected shape [${rows}, ${length}] to match logits, found [${tensor.shape.join(', ')}]`);
    }
  }
  if (advantages.shape[0] !== rows) throw new ShapeError('policyGradientLoss', 'advantages', `expected ${rows} values, found ${advantages.shape[0]}`);
  return tf.tidy(() => {
    let z: tf.Tensor = logits;
    if (suppressIds.length > 0) {
      // A large negative bias rather than -Infinity: zero probability, and gradients stay finite (exactly 0 there).
      const bias = new Float32Array(vocab);
      for (const id of suppressIds) bias[id] = -1e9;
      z = tf.add(logits, tf.tensor1d(bias));
    }
    const logProbs = tf.logSoftmax(z, -1);
    const picked = tf.sum(tf.mul(logProbs, tf.oneHot(targets, vocab)), -1);
    const sequenceLogProb = tf.sum(tf.mul(picked, mask), -1);
    return tf.div(tf.neg(tf.sum(tf.mul(sequenceLogProb, advantages))), rows) as tf.Scalar;
  });
}

export interface ScstStepInput {
  inputs: Pick<StepInputs, 'images' | 'masks' | 'imageFeatures' | 'maskFeatures'>;
  imageIds: readonly string[];
  categories: Float32Array | null;
  numClasses: number;
  microBatchSize: number;
  /** Seed of this step's samples. */
  seed: number;
  scorer: CiderDScorer;
  words: WordTable;
  scst: Required<ScstOptions>;
}

export interface ScstStepResult {
  loss: number;
  captionLoss: number;
  categoryLoss: number | null;
  /** Mean CIDEr-D of the sampled captions. */
  reward: number;
  /** Mean baseline (equal to `reward` with the mean-of-others baseline; the greedy captions' mean reward with greedy). */
  baseline: number;
  /** Mean length (words) of the sampled captions. */
  sampleLength: number;
}

/**
 * One SCST optimiser step over a batch (gradients accumulated over micro-batches): sample k captions per image in
 * inference mode, score them, then one teacher-forced pass over the samples, also in inference mode, so the
 * log-probabilities are those of the policy that drew the samples (with dropout they would be of another one).
 * The category head's BCE is kept with the config's weight: the head shares the memory, which SCST moves.
 */
export async function scstStep(model: S2CPNet, variables: NamedVariable[], optimizer: Adam, input: ScstStepInput): Promise<ScstStepResult> {
  const b = input.imageIds.length;
  const k = input.scst.samples;
  const words = input.words;
  const suppressIds = defaultSuppressedIds(words);
  const padId = words.padId ?? 0;
  const categories = input.categories && input.numClasses > 0 && model.categoryHead && model.config.categoryLossWeight > 0 ? tf.tensor2d(input.categories, [b, input.numClasses]) : undefined;
  const accumulated = new Map<string, tf.Tensor>();
  const out = { loss: 0, captionLoss: 0, categoryLoss: null as number | null, reward: 0, baseline: 0, sampleLength: 0 };
  try {
    for (let from = 0; from < b; from += input.microBatchSize) {
      const to = Math.min(b, from + input.microBatchSize);
      const weight = (to - from) / b;
      const part = rowsOf({ ...input.inputs, categories }, from, to);
      const imageIds = input.imageIds.slice(from, to);
      const seed = deriveSeed(input.seed, `micro-${from}`);
      const decodeOptions = { startId: words.startId, endId: words.endId, maxLength: input.scst.maxLength, suppressIds };
      const memory = model.memory(part, { training: false });
      let samples: SampledCaption[];
      let greedyRewards: Float64Array | null = null;
      try {
        samples = await sampleCaptions(model.captionDecoder, memory, { ...decodeOptions, samples: k, seed });
        if (input.scst.baseline === 'greedy') {
          const greedy = await greedyDecodeAsync(model.captionDecoder, memory, { ...decodeOptions, returnAttention: false });
          greedyRewards = captionRewards(input.scorer, imageIds, greedy.map((g) => ({ tokens: g.tokens, finished: g.finished })), 1, words);
        }
      } finally {
        memory.dispose();
      }
      const rewards = captionRewards(input.scorer, imageIds, samples, k, words);
      const baseline = greedyRewards ? greedyBaseline(greedyRewards, k) : meanOfOthersBaseline(rewards, k);
      const sequences = sampledSequences(samples, words.startId, words.endId, padId);
      const rows = samples.length;
      const tokens = tf.tensor2d(sequences.inputs, [rows, sequences.length], 'int32');
      const targets = tf.tensor2d(sequences.targets, [rows, sequences.length], 'int32');
      const mask = tf.tensor2d(sequences.mask, [rows, sequences.length]);
      const advantages = tf.tensor1d(Float32Array.from(rewards, (r, i) => r - baseline[i]!));
      let parts: { caption: tf.Scalar; category: tf.Scalar | null } = { caption: null as unknown as tf.Scalar, category: null };
      const { value, grads } = tf.variableGrads(() => {
        const m = model.memory(part, { training: false });
        const { logits } = model.captionDecoder.forward(m, tokens, { training: false, captionsPerImage: k } as never);
        const caption = tf.keep(policyGradientLoss(logits, targets, mask, advantages, suppressIds));
        let total: tf.Scalar = tf.clone(caption);
        let category: tf.Scalar | null = null;
        if (model.categoryHead && part.categories) {
          category = tf.keep(model.categoryHead.loss(model.categoryHead.logits(m, { training: false }), part.categories as tf.Tensor2D));
          total = tf.add(total, tf.mul(category, model.config.categoryLossWeight)) as tf.Scalar;
        }
        parts = { caption, category };
        return tf.mul(total, weight) as tf.Scalar;
      }, variables.map((v) => v.variable));
      tf.dispose([tokens, targets, mask, advantages]);
      tf.dispose(Object.values(part));
      accumulateGradients(accumulated, variables, grads);
      const read = await readScalars([value, parts.caption, parts.category]);
      out.loss += read[0]!;
      out.captionLoss += read[1]! * weight;
      if (parts.category) out.categoryLoss = (out.categoryLoss ?? 0) + read[2]! * weight;
      out.reward += (mean(rewards) * weight);
      out.baseline += mean(baseline) * weight;
      out.sampleLength += (samples.reduce((s, c) => s + c.tokens.length, 0) / rows) * weight;
    }
    await optimizer.apply(variables, accumulated);
    return out;
  } finally {
    tf.dispose([...(categories ? [categories] : []), ...accumulated.values()]);
  }
}

function mean(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]!;
  return sum / Math.max(values.length, 1);
}

/** Rows [from, to) of a batch's tensors (new tensors; the caller disposes them). */
function rowsOf<T extends Record<string, tf.Tensor | undefined>>(inputs: T, from: number, to: number): T {
  const out: Record<string, tf.Tensor> = {};
  for (const [key, value] of Object.entries(inputs)) {
    if (value) out[key] = tf.slice(value, [from, ...new Array(value.rank - 1).fill(0)], [to - from, ...value.shape.slice(1)]);
  }
  return out as T;
}
