import { sinusoidalTable } from '@s2cpnet/core';
import type {
  BatchNorm,
  Conv2D,
  FeedForward,
  LayerNorm,
  LearnedPositions2D,
  Linear,
  MultiHeadAttention,
} from '@s2cpnet/core';
import type { SemanticEnhancer, SpatialEnhancer } from '@s2cpnet/enhancers';
import type {
  AddFusion,
  BottleneckMergeBlock,
  CoarseGate,
  ConcatFusion,
  CrossViewFusionBase,
  CrossViewUnit,
  FusionGate,
  MergeBlock,
  ReferenceCoarseGate,
  ResidualMergeBlock,
  SingleViewFusion,
  ViewBlocks,
} from '@s2cpnet/fusion';
import type { MultiLabelCategoryDecoder, NextNounCategoryDecoder, QueryDecoderLayer } from '@s2cpnet/category-decoder';
import type { OnnxGraph, Value } from '../graph';
import type { CategoryHeadExporter, EnhancerExporter, FusionExporter } from './registry';

/**
 * ONNX exporters of the enhancers, the fusion strategies and the category heads, in inference mode: dropout is the
 * identity and batch norm uses its moving statistics. Each mirrors the tfjs forward pass operation by operation
 * (same formulas, same order of the sums that matter), in the layout tfjs uses: NHWC feature maps, [B,N,C] tokens.
 * Only the batch is a dynamic dimension; the sizes a layer is configured with (grid, widths, heads) are baked in.
 *
 * Sub-layers (fusion units, gates, merge blocks, query decoder layers) are dispatched on their tfjs class name, so a
 * subclass a user adds without an exporter fails with an error naming it rather than exporting the wrong math.
 */

// ---------------------------------------------------------------------------------------------------------------
// Core building blocks (packages/core/src/nn)
// ---------------------------------------------------------------------------------------------------------------

function classNameOf(layer: unknown): string {
  const l = layer as { getClassName?: () => string; constructor?: { className?: string; name?: string } };
  return l.getClassName?.() ?? l.constructor?.className ?? l.constructor?.name ?? typeof layer;
}

function unsupported(component: string, what: string, found: unknown, expected: string): Error {
  return new Error(`ONNX export of ${component}: ${what} ${JSON.stringify(found)} is not supported (expected ${expected})`);
}

/** Linear: `x W + b` over the last axis of a tensor of any rank (MatMul broadcasts the leading axes). */
function exportLinear(g: OnnxGraph, layer: Linear, x: Value, hint: string): Value {
  return g.dense(x, layer.kernel, layer.bias, hint);
}

/** LayerNorm: `(x - mean) * rsqrt(var + eps) * gamma + beta` over the last axis, with the layer's epsilon. */
function exportLayerNorm(g: OnnxGraph, layer: LayerNorm, x: Value, hint: string): Value {
  return g.layerNorm(x, layer.gamma, layer.beta, layer.epsilon, hint);
}

/** FeedForward: `Linear(h -> d)(ReLU(Linear(d -> h)(x)))` (its dropout is training only). */
function exportFeedForward(g: OnnxGraph, layer: FeedForward, x: Value, hint: string): Value {
  return g.scope(hint, () => exportLinear(g, layer.outer, g.relu(exportLinear(g, layer.inner, x, 'inner')), 'outer'));
}

/** Keys and values projected and split into heads, each [B, heads, Tk, headDim] (as `KeyValue` in core). */
interface KeyValueValues {
  keys: Value;
  values: Value;
}

/** [B, T, dim] -> [B, heads, T, headDim]. */
function splitHeads(g: OnnxGraph, layer: MultiHeadAttention, x: Value): Value {
  return g.transpose(g.reshape(x, [0, 0, layer.numHeads, layer.headDim]), [0, 2, 1, 3]);
}

/** `MultiHeadAttention.projectKeyValue(key, value)`. */
function exportProjectKeyValue(g: OnnxGraph, layer: MultiHeadAttention, key: Value, value: Value, hint: string): KeyValueValues {
  return g.scope(hint, () => ({
    keys: splitHeads(g, layer, exportLinear(g, layer.key, key, 'key')),
    values: splitHeads(g, layer, exportLinear(g, layer.value, value, 'value')),
  }));
}

