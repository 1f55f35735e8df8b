import { ShapeError, sinusoidalTable, type FeedForward, type LayerNorm, type Linear, type MultiHeadAttention } from '@s2cpnet/core';
import type { DecoderLayerBase, GatedDecoderLayer, PlainDecoderLayer, TransformerCaptionDecoder } from '@s2cpnet/caption-decoder';
import type { Dim, OnnxGraph, Value } from '../graph';
import type { CaptionDecoderExporter, DecoderStepInputs, DecoderStepOutputs } from './registry';

/**
 * Tensor names of the two caption-decoder graphs, shared by the exporter and the runtime that feeds them.
 *
 * - memory graph: `memory` [batch, memory_tokens, memoryWidth] -> `memory_key_<l>`, `memory_value_<l>`
 *   [batch, heads, memory_tokens, headDim] for each layer `l`;
 * - step graph: `tokens` [rows] int64, `position` [1] int64, `memory_key_<l>`, `memory_value_<l>`
 *   [rows, heads, memory_tokens, headDim] (one per row: the runtime tiles the memory graph's outputs),
 *   `past_key_<l>`, `past_value_<l>` [rows, heads, past, headDim] (past may be 0) -> `logits` [rows, vocab],
 *   `attention` [rows, memory_tokens], `present_key_<l>`, `present_value_<l>` [rows, heads, past+1, headDim].
 *
 * The memory graph's outputs carry the step graph's input names, so they feed through unrenamed; each step's
 * `present_*_<l>` becomes the next step's `past_*_<l>`.
 */
export const CAPTION_DECODER_TENSOR_NAMES = {
  memory: 'memory',
  tokens: 'tokens',
  position: 'position',
  logits: 'logits',
  attention: 'attention',
} as const;

/** Names of the dynamic dimensions the two graphs declare. */
export const CAPTION_DECODER_DIM_NAMES = {
  batch: 'batch',
  rows: 'rows',
  memoryTokens: 'memory_tokens',
  past: 'past',
  present: 'present',
} as const;

/** The per-layer cache tensors a step graph reads. */
export type StepCacheInputKind = 'memory_key' | 'memory_value' | 'past_key' | 'past_value';
/** The per-layer cache tensors a step graph writes. */
export type StepCacheOutputKind = 'present_key' | 'present_value';

/** Name of layer `layer`'s cache input of a step graph, e.g. `past_key_0` (also the memory graph's output names). */
export function stepInputName(kind: StepCacheInputKind, layer: number): string {
  return `${kind}_${layer}`;
}

/** Name of layer `layer`'s cache output of a step graph, e.g. `present_value_1`. */
export function stepOutputName(kind: StepCacheOutputKind, layer: number): string {
  return `${kind}_${layer}`;
}

type Description = ReturnType<CaptionDecoderExporter['describe']>;

/**
 * Declares the memory graph's input and outputs around `exporter.memoryKeyValues` (names in
 * `CAPTION_DECODER_TENSOR_NAMES`). `memoryWidth` defaults to the layer's own `memoryWidth`.
 *
 * @example
 * ```ts
 * const exporter = exporterFor('captionDecoder', decoder);
 * const g = new OnnxGraph('caption-decoder-memory');
 * buildCaptionDecoderMemoryGraph(g, decoder, exporter);
 * const bytes = g.serialize();
 * ```
 */
export function buildCaptionDecoderMemoryGraph<L>(g: OnnxGraph, layer: L, exporter: CaptionDecoderExporter<L>, memoryWidth?: number): Description {
  const width = memoryWidth ?? (layer as { memoryWidth?: unknown }).memoryWidth;
  if (typeof width !== 'number') {
    throw new ShapeError('buildCaptionDecoderMemoryGraph', 'memoryWidth', 'is required for a caption decoder without a numeric memoryWidth property');
  }
  const description = exporter.describe(layer);
  const dims = CAPTION_DECODER_DIM_NAMES;
  const memory = g.input(CAPTION_DECODER_TENSOR_NAMES.memory, 'float32', [dims.batch, dims.memoryTokens, width]);
  const { keys, values } = exporter.memoryKeyValues(g, layer, memory);
  checkPerLayer('memoryKeyValues', description.numLayers, { keys, values });
  const shape: Dim[] = [dims.batch, description.numHeads, dims.memoryTokens, description.headDim];
  keys.forEach((k, l) => g.output(k, stepInputName('memory_key', l), 'float32', shape));
  values.forEach((v, l) => g.output(v, stepInputName('memory_value', l), 'float32', shape));
  return description;
}

