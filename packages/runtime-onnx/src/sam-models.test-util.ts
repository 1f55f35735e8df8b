// Tiny models with SAM's ONNX signature whose output is known in advance (test-only: *.test-util.ts files are not
// published); see sam.test.ts for what they compute. Used by the SAM provider's tests and the CLI's --masks sam test.
import { OnnxGraph, type Dim, type Value } from './graph';

export const S = 128;
export const EMBEDDING = 64;

export interface Token {
  half: number;
  slope: number;
  bias: number;
}

export interface DecoderSpec {
  tokens: Token[];
  /** Side of the cells masks snap to, in input-frame pixels; 0: squares around the point itself. Default 32. */
  block?: number;
  gain?: number;
  outputs?: Array<'masks' | 'low_res_masks'>;
  promptBatch?: number | 'dynamic';
}

export const BLOCK_TOKEN: Token = { half: 16, slope: 10, bias: 0 };

function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
}

export function buildEncoder(options: { layout?: 'nchw' | 'hwc'; inputName?: string; outputName?: string; inputShape?: Dim[]; outputChannels?: number; pooledTo?: number } = {}): OnnxGraph {
  const layout = options.layout ?? 'nchw';
  const g = new OnnxGraph('tiny-sam-encoder');
  const name = options.inputName ?? 'input_image';
  let frame: Value;
  if (layout === 'nchw') {
    frame = g.input(name, 'float32', options.inputShape ?? [1, 3, S, S]);
  } else {
    const declared = g.input(name, 'float32', options.inputShape ?? ['image_height', 'image_width', 3]);
    // For the uint8 variant, `withUint8Input` retypes the input afterwards; the cast then converts to float.
    const x = g.op('Cast', [declared], { to: 1 });
    const normalised = g.div(g.sub(x, g.constant([123.675, 116.28, 103.53])), g.constant([58.395, 57.12, 57.375]));
    const planes = g.transpose(normalised, [2, 0, 1]);
    const size = g.slice(g.op('Shape', [x]), [0], [2], [0]);
    const pads = g.concat([g.int64([0, 0, 0, 0]), g.sub(g.int64([S, S]), size)], 0);
    frame = g.unsqueeze(g.op('Pad', [planes, pads]), [0]);
  }
  const pooledTo = options.pooledTo ?? EMBEDDING;
  const pooled = g.op('AveragePool', [frame], { kernel_shape: [S / pooledTo, S / pooledTo], strides: [S / pooledTo, S / pooledTo] });
  const channels = options.outputChannels ?? 256;
  const random = lcg(7);
  const weights = new Float32Array(channels * 3).map((_, i) => (i < 3 ? 1 / 3 : random()));
  const embeddings = g.op('Conv', [pooled, g.constant(weights, [channels, 3, 1, 1]), g.constant(new Float32Array(channels))]);
  g.output(embeddings, options.outputName ?? 'image_embeddings', 'float32', [1, channels, pooledTo, pooledTo]);
  return g;
}