/**
 * `MultiHeadAttention.attend(query, keyValue)` without masks: the query projected, split and scaled by
 * 1/sqrt(headDim) before `Q · K^T`, softmax over the keys, heads merged, output projection.
 */
function exportAttend(g: OnnxGraph, layer: MultiHeadAttention, query: Value, keyValue: KeyValueValues, hint: string): Value {
  return g.scope(hint, () => {
    const q = g.mul(splitHeads(g, layer, exportLinear(g, layer.query, query, 'query')), g.constant(1 / Math.sqrt(layer.headDim), [], 'scale'));
    const scores = g.matMul(q, g.transpose(keyValue.keys, [0, 1, 3, 2])); // [B, h, Tq, Tk]
    const context = g.matMul(g.softmax(scores, -1), keyValue.values); // [B, h, Tq, headDim]
    const merged = g.reshape(g.transpose(context, [0, 2, 1, 3]), [0, 0, layer.dim]);
    return exportLinear(g, layer.outputProjection, merged, 'output');
  });
}

/** `MultiHeadAttention.forward(query, key, value)` without masks. */
function exportAttention(g: OnnxGraph, layer: MultiHeadAttention, query: Value, key: Value, value: Value, hint: string): Value {
  return g.scope(hint, () => exportAttend(g, layer, query, exportProjectKeyValue(g, layer, key, value, 'kv'), 'attend'));
}

/** The `LearnedPositions2D` table [G*G, dim]: per cell, its row's half then its column's half (row-major cells). */
function exportPositions2D(g: OnnxGraph, layer: LearnedPositions2D, hint: string): Value {
  return g.scope(hint, () => {
    const grid = layer.grid;
    const half = layer.dim / 2;
    const full = g.int64([grid, grid, half], undefined, 'gridShape');
    const rows = g.op('Expand', [g.reshape(g.weight(layer.rows, 'rows'), [grid, 1, half]), full]);
    const columns = g.op('Expand', [g.reshape(g.weight(layer.columns, 'columns'), [1, grid, half]), full]);
    return g.reshape(g.concat([rows, columns], -1), [grid * grid, layer.dim]);
  });
}

/**
 * Conv2D on an NHWC map. A 1x1, stride-1 convolution is a MatMul over the channels (no layout change); any other
 * goes through an NCHW `Conv` between two transposes (ONNX Runtime cancels back-to-back pairs), with TF's 'same'
 * padding (the odd pixel at the end).
 */
function exportConv2D(g: OnnxGraph, layer: Conv2D, x: Value, hint: string): Value {
  return g.scope(hint, () => {
    // No enhancer, fusion or head uses one; the encoder's exporter handles MobileNet's depthwise convolutions.
    if (layer.depthwise) throw unsupported(`Conv2D(${layer.name})`, 'depthwise', true, 'a regular convolution');
    const k = layer.kernelSize;
    let y: Value;
    if (k === 1 && layer.strides === 1) {
      y = g.matMul(x, g.reshape(g.weight(layer.kernel, 'kernel'), [layer.inputChannels, layer.filters]));
    } else {
      let pads: Record<string, number[] | string>;
      if (layer.padding === 'valid') pads = { auto_pad: 'VALID' };
      else if (layer.strides === 1) {
        const before = Math.floor((k - 1) / 2);
        pads = { pads: [before, before, k - 1 - before, k - 1 - before] };
      } else pads = { auto_pad: 'SAME_UPPER' };
      // tfjs kernels are [kh, kw, in, out]; ONNX wants [out, in, kh, kw].
      const kernel = g.weight(layer.kernel, 'kernel', [3, 2, 0, 1]);
      const nchw = g.transpose(x, [0, 3, 1, 2]);
      const conv = g.op('Conv', [nchw, kernel], {
        kernel_shape: [k, k],
        strides: [layer.strides, layer.strides],
        ...pads,
      });
      y = g.transpose(conv, [0, 2, 3, 1]);
    }
    return layer.bias ? g.add(y, g.weight(layer.bias, 'bias')) : y;
  });
}