/**
 * Declares the step graph's inputs and outputs around `exporter.step` (names in `CAPTION_DECODER_TENSOR_NAMES`,
 * `stepInputName` and `stepOutputName`; rows and past length dynamic).
 *
 * @example
 * ```ts
 * const g = new OnnxGraph('caption-decoder-step');
 * const { numLayers } = buildCaptionDecoderStepGraph(g, decoder, exporterFor('captionDecoder', decoder));
 * ```
 */
export function buildCaptionDecoderStepGraph<L>(g: OnnxGraph, layer: L, exporter: CaptionDecoderExporter<L>): Description {
  const description = exporter.describe(layer);
  const { numLayers, numHeads, headDim, vocabSize } = description;
  const names = CAPTION_DECODER_TENSOR_NAMES;
  const dims = CAPTION_DECODER_DIM_NAMES;
  const layers = Array.from({ length: numLayers }, (_, l) => l);
  const memoryShape: Dim[] = [dims.rows, numHeads, dims.memoryTokens, headDim];
  const pastShape: Dim[] = [dims.rows, numHeads, dims.past, headDim];
  const inputs: DecoderStepInputs = {
    tokens: g.input(names.tokens, 'int64', [dims.rows]),
    position: g.input(names.position, 'int64', [1]),
    memoryKeys: layers.map((l) => g.input(stepInputName('memory_key', l), 'float32', memoryShape)),
    memoryValues: layers.map((l) => g.input(stepInputName('memory_value', l), 'float32', memoryShape)),
    pastKeys: layers.map((l) => g.input(stepInputName('past_key', l), 'float32', pastShape)),
    pastValues: layers.map((l) => g.input(stepInputName('past_value', l), 'float32', pastShape)),
  };
  const out = exporter.step(g, layer, inputs);
  checkPerLayer('step', numLayers, { keys: out.presentKeys, values: out.presentValues });
  g.output(out.logits, names.logits, 'float32', [dims.rows, vocabSize]);
  g.output(out.attention, names.attention, 'float32', [dims.rows, dims.memoryTokens]);
  const presentShape: Dim[] = [dims.rows, numHeads, dims.present, headDim];
  out.presentKeys.forEach((k, l) => g.output(k, stepOutputName('present_key', l), 'float32', presentShape));
  out.presentValues.forEach((v, l) => g.output(v, stepOutputName('present_value', l), 'float32', presentShape));
  return description;
}

function checkPerLayer(what: string, numLayers: number, lists: { keys: readonly Value[]; values: readonly Value[] }): void {
  if (lists.keys.length !== numLayers || lists.values.length !== numLayers) {
    throw new ShapeError(
      'CaptionDecoderExporter',
      what,
      `returned ${lists.keys.length} keys and ${lists.values.length} values for ${numLayers} layers`,
    );
  }
}

const COMPONENT = 'TransformerCaptionDecoder ONNX export';

function requireBuilt(decoder: TransformerCaptionDecoder): void {
  if (!decoder.built) throw new ShapeError(COMPONENT, 'decoder', 'is not built: train or load its weights before exporting');
}

function linear(g: OnnxGraph, x: Value, layer: Linear, hint: string): Value {
  return g.dense(x, layer.kernel, layer.bias, hint);
}

function norm(g: OnnxGraph, x: Value, layer: LayerNorm, hint: string): Value {
  return g.layerNorm(x, layer.gamma, layer.beta, layer.epsilon, hint);
}

function feedForward(g: OnnxGraph, x: Value, block: FeedForward): Value {
  return g.scope('feedForward', () => linear(g, g.relu(linear(g, x, block.inner, 'inner')), block.outer, 'outer'));
}

/** `x` [B, T, dim] -> [B, heads, T, headDim], as `MultiHeadAttention.splitHeads`. */
function splitSequenceHeads(g: OnnxGraph, x: Value, attention: MultiHeadAttention): Value {
  return g.transpose(g.reshape(x, [0, 0, attention.numHeads, attention.headDim]), [0, 2, 1, 3]);
}

/** One position `x` [R, dim] -> [R, heads, 1, headDim] (no transpose needed: the position axis has size 1). */
function splitStepHeads(g: OnnxGraph, x: Value, attention: MultiHeadAttention): Value {
  return g.reshape(x, [0, attention.numHeads, 1, attention.headDim]);
}

/**
 * `attention.attend` for one query per row, `query` [R, dim], over keys/values [R, heads, K, headDim]: no mask
 * (a single new word may see every cached word, and the memory has no padding). Returns the output [R, dim] and,
 * when asked, the weights [R, heads, 1, K].
 */
