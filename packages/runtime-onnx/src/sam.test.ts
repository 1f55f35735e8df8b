import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S2CPNetError } from '@s2cpnet/core';
import { computeMaskView, type LabelMap, type RgbImage } from '@s2cpnet/data';
import { OnnxGraph, type Dim, type Value } from './graph';
import { BLOCK_TOKEN, EMBEDDING, S, buildDecoder, buildEncoder, type DecoderSpec, type Token } from './sam-models.test-util';
import { onnxModelType } from './onnx-schema';
import {
  createSamMaskProvider,
  SAM_MASK_PROVIDER_DEFAULTS,
  samPointGrid,
  samResizedSize,
  type SamMaskProvider,
  type SamMaskProviderOptions,
} from './sam';

/*
 * Tiny models with SAM's ONNX signature, built so that their output is known in advance:
 *
 * - the encoder average-pools its S x S input frame (S = 128 here) to 64 x 64 and applies a 1 x 1 convolution to 256
 *   channels; channel 0 is the mean of the three normalised colour channels, so it says how bright the image is at
 *   each embedding cell (the other channels are random);
 * - the decoder reads the first point of each prompt (in the resized input frame) and returns, for each of its K mask
 *   tokens, logits `slope * (half - chebyshevDistance(pixel, centre))`: a square of half-side `half` around the point,
 *   or around the centre of the `block` x `block` cell holding the point (an "object" that several grid points hit).
 *   `slope` sets the stability score (steep logits are stable). The predicted IoU is
 *   `sigmoid(gain * embedding[0] at the point + bias)`: high on bright image areas, low on dark ones, and 0 when the
 *   prompt is not [positive point, padding point (0, 0) with label -1] or a mask input is given. `low_res_masks` are
 *   the logits on a 256 x 256 grid over the S x S frame, `masks` the logits at `orig_im_size`.
 */

/** A decoder with the given inputs and outputs that computes nothing useful: for signature checks. */
function buildSignatureOnly(
  inputs: Array<[string, Dim[]]>,
  outputs: Array<[string, Dim[]]>,
): OnnxGraph {
  const g = new OnnxGraph('signature-only');
  for (const [name, shape] of inputs) g.input(name, 'float32', shape);
  for (const [name, shape] of outputs) g.output(g.op('Identity', [g.constant(0)]), name, 'float32', shape);
  return g;
}

const SAM_DECODER_INPUTS: Array<[string, Dim[]]> = [
  ['image_embeddings', [1, 256, 64, 64]],
  ['point_coords', [1, 'num_points', 2]],
  ['point_labels', [1, 'num_points']],
  ['mask_input', [1, 1, 256, 256]],
  ['has_mask_input', [1]],
  ['orig_im_size', [2]],
];
const SAM_DECODER_OUTPUTS: Array<[string, Dim[]]> = [
  ['masks', [1, 1, 'h', 'w']],
  ['iou_predictions', [1, 1]],
  ['low_res_masks', [1, 1, 256, 256]],
];

/** Sets graph input 0's element type to uint8 (the graph builder writes float32, int64, int32 and bool only). */
function withUint8Input(bytes: Uint8Array): Uint8Array {
  const type = onnxModelType();
  const model = type.toObject(type.decode(bytes), { longs: Number, bytes: Array }) as { graph: { input: Array<{ type: { tensor_type: { elem_type: number } } }> } };
  model.graph.input[0]!.type.tensor_type.elem_type = 2;
  return type.encode(type.fromObject(model)).finish();
}

type Rgb = [number, number, number];
const BRIGHT: Rgb = [255, 255, 255];
const DARK: Rgb = [0, 0, 0];
const GRAY: Rgb = [128, 128, 128];

/** An image of `cell` x `cell` blocks coloured by `colour(column, row)`. */
function blockImage(width: number, height: number, cell: number, colour: (column: number, row: number) => Rgb): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set(colour(Math.floor(x / cell), Math.floor(y / cell)), 3 * (y * width + x));
  }
  return { width, height, data };
}

const checkerboard = (column: number, row: number): Rgb => ((column + row) % 2 === 0 ? BRIGHT : DARK);

