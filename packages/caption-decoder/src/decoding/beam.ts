import type * as tf from '@tensorflow/tfjs-core';
import { ShapeError, type CaptionDecoder } from '@s2cpnet/core';
import { runTfjsSearch, runTfjsSearchAsync, type Search } from './search';
import { checkDecodeInputs, suppressTokens, type DecodedCaption, type DecodeOptions } from './types';

export interface BeamSearchOptions extends DecodeOptions {
  /** Hypotheses kept per image, K. Default 3. */
  beamSize?: number;
  /**
   * GNMT length penalty exponent alpha (Wu et al. 2016): a caption of `len` generated tokens (`<end>` included)
   * scores `logProb / ((5 + len) / 6) ** alpha`. Default 0 (score = logProb). Positive values favour longer captions.
   */
  lengthPenalty?: number;
  /** Words before `<end>` may be chosen (default 0): `<end>` is never picked at steps below it. */
  minLength?: number;
}

/** The GNMT length penalty `((5 + length) / 6) ** alpha`. */
export function lengthPenaltyFactor(length: number, alpha: number): number {
  return alpha === 0 ? 1 : ((5 + length) / 6) ** alpha;
}

/** A hypothesis as a node of a prefix tree: the tokens are recovered by walking up the parents. */
interface Hypothesis {
  token: number;
  attention: Float32Array | null;
  parent: Hypothesis | null;
  /** Generated tokens so far, this one included. */
  length: number;
  logProb: number;
}

interface Finished {
  hypothesis: Hypothesis;
  score: number;
  /** Ended with `<end>` (the `<end>` node is part of the chain). */
  ended: boolean;
}

interface Candidate {
  /** Index of the parent among the image's live hypotheses. */
  parent: number;
  token: number;
  logProb: number;
}

/**
 * Batched beam search over the decoder's cached step path. Each image keeps K live hypotheses; every one is
 * expanded by its K most probable next tokens, the K*K candidates are ranked by log-probability and:
 * candidates ending in `<end>` among the best K are set aside as finished, and the best non-ending candidates
 * (up to K) continue. The beams of all images are flattened into B*K rows of the decoder state, which
 * `reorderState` reorders after each step (rows never move between images, so the memory cache is not copied).
 * An image is done when it has no live hypothesis, or when it has K finished ones and no live hypothesis can
 * still reach a better score than the K-th best (an exact bound: log-probabilities only decrease, and the length
 * penalty is largest at `maxLength`). Decoding stops when every image is done or after `maxLength` tokens; live
 * hypotheses cut at `maxLength` compete as unfinished. Returns the best-scoring caption per image.
 *
 * @example
 * ```ts
 * const captions = beamSearch(decoder, memory, { beamSize: 3, maxLength: 25, startId: 1, endId: 2 });
 * ```
 */
export function beamSearch<State>(decoder: CaptionDecoder<State>, memory: tf.Tensor3D, options: BeamSearchOptions): DecodedCaption[] {
  const checked = checkDecodeInputs('beamSearch', decoder, memory, options);
  return runTfjsSearch(decoder, memory, checked.returnAttention, beamSearchSteps(memory.shape[0], decoder.vocabSize, { ...options, ...checked }));
}

/** `beamSearch` with asynchronous reads (the form for GPU backends such as webgpu); same results. */
export function beamSearchAsync<State>(decoder: CaptionDecoder<State>, memory: tf.Tensor3D, options: BeamSearchOptions): Promise<DecodedCaption[]> {
  const checked = checkDecodeInputs('beamSearch', decoder, memory, options);
  return runTfjsSearchAsync(decoder, memory, checked.returnAttention, beamSearchSteps(memory.shape[0], decoder.vocabSize, { ...options, ...checked }));
}

/**
 * Beam search as a search generator over `batch` images (see `Search`): the model-independent part of
 * `beamSearch`, shared with other runtimes (`@s2cpnet/runtime-onnx` drives it over ONNX Runtime). The first
 * request has one row per image; later ones `batch * beamSize` rows, reordered as given. `options` must already be
 * checked (`checkSearchOptions`); the beam-specific ones are checked here.
 */