function attendOne(
  g: OnnxGraph,
  attention: MultiHeadAttention,
  query: Value,
  keys: Value,
  values: Value,
  wantWeights: boolean,
): { output: Value; weights?: Value } {
  const q = g.mul(splitStepHeads(g, linear(g, query, attention.query, 'query'), attention), g.constant(1 / Math.sqrt(attention.headDim), [], 'scale'));
  const scores = g.matMul(q, g.transpose(keys, [0, 1, 3, 2])); // [R, h, 1, K]
  const weights = g.softmax(scores, -1);
  const context = g.matMul(weights, values); // [R, h, 1, headDim]
  // [R, h, 1, headDim] and [R, 1, h, headDim] have the same element order, so the head merge is a reshape.
  const merged = g.reshape(context, [0, attention.dim]);
  const output = linear(g, merged, attention.outputProjection, 'output');
  return wantWeights ? { output, weights } : { output };
}

/** Appends this step's key/value [R, heads, 1, headDim] to the past [R, heads, P, headDim] (P may be 0). */
function appendStep(g: OnnxGraph, attention: MultiHeadAttention, x: Value, pastKeys: Value, pastValues: Value): { keys: Value; values: Value } {
  const fresh = (projection: Linear, hint: string) => splitStepHeads(g, linear(g, x, projection, hint), attention);
  return {
    keys: g.concat([pastKeys, fresh(attention.key, 'key')], 2),
    values: g.concat([pastValues, fresh(attention.value, 'value')], 2),
  };
}

interface LayerStep {
  output: Value;
  presentKeys: Value;
  presentValues: Value;
  /** [R, heads, 1, M], only when asked. */
  crossWeights?: Value;
}

interface LayerStepInputs {
  x: Value;
  memoryKeys: Value;
  memoryValues: Value;
  pastKeys: Value;
  pastValues: Value;
  wantWeights: boolean;
}

/** The self-attention of one position: the new key/value appended to the past, then attended over (both layer types). */
function selfAttentionStep(g: OnnxGraph, layer: DecoderLayerBase, inputs: LayerStepInputs): { present: { keys: Value; values: Value }; selfOut: Value } {
  return g.scope('selfAttention', () => {
    const present = appendStep(g, layer.selfAttention, inputs.x, inputs.pastKeys, inputs.pastValues);
    return { present, selfOut: attendOne(g, layer.selfAttention, inputs.x, present.keys, present.values, false).output };
  });
}

/** `GatedDecoderLayer.run` for one position in inference mode (gate 'paper' or 'reference'). */
function gatedLayerStep(g: OnnxGraph, layer: GatedDecoderLayer, inputs: LayerStepInputs): LayerStep {
  const { x } = inputs;
  const { present, selfOut } = selfAttentionStep(g, layer, inputs);
  const text = norm(g, g.add(x, selfOut), layer.textNorm, 'textNorm');
  const cross = g.scope('crossAttention', () => attendOne(g, layer.crossAttention, text, inputs.memoryKeys, inputs.memoryValues, inputs.wantWeights));
  const visual = cross.output;
  const selfGated = (v: Value): Value =>
    layer.gateVariant === 'paper' ? g.mul(g.sigmoid(v), v) : g.mul(g.add(g.constant(1, [], 'one'), g.sigmoid(v)), v);
  const gated = g.add(norm(g, selfGated(visual), layer.visualGateNorm, 'visualGateNorm'), norm(g, selfGated(text), layer.textGateNorm, 'textGateNorm'));
  const fused = g.add(gated, layer.gateVariant === 'paper' ? x : text);
  const output = norm(g, g.add(fused, feedForward(g, fused, layer.feedForward)), layer.outputNorm, 'outputNorm');
  return { output, presentKeys: present.keys, presentValues: present.values, ...(cross.weights ? { crossWeights: cross.weights } : {}) };
}

/** `PlainDecoderLayer.run` for one position in inference mode. */
function plainLayerStep(g: OnnxGraph, layer: PlainDecoderLayer, inputs: LayerStepInputs): LayerStep {
  const { x } = inputs;
  const { present, selfOut } = selfAttentionStep(g, layer, inputs);
  const afterSelf = norm(g, g.add(x, selfOut), layer.selfNorm, 'selfNorm');
  const cross = g.scope('crossAttention', () => attendOne(g, layer.crossAttention, afterSelf, inputs.memoryKeys, inputs.memoryValues, inputs.wantWeights));
  const afterCross = norm(g, g.add(afterSelf, cross.output), layer.crossNorm, 'crossNorm');
  const output = norm(g, g.add(afterCross, feedForward(g, afterCross, layer.feedForward)), layer.outputNorm, 'outputNorm');
  return { output, presentKeys: present.keys, presentValues: present.values, ...(cross.weights ? { crossWeights: cross.weights } : {}) };
}