/** The label map a correct provider gives for a block image: one segment per kept block, 0 elsewhere. */
function expectedBlocks(width: number, height: number, cell: number, kept: (column: number, row: number) => boolean): LabelMap {
  const columns = Math.ceil(width / cell);
  const labels = new Int32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const column = Math.floor(x / cell);
      const row = Math.floor(y / cell);
      labels[y * width + x] = kept(column, row) ? row * columns + column + 1 : 0;
    }
  }
  return { width, height, labels };
}

/** Renumbers segments by first appearance (0 stays 0), so two partitions compare equal whatever their label order. */
function canonical(map: LabelMap): Int32Array {
  const seen = new Map<number, number>([[0, 0]]);
  return map.labels.map((label) => {
    if (!seen.has(label)) seen.set(label, seen.size);
    return seen.get(label)!;
  });
}

function distinctLabels(map: LabelMap): number[] {
  return [...new Set(map.labels)].filter((l) => l !== 0).sort((a, b) => a - b);
}

let dir: string;
const files: Record<string, string> = {};
const providers: SamMaskProvider[] = [];

async function writeModel(name: string, bytes: Uint8Array): Promise<string> {
  const file = join(dir, `${name}.onnx`);
  await writeFile(file, bytes);
  files[name] = file;
  return file;
}

async function provider(options: Partial<SamMaskProviderOptions> = {}): Promise<SamMaskProvider> {
  const created = await createSamMaskProvider({ encoder: files.encoder!, decoder: files.decoder!, intraOpNumThreads: 1, ...options });
  providers.push(created);
  return created;
}

async function errorOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 's2cpnet-sam-'));
  await writeModel('encoder', buildEncoder().serialize());
  await writeModel('encoderHwc', buildEncoder({ layout: 'hwc' }).serialize());
  await writeModel('encoderHwcUint8', withUint8Input(buildEncoder({ layout: 'hwc', inputName: 'image' }).serialize()));
  await writeModel('encoderImages', buildEncoder({ inputName: 'images', outputName: 'embeddings' }).serialize());
  await writeModel('decoder', buildDecoder({ tokens: [BLOCK_TOKEN] }).serialize());
  await writeModel('decoderFixedBatch', buildDecoder({ tokens: [BLOCK_TOKEN], promptBatch: 1 }).serialize());
  await writeModel('decoderFixedBatch3', buildDecoder({ tokens: [BLOCK_TOKEN], promptBatch: 3 }).serialize());
  await writeModel('decoderMasksOnly', buildDecoder({ tokens: [BLOCK_TOKEN], outputs: ['masks'] }).serialize());
  await writeModel('decoderUnstable', buildDecoder({ tokens: [{ half: 16, slope: 0.5, bias: 0 }] }).serialize());
  await writeModel('decoderPoints', buildDecoder({ tokens: [{ half: 3, slope: 10, bias: 0 }], block: 0 }).serialize());
  await writeModel(
    'decoderMultimask',
    buildDecoder({
      tokens: [
        { half: 24, slope: 10, bias: 5 }, // token 0, the single-mask output: never used in automatic mode
        BLOCK_TOKEN,
        { half: 8, slope: 10, bias: -0.5 }, // the block's centre
        { half: 4, slope: 0.5, bias: -1 }, // unstable
      ],
      outputs: ['low_res_masks'],
    }).serialize(),
  );
}, 60_000);