/** BatchNorm in inference mode over the last axis: `(x - movingMean) * gamma / sqrt(movingVariance + eps) + beta`. */
function exportBatchNorm(g: OnnxGraph, layer: BatchNorm, x: Value, hint: string): Value {
  return g.scope(hint, () => {
    const scale = g.div(g.weight(layer.gamma, 'gamma'), g.op('Sqrt', [g.add(g.weight(layer.movingVariance, 'moving_variance'), g.constant(layer.epsilon, [], 'epsilon'))]));
    return g.add(g.mul(g.sub(x, g.weight(layer.movingMean, 'moving_mean')), scale), g.weight(layer.beta, 'beta'));
  });
}

/** `tf.split(x, 2, -1)` of a [..., 2] tensor: the two [..., 1] halves. */
function splitPair(g: OnnxGraph, x: Value): [Value, Value] {
  return [g.slice(x, [0], [1], [-1]), g.slice(x, [1], [2], [-1])];
}

// ---------------------------------------------------------------------------------------------------------------
// Enhancers (packages/enhancers)
// ---------------------------------------------------------------------------------------------------------------

/** SemanticEnhancer (Eq. 1-2): `W = sigmoid(excite(ReLU(squeeze(mean_HW(E)))))`, `F = E * W`, optional 1x1 conv. */
const exportSemanticEnhancer: EnhancerExporter<SemanticEnhancer> = (g, layer, features) =>
  g.scope('semanticEnhancer', () => {
    const pooled = g.reduceMean(features, [1, 2], true); // [B,1,1,C]
    const hidden = g.relu(exportConv2D(g, layer.squeeze, pooled, 'squeeze'));
    const gate = g.sigmoid(exportConv2D(g, layer.excite, hidden, 'excite'));
    const gated = g.mul(features, gate);
    return layer.outputConv ? exportConv2D(g, layer.outputConv, gated, 'output') : gated;
  });

/**
 * The spatial enhancer's low-pass map: the global mean [B,1,1,C], or (with `lowPassGrid` P) the P x P block means
 * upsampled back by nearest neighbour. The grid side is read from the input at run time (a reshape to
 * [B, P, H/P, P, W/P, C], a mean over the block axes and an Expand back), so the graph keeps the enhancer's
 * independence from the grid size; a side that is not a multiple of P fails in the Reshape, as tfjs refuses it.
 */
function exportLowPass(g: OnnxGraph, layer: SpatialEnhancer, features: Value): Value {
  const grid = layer.lowPassGrid;
  if (grid === null) return g.reduceMean(features, [1, 2], true);
  return g.scope('lowPass', () => {
    const shape = g.op('Shape', [features]);
    const dim = (i: number) => g.slice(shape, [i], [i + 1], [0]);
    const p = g.int64([grid], undefined, 'grid');
    const blocks = g.concat([dim(0), p, g.div(dim(1), p), p, g.div(dim(2), p), dim(3)], 0);
    const means = g.reduceMean(g.reshape(features, blocks), [2, 4], true); // [B,P,1,P,1,C]
    return g.reshape(g.op('Expand', [means, blocks]), shape);
  });
}

/** SpatialEnhancer (Eq. 3-5): `H = M - L`, gates `sigmoid(min_c H)`, `sigmoid(max_c H)`, `Conv1x1((a W1 + (1-a) W2) * M)`. */
const exportSpatialEnhancer: EnhancerExporter<SpatialEnhancer> = (g, layer, features) =>
  g.scope('spatialEnhancer', () => {
    if (layer.alphaBranch !== 'background' && layer.alphaBranch !== 'foreground') {
      throw unsupported('SpatialEnhancer', 'alphaBranch', layer.alphaBranch, "'background' or 'foreground'");
    }
    const high = g.sub(features, exportLowPass(g, layer, features));
    const background = g.sigmoid(g.op('ReduceMin', [high], { axes: [-1], keepdims: 1 }));
    const foreground = g.sigmoid(g.op('ReduceMax', [high], { axes: [-1], keepdims: 1 }));
    const [weighted, complement] = layer.alphaBranch === 'background' ? [background, foreground] : [foreground, background];
    const a = g.weight(layer.alpha, 'alpha');
    const gate = g.add(g.mul(a, weighted), g.mul(g.sub(g.constant(1, [], 'one'), a), complement));
    return exportConv2D(g, layer.outputConv, g.mul(features, gate), 'output');
  });