export function* beamSearchSteps(
  batch: number,
  vocab: number,
  options: BeamSearchOptions & { maxLength: number; returnAttention: boolean; suppressIds: readonly number[] },
): Search<DecodedCaption[]> {
  const { maxLength, suppressIds } = options;
  const beamSize = options.beamSize ?? 3;
  if (!Number.isInteger(beamSize) || beamSize < 1) throw new ShapeError('beamSearch', 'beamSize', `expected a positive integer, found ${beamSize}`);
  const alpha = options.lengthPenalty ?? 0;
  if (!Number.isFinite(alpha)) throw new ShapeError('beamSearch', 'lengthPenalty', `expected a finite number, found ${alpha}`);
  const { startId, endId } = options;
  const minLength = options.minLength ?? 0;
  if (!Number.isInteger(minLength) || minLength < 0) throw new ShapeError('beamSearch', 'minLength', `expected a non-negative integer, found ${minLength}`);
  const expansion = Math.min(beamSize, vocab - suppressIds.length);
  const bestPenalty = Math.max(lengthPenaltyFactor(1, alpha), lengthPenaltyFactor(maxLength, alpha));

  // live[b]: the image's live hypotheses (null = the empty prefix before the first step); rows of image b are
  // b*rowsPerImage .. b*rowsPerImage + live[b].length - 1, the remaining rows of its block are idle.
  let live: (Hypothesis | null)[][] = Array.from({ length: batch }, () => [null]);
  const finished: Finished[][] = Array.from({ length: batch }, () => []);
  const done = new Array<boolean>(batch).fill(false);
  let rowsPerImage = 1;
  let inputTokens = new Int32Array(batch).fill(startId);
  let reorder: Int32Array | null = null;

  const addFinished = (b: number, hypothesis: Hypothesis, ended: boolean) => {
    const pool = finished[b]!;
    pool.push({ hypothesis, ended, score: hypothesis.logProb / lengthPenaltyFactor(hypothesis.length, alpha) });
    pool.sort((x, y) => y.score - x.score);
    if (pool.length > beamSize) pool.length = beamSize;
  };

  for (let t = 0; t < maxLength && done.some((d) => !d); t++) {
    const answer = yield { reorder, tokens: inputTokens };
    const values = answer.logProbs;
    suppressTokens(values, vocab, suppressIds);
    if (t < minLength) for (let row = 0; row < values.length / vocab; row++) values[row * vocab + endId] = -Infinity;
    const attention = answer.attention;
    const memoryTokens = answer.memoryTokens;

    const nextLive: Hypothesis[][] = [];
    const parents: number[][] = [];
    for (let b = 0; b < batch; b++) {
      nextLive.push([]);
      parents.push([]);
      if (done[b]) continue;
      const candidates: Candidate[] = [];
      live[b]!.forEach((hypothesis, h) => {
        const row = b * rowsPerImage + h;
        const base = hypothesis?.logProb ?? 0;
        for (const token of topIndices(values, row * vocab, vocab, expansion)) {
          candidates.push({ parent: h, token, logProb: base + values[row * vocab + token]! });
        }
      });
      // Stable sort: ties keep the order of (parent, rank), so beam size 1 picks exactly what greedy picks.
      candidates.sort((x, y) => y.logProb - x.logProb);
      for (let rank = 0; rank < candidates.length && nextLive[b]!.length < beamSize; rank++) {
        const c = candidates[rank]!;
        const parent = live[b]![c.parent]!;
        const row = b * rowsPerImage + c.parent;
        const node: Hypothesis = {
          token: c.token,
          attention: attention ? attention.slice(row * memoryTokens, (row + 1) * memoryTokens) : null,
          parent,
          length: (parent?.length ?? 0) + 1,
          logProb: c.logProb,
        };
        if (c.token === endId) {
          if (rank < beamSize) addFinished(b, node, true);
        } else {
          nextLive[b]!.push(node);
          parents[b]!.push(row);
        }
      }
      if (t + 1 === maxLength) {
        for (const node of nextLive[b]!) addFinished(b, node, false);
        nextLive[b] = [];
      }
      done[b] = isDone(nextLive[b]!, finished[b]!, beamSize, bestPenalty);
    }
    if (done.every((d) => d)) break;

    // Every image gets a block of beamSize rows; idle rows copy a row of their own image and feed <end>.
    const rowIndices = new Int32Array(batch * beamSize);
    const nextTokens = new Int32Array(batch * beamSize).fill(endId);
    for (let b = 0; b < batch; b++) {
      for (let j = 0; j < beamSize; j++) {
        const i = b * beamSize + j;
        if (!done[b] && j < nextLive[b]!.length) {
          rowIndices[i] = parents[b]![j]!;
          nextTokens[i] = nextLive[b]![j]!.token;
        } else {
          rowIndices[i] = b * rowsPerImage;
        }
      }
    }
    reorder = rowIndices;
    live = nextLive.map((hyps, b) => (done[b] ? [] : hyps));
    rowsPerImage = beamSize;
    inputTokens = nextTokens;
  }
  return finished.map((pool) => toCaption(pool[0]));
}

function isDone(live: readonly Hypothesis[], finished: readonly Finished[], beamSize: number, bestPenalty: number): boolean {
  if (live.length === 0) return true;
  if (finished.length < beamSize) return false;
  const worstKept = finished[finished.length - 1]!.score;
  const bestLive = Math.max(...live.map((h) => h.logProb));
  // logProb <= 0 and only decreases; dividing it by the largest reachable penalty gives the highest reachable score.
  return bestLive / bestPenalty <= worstKept;
}

/** Indices of the `k` largest values of a row, best first (the lower index first on ties). */
function topIndices(values: Float32Array, offset: number, length: number, k: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < length; i++) {
    const v = values[offset + i]!;
    if (best.length === k && v <= values[offset + best[k - 1]!]!) continue;
    let at = best.length === k ? k - 1 : best.length;
    while (at > 0 && values[offset + best[at - 1]!]! < v) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
}

function toCaption(entry: Finished | undefined): DecodedCaption {
  if (!entry) return { tokens: [], logProb: 0, score: 0, finished: false, attention: [] };
  const tokens: number[] = [];
  const attention: Float32Array[] = [];
  for (let node: Hypothesis | null = entry.hypothesis; node; node = node.parent) {
    if (node === entry.hypothesis && entry.ended) continue;
    tokens.push(node.token);
    if (node.attention) attention.push(node.attention);
  }
  tokens.reverse();
  attention.reverse();
  return { tokens, logProb: entry.hypothesis.logProb, score: entry.score, finished: entry.ended, attention };
}