function layerStep(g: OnnxGraph, layer: DecoderLayerBase, inputs: LayerStepInputs): LayerStep {
  // By class name rather than instanceof, so that a second installed copy of caption-decoder still exports.
  const className = layer.getClassName();
  if (className === 'GatedDecoderLayer') return gatedLayerStep(g, layer as GatedDecoderLayer, inputs);
  if (className === 'PlainDecoderLayer') return plainLayerStep(g, layer as PlainDecoderLayer, inputs);
  throw new ShapeError(COMPONENT, 'layers', `has a layer of class ${className}; the exporter knows GatedDecoderLayer and PlainDecoderLayer`);
}

function checkStepInputs(decoder: TransformerCaptionDecoder, inputs: DecoderStepInputs): void {
  const lists = { memoryKeys: inputs.memoryKeys, memoryValues: inputs.memoryValues, pastKeys: inputs.pastKeys, pastValues: inputs.pastValues };
  for (const [name, list] of Object.entries(lists)) {
    if (list.length !== decoder.numLayers) throw new ShapeError(COMPONENT, name, `expected ${decoder.numLayers} values (one per layer), found ${list.length}`);
  }
}

/**
 * The exporter of `TransformerCaptionDecoder` (gated, gated-reference and plain layers), in inference mode
 * (dropout off):
 * - `memoryKeyValues` is `initState`: the memory projection, then each layer's cross-attention keys/values;
 * - `step` is `step(tokens, state, { returnAttention: true })` for one word per row at a `position` read from a
 *   graph input (the sinusoidal table and the learned positions are gathered there, never baked in), with every
 *   row's memory keys/values given (tfjs's `rowsPerMemory` is 1 in the graph) and a past of any length, 0 included.
 */
export const transformerCaptionDecoderExporter: CaptionDecoderExporter<TransformerCaptionDecoder> = {
  describe(decoder) {
    return {
      numLayers: decoder.numLayers,
      numHeads: decoder.numHeads,
      headDim: decoder.dim / decoder.numHeads,
      vocabSize: decoder.vocabSize,
      maxLength: decoder.maxLength,
    };
  },

  memoryKeyValues(g, decoder, memory) {
    requireBuilt(decoder);
    const projected = linear(g, memory, decoder.memoryProjection, 'memoryProjection');
    const keys: Value[] = [];
    const values: Value[] = [];
    decoder.layers.forEach((layer, l) =>
      g.scope(`layer${l}/crossAttention`, () => {
        const attention = layer.crossAttention;
        keys.push(splitSequenceHeads(g, linear(g, projected, attention.key, 'key'), attention));
        values.push(splitSequenceHeads(g, linear(g, projected, attention.value, 'value'), attention));
      }),
    );
    return { keys, values };
  },

  step(g, decoder, inputs): DecoderStepOutputs {
    requireBuilt(decoder);
    checkStepInputs(decoder, inputs);
    const dim = decoder.dim;
    // embedTokens: sqrt(dim) * embedding(token) + (sinusoid(position) + learned(position)).
    const x0 = g.scope('embed', () => {
      const words = g.mul(g.gather(g.weight(decoder.embedding.table, 'embedding'), inputs.tokens), g.constant(Math.sqrt(dim), [], 'sqrtDim'));
      const sinusoid = g.constant(sinusoidalTable(decoder.maxLength, dim), [decoder.maxLength, dim], 'sinusoid');
      const positions = g.add(g.gather(sinusoid, inputs.position), g.gather(g.weight(decoder.learnedPositions.table, 'learnedPositions'), inputs.position));
      return g.add(words, positions); // [R, dim]
    });
    const lastLayer = decoder.layers.length - 1;
    let x = x0;
    let attention: Value | undefined;
    const presentKeys: Value[] = [];
    const presentValues: Value[] = [];
    decoder.layers.forEach((layer, l) => {
      const result = g.scope(`layer${l}`, () =>
        layerStep(g, layer, {
          x,
          memoryKeys: inputs.memoryKeys[l]!,
          memoryValues: inputs.memoryValues[l]!,
          pastKeys: inputs.pastKeys[l]!,
          pastValues: inputs.pastValues[l]!,
          wantWeights: l === lastLayer,
        }),
      );
      x = result.output;
      presentKeys.push(result.presentKeys);
      presentValues.push(result.presentValues);
      // [R, heads, 1, M] -> mean over heads -> [R, M]
      if (result.crossWeights) attention = g.reshape(g.reduceMean(result.crossWeights, [1], false), [0, -1]);
    });
    const logits = linear(g, x, decoder.head, 'head');
    return { logits, attention: attention!, presentKeys, presentValues };
  },
};

/** The built-in caption-decoder exporters, by the tfjs class name of the decoder. */
export const builtinCaptionDecoderExporters: Record<string, CaptionDecoderExporter> = {
  TransformerCaptionDecoder: transformerCaptionDecoderExporter,
};