// ---------------------------------------------------------------------------------------------------------------
// Fusion (packages/fusion)
// ---------------------------------------------------------------------------------------------------------------

/** The coarse gate's fused map F [B,N,d] (CoarseGate: sigmoid over 2 logits; ReferenceCoarseGate: softmax, plus V1 + V2). */
function exportGate(g: OnnxGraph, gate: FusionGate, imageView: Value, maskView: Value): Value {
  const type = classNameOf(gate);
  return g.scope('gate', () => {
    if (type === 'CoarseGate') {
      const layer = gate as CoarseGate;
      const weights = g.sigmoid(exportLinear(g, layer.projection, g.concat([imageView, maskView], -1), 'projection'));
      const [image, mask] = splitPair(g, weights);
      return g.add(g.mul(image, imageView), g.mul(mask, maskView));
    }
    if (type === 'ReferenceCoarseGate') {
      const layer = gate as ReferenceCoarseGate;
      const joint = g.relu(g.concat([imageView, maskView], -1));
      const weights = g.softmax(exportLinear(g, layer.logits, exportLinear(g, layer.hidden, joint, 'hidden'), 'logits'), -1);
      const [image, mask] = splitPair(g, weights);
      return g.add(g.add(g.add(g.mul(image, imageView), g.mul(mask, maskView)), imageView), maskView);
    }
    throw new Error(`ONNX export of CrossViewUnit: no exporter for gate class "${type}" (supported: CoarseGate, ReferenceCoarseGate)`);
  });
}

/** One view's update in a unit: `LN(V + MHA(V, F, F) [+ MHA'(V, other, other)])`, then `LN(x + FFN(x))`. */
function exportUpdateView(g: OnnxGraph, blocks: ViewBlocks, view: Value, other: Value, fused: Value, name: string): Value {
  let sum = g.add(view, exportAttention(g, blocks.attention, view, fused, fused, `${name}Attention`));
  if (blocks.crossAttention) sum = g.add(sum, exportAttention(g, blocks.crossAttention, view, other, other, `${name}CrossAttention`));
  const afterAttention = exportLayerNorm(g, blocks.attentionNorm, sum, `${name}AttentionNorm`);
  const fed = exportFeedForward(g, blocks.feedForward, afterAttention, `${name}FeedForward`);
  return exportLayerNorm(g, blocks.feedForwardNorm, g.add(afterAttention, fed), `${name}FeedForwardNorm`);
}

/** CrossViewUnit: (V1, V2) -> (View^0, View^1); both views are updated from the unit's inputs. */
function exportUnit(g: OnnxGraph, unit: CrossViewUnit, imageView: Value, maskView: Value): [Value, Value] {
  const type = classNameOf(unit);
  if (type !== 'CrossViewUnit') throw new Error(`ONNX export of CrossViewFusion: no exporter for unit class "${type}" (supported: CrossViewUnit)`);
  const fused = exportGate(g, unit.gate, imageView, maskView);
  return [exportUpdateView(g, unit.image, imageView, maskView, fused, 'image'), exportUpdateView(g, unit.mask, maskView, imageView, fused, 'mask')];
}