afterAll(async () => {
  for (const p of providers) await p.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe('samPointGrid and samResizedSize', () => {
  it('builds the cell-centre grid of build_point_grid, row by row', () => {
    expect(samPointGrid(2)).toEqual([
      [0.25, 0.25],
      [0.75, 0.25],
      [0.25, 0.75],
      [0.75, 0.75],
    ]);
    expect(samPointGrid(1)).toEqual([[0.5, 0.5]]);
    expect(samPointGrid(16)).toHaveLength(256);
  });

  it('resizes the longest side to the input size, rounding the other half up', () => {
    expect(samResizedSize(224, 224, 1024)).toEqual({ width: 1024, height: 1024 });
    expect(samResizedSize(96, 48, 128)).toEqual({ width: 128, height: 64 });
    expect(samResizedSize(1500, 2250, 1024)).toEqual({ width: 683, height: 1024 });
  });
});

describe('SamMaskProvider: automatic mode', () => {
  it('reads the input size from the encoder and the prompt batch from the decoder', async () => {
    const sam = await provider();
    expect(sam.name).toBe('sam');
    expect(sam.models).toMatchObject({
      encoderInputName: 'input_image',
      encoderInputLayout: 'nchw',
      encoderOutputName: 'image_embeddings',
      inputSize: S,
      decoderPromptBatch: 'dynamic',
      masksPerPrompt: 1,
      maskOutput: 'low_res_masks',
    });
    expect(sam.settings).toMatchObject({ pointsPerSide: 16, predictedIouThreshold: 0.88, stabilityScoreThreshold: 0.95, boxNmsThreshold: 0.7, minMaskArea: 100 });
    const fixed = await provider({ decoder: files.decoderFixedBatch });
    expect(fixed.models.decoderPromptBatch).toBe(1);
  });

  it('prompts the decoder with the point grid, mapped to the input frame and back', async () => {
    // Masks are 3 x 3 squares around each point, so every grid point shows up where it should, once.
    const sam = await provider({ decoder: files.decoderPoints, pointsPerSide: 4, minMaskArea: 1 });
    const image = blockImage(64, 64, 64, () => BRIGHT);
    const masks = await sam.generateMasks(image);
    expect(masks.map((m) => m.point).sort((a, b) => a[1] - b[1] || a[0] - b[0])).toEqual(samPointGrid(4).map(([x, y]) => [x * 64, y * 64]));
    const labels = await sam.labelMap(image, 'bright.png');
    const atPoints = samPointGrid(4).map(([x, y]) => labels.labels[y * 64 * 64 + x * 64]!);
    expect(new Set(atPoints).size).toBe(16);
    expect(atPoints.every((l) => l > 0)).toBe(true);
    expect(labels.labels.filter((l) => l > 0)).toHaveLength(16 * 9);
    expect(masks.every((m) => m.area === 9 && m.mask.length === 9 && m.stabilityScore === 1)).toBe(true);
    expect(distinctLabels(labels)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
  });

  it('keeps confident masks, drops low predicted IoU, and leaves uncovered pixels at 0', async () => {
    const sam = await provider({ pointsPerSide: 8 });
    const image = blockImage(64, 64, 16, checkerboard);
    const labels = await sam.labelMap(image, 'checkerboard.png');
    expect(labels.width).toBe(64);
    expect(labels.height).toBe(64);
    expect(canonical(labels)).toEqual(canonical(expectedBlocks(64, 64, 16, (c, r) => (c + r) % 2 === 0)));
    expect(distinctLabels(labels)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);

    // A gray block's IoU (~0.62) is under the default 0.88 and over 0.5.
    const withGray = blockImage(64, 64, 16, (c, r) => (c === 1 && r === 0 ? GRAY : checkerboard(c, r)));
    const strict = await sam.labelMap(withGray, 'gray.png');
    expect(canonical(strict)).toEqual(canonical(labels));
    const lenient = await (await provider({ pointsPerSide: 8, predictedIouThreshold: 0.5 })).labelMap(withGray, 'gray.png');
    expect(canonical(lenient)).toEqual(canonical(expectedBlocks(64, 64, 16, (c, r) => (c + r) % 2 === 0 || (c === 1 && r === 0))));

    const dark = await sam.labelMap(blockImage(64, 64, 64, () => DARK), 'dark.png');
    expect(dark.labels.every((l) => l === 0)).toBe(true);
  });

  it('drops unstable masks (stability score on the logits with the offset)', async () => {
    const image = blockImage(64, 64, 16, checkerboard);
    const unstable = await provider({ decoder: files.decoderUnstable, pointsPerSide: 8 });
    expect((await unstable.labelMap(image, 'a.png')).labels.every((l) => l === 0)).toBe(true);
    const lenient = await provider({ decoder: files.decoderUnstable, pointsPerSide: 8, stabilityScoreThreshold: 0.5 });
    const masks = await lenient.generateMasks(image);
    expect(masks).toHaveLength(8);
    for (const m of masks) {
      expect(m.stabilityScore).toBeGreaterThan(0.5);
      expect(m.stabilityScore).toBeLessThan(0.95);
    }
  });

  it('removes duplicates with box NMS: four points in one block give one segment', async () => {
    const image = blockImage(64, 64, 16, checkerboard);
    const masks = await (await provider({ pointsPerSide: 8 })).generateMasks(image);
    expect(masks).toHaveLength(8);
    expect(masks.every((m) => m.area === 256 && m.box[2] - m.box[0] === 15 && m.box[3] - m.box[1] === 15)).toBe(true);
    const withoutNms = await (await provider({ pointsPerSide: 8, boxNmsThreshold: 1 })).generateMasks(image);
    expect(withoutNms).toHaveLength(32);
  });

  it('drops masks under minMaskArea', async () => {
    const image = blockImage(64, 64, 16, checkerboard);
    expect(await (await provider({ pointsPerSide: 8, minMaskArea: 256 })).generateMasks(image)).toHaveLength(8);
    expect(await (await provider({ pointsPerSide: 8, minMaskArea: 257 })).generateMasks(image)).toHaveLength(0);
  });

  it('gives a label map of the image size for a non-square image', async () => {
    // 96 x 48 -> 128 x 64 in the input frame (bottom half padding); 32-px input blocks are 24-px image blocks.
    const image = blockImage(96, 48, 24, checkerboard);
    for (const maskOutput of ['auto', 'masks'] as const) {
      const labels = await (await provider({ pointsPerSide: 8, maskOutput })).labelMap(image, 'wide.png');
      expect([labels.width, labels.height, labels.labels.length]).toEqual([96, 48, 96 * 48]);
      expect(canonical(labels)).toEqual(canonical(expectedBlocks(96, 48, 24, (c, r) => (c + r) % 2 === 0)));
    }
    const tall = blockImage(48, 96, 24, checkerboard);
    const labels = await (await provider({ pointsPerSide: 8 })).labelMap(tall, 'tall.png');
    expect([labels.width, labels.height]).toEqual([48, 96]);
    expect(canonical(labels)).toEqual(canonical(expectedBlocks(48, 96, 24, (c, r) => (c + r) % 2 === 0)));
  });

  it('gives the same result whatever the batching, including fixed-batch decoders', async () => {
    const image = blockImage(96, 48, 24, checkerboard);
    const reference = await (await provider({ pointsPerSide: 8, pointsPerBatch: 1 })).generateMasks(image);
    expect(reference.length).toBeGreaterThan(0);
    for (const options of [{ pointsPerBatch: 5 }, { pointsPerBatch: 64 }, { decoder: files.decoderFixedBatch }, { decoder: files.decoderFixedBatch3 }]) {
      const masks = await (await provider({ pointsPerSide: 8, ...options })).generateMasks(image);
      expect(masks).toEqual(reference);
    }
  });

  it('reads masks from low_res_masks or masks alike, and uses masks when the decoder has no low_res_masks', async () => {
    const image = blockImage(64, 64, 16, checkerboard);
    const lowRes = await (await provider({ pointsPerSide: 8 })).labelMap(image, 'a.png');
    const full = await provider({ pointsPerSide: 8, maskOutput: 'masks' });
    expect(full.models.maskOutput).toBe('masks');
    expect((await full.labelMap(image, 'a.png')).labels).toEqual(lowRes.labels);
    const masksOnly = await provider({ decoder: files.decoderMasksOnly, pointsPerSide: 8 });
    expect(masksOnly.models.maskOutput).toBe('masks');
    expect((await masksOnly.labelMap(image, 'a.png')).labels).toEqual(lowRes.labels);
    await expect(provider({ decoder: files.decoderMasksOnly, maskOutput: 'low_res_masks' })).rejects.toThrow(/'low_res_masks'.*missing/);
  });

  it('uses the multimask proposals 1..3, never token 0; paints smaller masks on top', async () => {
    const image = blockImage(64, 64, 16, checkerboard);
    const isBright = (c: number, r: number) => (c + r) % 2 === 0;
    // One point per block (4 x 4 grid) keeps this test fast: a K = 4 decoder returns 4 masks per point.
    const all = await provider({ decoder: files.decoderMultimask, pointsPerSide: 4, minMaskArea: 10 });
    expect(all.models.masksPerPrompt).toBe(4);
    const masks = await all.generateMasks(image);
    // Per bright block: the block (256 px) and its centre (8 x 8 = 64 px); the unstable token is gone.
    expect(masks.map((m) => m.area).sort((a, b) => b - a)).toEqual([...Array(8).fill(256), ...Array(8).fill(64)]);
    expect(masks.slice(0, 8).every((m) => m.area === 256)).toBe(true);
    const labels = await all.labelMap(image, 'a.png');
    expect(distinctLabels(labels)).toHaveLength(16);
    for (let r = 0; r < 4; r++) {
      for (let c = 0; c < 4; c++) {
        const edge = labels.labels[(r * 16 + 1) * 64 + c * 16 + 1]!;
        const centre = labels.labels[(r * 16 + 8) * 64 + c * 16 + 8]!;
        if (isBright(c, r)) {
          expect(edge).toBeGreaterThan(0);
          expect(centre).toBeGreaterThan(0);
          expect(centre).not.toBe(edge);
        } else {
          // Token 0 would reach 4 px into the dark neighbours.
          for (let y = r * 16; y < r * 16 + 16; y++) for (let x = c * 16; x < c * 16 + 16; x++) expect(labels.labels[y * 64 + x]).toBe(0);
        }
      }
    }
    const withoutCentres = await (await provider({ decoder: files.decoderMultimask, pointsPerSide: 4, minMaskArea: 65 })).labelMap(image, 'a.png');
    expect(canonical(withoutCentres)).toEqual(canonical(expectedBlocks(64, 64, 16, isBright)));
    const best = await (await provider({ decoder: files.decoderMultimask, pointsPerSide: 4, minMaskArea: 10, multimask: 'best' })).labelMap(image, 'a.png');
    expect(canonical(best)).toEqual(canonical(expectedBlocks(64, 64, 16, isBright)));
  });

  it('supports encoders that normalise and pad inside ([H,W,3] float32 or uint8) and other input names', async () => {
    const image = blockImage(96, 48, 24, (c, r) => (c === 1 && r === 0 ? GRAY : checkerboard(c, r)));
    const reference = await (await provider({ pointsPerSide: 8, predictedIouThreshold: 0.5 })).labelMap(image, 'a.png');
    expect(distinctLabels(reference)).toHaveLength(5);
    for (const encoder of [files.encoderHwc, files.encoderHwcUint8]) {
      const sam = await provider({ encoder, inputSize: S, pointsPerSide: 8, predictedIouThreshold: 0.5 });
      expect(sam.models.encoderInputLayout).toBe('hwc');
      expect((await sam.labelMap(image, 'a.png')).labels).toEqual(reference.labels);
    }
    const uint8 = await provider({ encoder: files.encoderHwcUint8, inputSize: S });
    expect(uint8.models).toMatchObject({ encoderInputName: 'image', encoderInputType: 'uint8' });
    // An [H,W,3] encoder's frame size is not in its metadata: SAM's 1024 unless told.
    expect((await provider({ encoder: files.encoderHwc })).models.inputSize).toBe(1024);
    const images = await provider({ encoder: files.encoderImages, pointsPerSide: 8, predictedIouThreshold: 0.5 });
    expect(images.models).toMatchObject({ encoderInputName: 'images', encoderOutputName: 'embeddings' });
    expect((await images.labelMap(image, 'a.png')).labels).toEqual(reference.labels);
    await expect(provider({ encoder: files.encoderHwc, encoderInput: 'nchw' })).rejects.toThrow(/encoderInput 'nchw' expects rank 4, found rank 3/);
  });

  it('plugs into computeMaskView: segments filled with their colour, background and borders dark', async () => {
    const colour: Rgb = [250, 240, 200];
    const image = blockImage(64, 64, 16, (c, r) => ((c + r) % 2 === 0 ? colour : DARK));
    // At 32 px a block is 8 x 8 = 64 px, under the default minMaskArea of 100.
    const sam = await provider({ pointsPerSide: 8, minMaskArea: 16 });
    const view = await computeMaskView(image, 'scene.png', sam, {});
    expect([view.width, view.height]).toEqual([64, 64]);
    const at = (v: RgbImage, x: number, y: number) => [...v.data.subarray(3 * (y * v.width + x), 3 * (y * v.width + x) + 3)];
    expect(at(view, 5, 5)).toEqual(colour);
    expect(at(view, 20, 5)).toEqual([0, 0, 0]);
    expect(at(view, 15, 5)).toEqual([0, 0, 0]); // border between a segment and the background
    // At a working size the provider sees the resized image and answers at that size.
    const small = await computeMaskView(image, 'scene.png', sam, { size: 32 });
    expect([small.width, small.height]).toEqual([32, 32]);
    expect(at(small, 3, 3)).toEqual(colour);
    expect(at(small, 11, 3)).toEqual([0, 0, 0]);
  });
});

describe('SamMaskProvider: cacheKey', () => {
  it('changes with every setting that changes masks and with the models’ content, not with speed settings or paths', async () => {
    const base = await provider();
    expect(base.cacheKey).toMatch(/^sam-[A-Za-z0-9._-]+$/);
    expect((await provider()).cacheKey).toBe(base.cacheKey);
    expect((await provider({ pointsPerBatch: 7, intraOpNumThreads: 2 })).cacheKey).toBe(base.cacheKey);
    const copy = join(dir, 'copy-of-decoder.onnx');
    await copyFile(files.decoder!, copy);
    expect((await provider({ decoder: copy })).cacheKey).toBe(base.cacheKey);

    const variants: Array<Partial<SamMaskProviderOptions>> = [
      { pointsPerSide: 32 },
      { predictedIouThreshold: 0.8 },
      { stabilityScoreThreshold: 0.9 },
      { stabilityScoreOffset: 2 },
      { boxNmsThreshold: 0.5 },
      { minMaskArea: 10 },
      { multimask: 'best' },
      { maskOutput: 'masks' },
      { decoder: files.decoderUnstable },
      { encoder: files.encoderImages },
    ];
    const keys = new Set([base.cacheKey]);
    for (const variant of variants) keys.add((await provider(variant)).cacheKey);
    expect(keys.size).toBe(variants.length + 1);

    // Same path, new content: a new key.
    await writeFile(copy, buildDecoder({ tokens: [{ half: 15, slope: 10, bias: 0 }] }).serialize());
    expect((await provider({ decoder: copy })).cacheKey).not.toBe(base.cacheKey);
  });
});

describe('SamMaskProvider: errors', () => {
  async function signatureError(name: string, inputs: Array<[string, Dim[]]>, outputs: Array<[string, Dim[]]> = SAM_DECODER_OUTPUTS): Promise<Error> {
    const file = await writeModel(name, buildSignatureOnly(inputs, outputs).serialize());
    return errorOf(provider({ decoder: file }));
  }

  it('the signature-only decoder itself is accepted', async () => {
    const file = await writeModel('decoderSignatureOnly', buildSignatureOnly(SAM_DECODER_INPUTS, SAM_DECODER_OUTPUTS).serialize());
    expect((await provider({ decoder: file })).models.decoderPromptBatch).toBe(1);
  });

  it('names the file, the input, what was expected and what was found', async () => {
    const renamed = SAM_DECODER_INPUTS.map(([name, shape]): [string, Dim[]] => [name === 'point_coords' ? 'coords' : name, shape]);
    const missing = await signatureError('decoderRenamed', renamed);
    expect(S2CPNetError.isInstance(missing)).toBe(true);
    expect(missing.message).toContain(files.decoderRenamed);
    expect(missing.message).toMatch(/input 'point_coords' \[N,P,2\] float32 is missing/);
    expect(missing.message).toMatch(/found image_embeddings, coords, point_labels/);

    const rank = await signatureError('decoderRank', SAM_DECODER_INPUTS.map(([name, shape]): [string, Dim[]] => [name, name === 'orig_im_size' ? [1, 2] : shape]));
    expect(rank.message).toContain(files.decoderRank);
    expect(rank.message).toMatch(/'orig_im_size': expected rank 1 \[2\] float32, found rank 2 \[1,2\]/);

    const noIou = await signatureError('decoderNoIou', SAM_DECODER_INPUTS, SAM_DECODER_OUTPUTS.filter(([n]) => n !== 'iou_predictions'));
    expect(noIou.message).toMatch(/output 'iou_predictions' \[N,K\] is missing/);

    const extra = await signatureError('decoderExtra', [...SAM_DECODER_INPUTS, ['boxes', [1, 4]]]);
    expect(extra.message).toMatch(/inputs this adapter cannot feed: boxes/);
  });

  it('checks the encoder input and that the pair fits together', async () => {
    const flat = await writeModel('encoderFlat', buildSignatureOnly([['input_image', [1, 3 * S * S]]], [['image_embeddings', [1, 256, 64, 64]]]).serialize());
    const flatError = await errorOf(provider({ encoder: flat }));
    expect(flatError.message).toContain(flat);
    expect(flatError.message).toMatch(/input 'input_image': expected rank 4 \[1,3,S,S\].*found rank 2 \[1,49152\]/);

    const rgba = await writeModel('encoderRgba', buildSignatureOnly([['input_image', [1, 4, S, S]]], [['image_embeddings', [1, 256, 64, 64]]]).serialize());
    expect((await errorOf(provider({ encoder: rgba }))).message).toMatch(/expected 3 colour channels.*found \[1,4,128,128\]/);

    const small = await writeModel('encoderSmall', buildEncoder({ pooledTo: 32 }).serialize());
    const mismatch = await errorOf(provider({ encoder: small }));
    expect(mismatch.message).toMatch(/do not belong together: .*encoderSmall\.onnx output 'image_embeddings' is \[1,256,32,32\], but .*decoder\.onnx input 'image_embeddings' expects \[1,256,64,64\]/);

    const wrongSize = await errorOf(provider({ inputSize: 1024 }));
    expect(wrongSize.message).toMatch(/inputSize.*1024.*takes \[1,3,128,128\]/);
  });

  it('reports missing or unreadable model files by name', async () => {
    const absent = join(dir, 'absent.onnx');
    const error = await errorOf(provider({ decoder: absent }));
    expect(error.message).toContain(absent);
    expect(error.message).toMatch(/does not exist/);
    const garbage = join(dir, 'garbage.onnx');
    await writeFile(garbage, 'not a model');
    expect((await errorOf(provider({ encoder: garbage }))).message).toMatch(/garbage\.onnx.*could not load the SAM encoder/);
  });

  it('validates options', async () => {
    await expect(provider({ pointsPerSide: 0 })).rejects.toThrow(/\$\.pointsPerSide: must be an integer >= 1, found 0/);
    await expect(provider({ predictedIouThreshold: 1.5 })).rejects.toThrow(/\$\.predictedIouThreshold/);
    await expect(provider({ multimask: 'some' as never })).rejects.toThrow(/\$\.multimask: must be one of "all", "best"/);
    await expect(createSamMaskProvider({ encoder: '', decoder: 'x.onnx' })).rejects.toThrow(/\$\.encoder/);
    expect(SAM_MASK_PROVIDER_DEFAULTS.pointsPerSide).toBe(16);
  });

  it('says how to install onnxruntime-node when it is missing', async () => {
    const importRuntime = () => Promise.reject(Object.assign(new Error("Cannot find package 'onnxruntime-node' imported from sam.ts"), { code: 'ERR_MODULE_NOT_FOUND' }));
    const error = await errorOf(provider({ importRuntime }));
    expect(S2CPNetError.isInstance(error)).toBe(true);
    expect(error.message).toContain('ONNXRUNTIME_NODE_INSTALL=skip npm i onnxruntime-node');
    expect(error.message).toMatch(/the SAM mask provider needs the optional package onnxruntime-node/);
    expect(error.stack).toBeDefined();
  });

  it('refuses to work after dispose', async () => {
    const sam = await createSamMaskProvider({ encoder: files.encoder!, decoder: files.decoder!, intraOpNumThreads: 1 });
    await sam.dispose();
    await expect(sam.labelMap(blockImage(8, 8, 8, () => BRIGHT), 'a.png')).rejects.toThrow(/disposed/);
  });
});