export function buildDecoder(spec: DecoderSpec): OnnxGraph {
  const g = new OnnxGraph('tiny-sam-decoder');
  const k = spec.tokens.length;
  const block = spec.block ?? 32;
  const gain = spec.gain ?? 2;
  const batch: Dim = spec.promptBatch === undefined || spec.promptBatch === 'dynamic' ? 'num_prompts' : spec.promptBatch;
  const embeddings = g.input('image_embeddings', 'float32', [1, 256, EMBEDDING, EMBEDDING]);
  const coords = g.input('point_coords', 'float32', [batch, 'num_points', 2]);
  const labels = g.input('point_labels', 'float32', [batch, 'num_points']);
  const maskInput = g.input('mask_input', 'float32', [batch, 1, 256, 256]);
  const hasMaskInput = g.input('has_mask_input', 'float32', [batch]);
  const origImSize = g.input('orig_im_size', 'float32', [2]);

  const first = g.slice(coords, [0], [1], [1]);
  const px = g.reshape(g.slice(first, [0], [1], [2]), [-1, 1, 1, 1]);
  const py = g.reshape(g.slice(first, [1], [2], [2]), [-1, 1, 1, 1]);
  const centre = (p: Value) => (block > 0 ? g.mul(g.add(g.op('Floor', [g.div(p, g.constant(block))]), g.constant(0.5)), g.constant(block)) : p);
  const cx = centre(px);
  const cy = centre(py);
  const half = g.constant(spec.tokens.map((t) => t.half), [1, k, 1, 1]);
  const slope = g.constant(spec.tokens.map((t) => t.slope), [1, k, 1, 1]);
  const logitsOn = (u: Value, v: Value) => {
    const distance = g.op('Max', [g.op('Abs', [g.sub(u, cx)]), g.op('Abs', [g.sub(v, cy)])]);
    return g.mul(slope, g.sub(half, distance));
  };

  // Predicted IoU from the embedding's channel 0 at the point, gated by the prompt format.
  const channel0 = g.reshape(g.slice(embeddings, [0], [1], [1]), [EMBEDDING * EMBEDDING]);
  const cell = (p: Value) => g.op('Min', [g.op('Floor', [g.mul(p, g.constant(EMBEDDING / S))]), g.constant(EMBEDDING - 1)]);
  const index = g.op('Cast', [g.reshape(g.add(g.mul(cell(py), g.constant(EMBEDDING)), cell(px)), [-1])], { to: 7 });
  const brightness = g.reshape(g.gather(channel0, index), [-1, 1]);
  let iou = g.sigmoid(g.add(g.mul(brightness, g.constant(gain)), g.constant(spec.tokens.map((t) => t.bias), [1, k])));
  const isTrue = (condition: Value) => g.op('Cast', [condition], { to: 1 });
  const positive = isTrue(g.op('Equal', [g.slice(labels, [0], [1], [1]), g.constant(1)]));
  const padding = isTrue(g.op('Equal', [g.slice(labels, [1], [2], [1]), g.constant(-1)]));
  const paddingAtOrigin = isTrue(g.op('Equal', [g.reshape(g.reduceSum(g.op('Abs', [g.slice(coords, [1], [2], [1])]), [1, 2], false), [-1, 1]), g.constant(0)]));
  const noMask = g.sub(
    g.constant(1),
    g.add(g.op('ReduceMax', [hasMaskInput], { keepdims: 0 }), g.op('ReduceMax', [g.op('Abs', [maskInput])], { keepdims: 0 })),
  );
  iou = g.mul(g.mul(g.mul(g.mul(iou, positive), padding), paddingAtOrigin), noMask);
  g.output(iou, 'iou_predictions', 'float32', [batch, k]);

  const outputs = spec.outputs ?? ['masks', 'low_res_masks'];
  if (outputs.includes('masks')) {
    const h = g.gather(origImSize, g.int64(0));
    const w = g.gather(origImSize, g.int64(1));
    const scale = g.div(g.constant(S), g.op('Max', [h, w]));
    const axis = (n: Value) => g.sub(g.mul(g.add(g.op('Range', [g.constant(0), n, g.constant(1)]), g.constant(0.5)), scale), g.constant(0.5));
    const masks = logitsOn(g.reshape(axis(w), [1, 1, 1, -1]), g.reshape(axis(h), [1, 1, -1, 1]));
    g.output(masks, 'masks', 'float32', [batch, k, 'height', 'width']);
  }
  if (outputs.includes('low_res_masks')) {
    const grid = Array.from({ length: 256 }, (_, j) => ((j + 0.5) * S) / 256 - 0.5);
    const lowRes = logitsOn(g.constant(grid, [1, 1, 1, 256]), g.constant(grid, [1, 1, 256, 1]));
    g.output(lowRes, 'low_res_masks', 'float32', [batch, k, 256, 256]);
  }
  return g;
}