/** A merge block on the NHWC grid [B,G,G,2d]. */
function exportMergeBlock(g: OnnxGraph, block: MergeBlock, x: Value): Value {
  const type = classNameOf(block);
  if (type === 'ResidualMergeBlock') {
    const layer = block as ResidualMergeBlock;
    return g.relu(g.add(x, exportBatchNorm(g, layer.norm, exportConv2D(g, layer.conv, x, 'conv'), 'norm')));
  }
  if (type === 'BottleneckMergeBlock') {
    const layer = block as BottleneckMergeBlock;
    const reduced = g.relu(exportBatchNorm(g, layer.reduceNorm, exportConv2D(g, layer.reduce, x, 'reduce'), 'reduceNorm'));
    const spatial = g.relu(exportBatchNorm(g, layer.spatialNorm, exportConv2D(g, layer.spatial, reduced, 'spatial'), 'spatialNorm'));
    const expanded = exportBatchNorm(g, layer.expandNorm, exportConv2D(g, layer.expand, spatial, 'expand'), 'expandNorm');
    return exportLayerNorm(g, layer.layerNorm, g.relu(g.add(x, expanded)), 'layerNorm');
  }
  throw new Error(`ONNX export of CrossViewFusion: no exporter for merge block class "${type}" (supported: ResidualMergeBlock, BottleneckMergeBlock)`);
}

function requireMaskTokens(component: string, maskTokens: Value | null): Value {
  if (maskTokens === null) throw new Error(`ONNX export of ${component}: maskTokens is required by this fusion strategy (it reads the mask view), found null`);
  return maskTokens;
}

/** CrossViewFusion and ReferenceCrossViewFusion: project + positions, U units, merges on the grid, memory [B,N,2d]. */
const exportCrossViewFusion: FusionExporter<CrossViewFusionBase> = (g, layer, imageTokens, maskTokens) =>
  g.scope('fusion', () => {
    const mask = requireMaskTokens(classNameOf(layer), maskTokens);
    const positions = exportPositions2D(g, layer.positions, 'positions');
    let imageView = g.add(exportLinear(g, layer.imageProjection, imageTokens, 'imageProjection'), positions);
    let maskView = g.add(exportLinear(g, layer.maskProjection, mask, 'maskProjection'), positions);
    const grid = layer.grid;
    const channels = 2 * layer.dim;
    let merged: Value | null = null;
    for (let i = 0; i < layer.units; i++) {
      [imageView, maskView] = g.scope(`unit${i}`, () => exportUnit(g, layer.fusionUnits[i]!, imageView, maskView));
      const views = g.reshape(g.concat([imageView, maskView], -1), [0, grid, grid, channels]);
      const input: Value = merged ? g.add(views, merged) : views;
      merged = g.scope(`merge${i}`, () => exportMergeBlock(g, layer.mergeBlocks[i]!, input));
    }
    return g.reshape(merged!, [0, grid * grid, channels]);
  });

/** AddFusion: `Linear(V1) + Linear(V2) + P`. */
const exportAddFusion: FusionExporter<AddFusion> = (g, layer, imageTokens, maskTokens) =>
  g.scope('fusion', () => {
    const mask = requireMaskTokens('AddFusion', maskTokens);
    const positions = exportPositions2D(g, layer.positions, 'positions');
    const sum = g.add(exportLinear(g, layer.imageProjection, imageTokens, 'imageProjection'), exportLinear(g, layer.maskProjection, mask, 'maskProjection'));
    return g.add(sum, positions);
  });

/** ConcatFusion: `concat(Linear(V1) + P, Linear(V2) + P)`. */
const exportConcatFusion: FusionExporter<ConcatFusion> = (g, layer, imageTokens, maskTokens) =>
  g.scope('fusion', () => {
    const mask = requireMaskTokens('ConcatFusion', maskTokens);
    const positions = exportPositions2D(g, layer.positions, 'positions');
    const image = g.add(exportLinear(g, layer.imageProjection, imageTokens, 'imageProjection'), positions);
    const maskView = g.add(exportLinear(g, layer.maskProjection, mask, 'maskProjection'), positions);
    return g.concat([image, maskView], -1);
  });

/** SingleViewFusion: `Linear(V1) + P`; the mask tokens are ignored (may be null). */
const exportSingleViewFusion: FusionExporter<SingleViewFusion> = (g, layer, imageTokens) =>
  g.scope('fusion', () => g.add(exportLinear(g, layer.imageProjection, imageTokens, 'imageProjection'), exportPositions2D(g, layer.positions, 'positions')));

// ---------------------------------------------------------------------------------------------------------------
// Category heads (packages/category-decoder)
// ---------------------------------------------------------------------------------------------------------------

function checkQueryLayer(component: string, layer: QueryDecoderLayer): void {
  const type = classNameOf(layer);
  if (type !== 'QueryDecoderLayer') throw new Error(`ONNX export of ${component}: no exporter for decoder layer class "${type}" (supported: QueryDecoderLayer)`);
}

/** QueryDecoderLayer.selfBlock without a mask: `LN(x + SelfMHA(x))` over already projected keys/values. */
function exportSelfBlock(g: OnnxGraph, layer: QueryDecoderLayer, x: Value, selfKeyValue: KeyValueValues): Value {
  return exportLayerNorm(g, layer.selfNorm, g.add(x, exportAttend(g, layer.selfAttention, x, selfKeyValue, 'selfAttention')), 'selfNorm');
}

/** QueryDecoderLayer.memoryBlock: `x2 = LN(x + MHA(x, M, M))`, `LN(x2 + FFN(x2))`. */
function exportMemoryBlock(g: OnnxGraph, layer: QueryDecoderLayer, x: Value, memory: KeyValueValues): Value {
  const afterCross = exportLayerNorm(g, layer.crossNorm, g.add(x, exportAttend(g, layer.crossAttention, x, memory, 'crossAttention')), 'crossNorm');
  const fed = exportFeedForward(g, layer.feedForward, afterCross, 'feedForward');
  return exportLayerNorm(g, layer.outputNorm, g.add(afterCross, fed), 'outputNorm');
}

/**
 * MultiLabelCategoryDecoder.logits: the class queries' self-attention block (image independent, so written once
 * with batch 1 and broadcast against the memory as tfjs tiles it), the memory block, then the per-class dot
 * products or the shared `Linear(dim -> 1)`.
 */
const exportMultiLabel: CategoryHeadExporter<MultiLabelCategoryDecoder> = (g, head, memory) =>
  g.scope('categoryHead', () => {
    checkQueryLayer('MultiLabelCategoryDecoder', head.layer);
    const k = head.numClasses;
    const projected = exportLinear(g, head.memoryProjection, memory, 'memoryProjection');
    const queries = g.reshape(g.weight(head.classQueries, 'classQueries'), [1, k, head.dim]);
    const classFeatures = g.scope('layer', () => {
      const afterSelf = exportSelfBlock(g, head.layer, queries, exportProjectKeyValue(g, head.layer.selfAttention, queries, queries, 'selfKeyValue'));
      const memoryKeyValue = exportProjectKeyValue(g, head.layer.crossAttention, projected, projected, 'memoryKeyValue');
      return exportMemoryBlock(g, head.layer, afterSelf, memoryKeyValue); // [B,K,dim]
    });
    if (head.classifier === 'shared') {
      if (!head.sharedClassifier) throw new Error('ONNX export of MultiLabelCategoryDecoder: classifier "shared" without its Linear layer');
      return g.reshape(exportLinear(g, head.sharedClassifier, classFeatures, 'classifier'), [0, k]);
    }
    if (head.classifier !== 'per-class' || !head.classWeights || !head.classBiases) {
      throw unsupported('MultiLabelCategoryDecoder', 'classifier', head.classifier, "'per-class' or 'shared'");
    }
    const dots = g.reduceSum(g.mul(classFeatures, g.weight(head.classWeights, 'classWeights')), [-1], false);
    return g.add(dots, g.weight(head.classBiases, 'classBiases'));
  });

/**
 * NextNounCategoryDecoder.logits without `nounTokens` (what inference calls): greedy generation for maxNouns+1
 * steps, unrolled. Each step embeds the previous word (`sqrt(dim) * E[w] + (sinusoid[s] + learned[s])`), appends its
 * self-attention keys/values to each layer's cache, runs the layers against the memory's keys/values (projected
 * once), and picks the next word with ArgMax (first index on ties, as tf.argMax). Output: the step logits
 * flattened to [B, (maxNouns+1) * V]. The teacher-forced path (`nounTokens`) is a training-time input and is not
 * part of the exported graph.
 */
const exportNextNoun: CategoryHeadExporter<NextNounCategoryDecoder> = (g, head, memory) =>
  g.scope('categoryHead', () => {
    for (const layer of head.layers) checkQueryLayer('NextNounCategoryDecoder', layer);
    const dim = head.dim;
    const steps = head.steps;
    const sinusoid = sinusoidalTable(steps, dim);
    const table = g.weight(head.embedding.table, 'embedding');
    const learned = g.weight(head.learnedPositions.table, 'positions');
    const wordScale = g.constant(Math.sqrt(dim), [], 'wordScale');
    const projected = exportLinear(g, head.memoryProjection, memory, 'memoryProjection');
    const memoryKeyValues = head.layers.map((layer, l) =>
      g.scope(`layer${l}`, () => exportProjectKeyValue(g, layer.crossAttention, projected, projected, 'memoryKeyValue')),
    );
    // [B, 1, dim]: the <start> row broadcast to the batch read from the memory.
    const batchByOne = g.concat([g.slice(g.op('Shape', [memory]), [0], [1], [0]), g.int64([1, dim], undefined, 'rowShape')], 0);
    const caches: (KeyValueValues | null)[] = head.layers.map(() => null);
    const stepLogits: Value[] = [];
    let token: Value = g.int64([head.startId], [1, 1], 'startToken');
    for (let s = 0; s < steps; s++) {
      g.scope(`step${s}`, () => {
        const words = g.mul(g.gather(table, token, 0), wordScale); // [B or 1, 1, dim]
        const fixed = g.constant(sinusoid.subarray(s * dim, (s + 1) * dim), [1, dim], 'sinusoid');
        let x = g.add(words, g.add(fixed, g.slice(learned, [s], [s + 1], [0])));
        if (s === 0) x = g.op('Expand', [x, batchByOne]);
        head.layers.forEach((layer, l) => {
          g.scope(`layer${l}`, () => {
            const fresh = exportProjectKeyValue(g, layer.selfAttention, x, x, 'selfKeyValue');
            const previous = caches[l];
            const cache = previous ? { keys: g.concat([previous.keys, fresh.keys], 2), values: g.concat([previous.values, fresh.values], 2) } : fresh;
            caches[l] = cache;
            // One query position: tfjs applies no causal mask (every cached key is at or before it).
            x = exportMemoryBlock(g, layer, exportSelfBlock(g, layer, x, cache), memoryKeyValues[l]!);
          });
        });
        const logits = exportLinear(g, head.head, x, 'head'); // [B,1,V]
        stepLogits.push(logits);
        if (s < steps - 1) token = g.op('ArgMax', [logits], { axis: -1, keepdims: 0 }); // [B,1] int64
      });
    }
    return g.reshape(g.concat(stepLogits, 1), [0, steps * head.vocabSize]);
  });

// ---------------------------------------------------------------------------------------------------------------
// Maps by tfjs class name
// ---------------------------------------------------------------------------------------------------------------

/** Exporters of the built-in enhancers, by kind and tfjs class name. */
export const builtinEnhancerExporters: { semanticEnhancer: Record<string, EnhancerExporter>; spatialEnhancer: Record<string, EnhancerExporter> } = {
  semanticEnhancer: { SemanticEnhancer: exportSemanticEnhancer },
  spatialEnhancer: { SpatialEnhancer: exportSpatialEnhancer },
};

/** Exporters of the built-in fusion strategies, by tfjs class name. */
export const builtinFusionExporters: Record<string, FusionExporter> = {
  CrossViewFusion: exportCrossViewFusion,
  ReferenceCrossViewFusion: exportCrossViewFusion,
  AddFusion: exportAddFusion,
  ConcatFusion: exportConcatFusion,
  SingleViewFusion: exportSingleViewFusion,
};

/** Exporters of the built-in category heads, by tfjs class name. */
export const builtinCategoryHeadExporters: Record<string, CategoryHeadExporter> = {
  MultiLabelCategoryDecoder: exportMultiLabel,
  NextNounCategoryDecoder: exportNextNoun,
};
