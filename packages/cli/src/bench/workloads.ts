/**
 * The benchmark workloads of `s2cpnet bench`, at the sizes `bench/pytorch/bench.py` runs in PyTorch (same names),
 * so the two can be compared workload by workload. Weights are random (speed does not depend on them) and seeded.
 */
import * as tf from '@tensorflow/tfjs-core';
import { createEncoder } from '@s2cpnet/encoder';
import { createFusion } from '@s2cpnet/fusion';
import { captionCrossEntropy, createCaptionDecoder } from '@s2cpnet/caption-decoder';
import { Adam, buildS2CPNet, captionBatchAsync, presetConfig, trainStep, trainableVariables, type S2CPNet } from '@s2cpnet/model';
import { runMetricsBenchmark } from '@s2cpnet/metrics';

/** What one repetition of a workload processes, for "per image" / "per sample" rates. */
export interface WorkloadUnits {
  /** Units per repetition (e.g. 8 images). */
  count: number;
  /** Singular name of a unit: 'batch', 'image', 'sample', 'step'. */
  name: string;
}

export interface PreparedWorkload {
  /** One repetition; resolves when its results are on the host. */
  run(): Promise<void>;
  dispose(): void | Promise<void>;
  /** Extra numbers worth reporting once the timed repetitions are done. */
  extra?(): Record<string, number>;
}

export interface Workload {
  name: string;
  description: string;
  units: WorkloadUnits;
  /** Caption samples per repetition (training workloads), for samples/s. */
  captionSamples?: number;
  /** Name of the matching `bench/pytorch/bench.py` workload when it differs (compared per sample, not per step). */
  twin?: string;
  /** Heavy workloads get fewer repetitions by default. */
  heavy?: boolean;
  /** Counts FLOPs by profiling one repetition (false for non-tensor work such as metric scoring). */
  countFlops: boolean;
  /** Runs only on GPU backends (webgpu, tensorflow): sized for GPU memory, beyond the 4 GiB wasm heap. */
  gpuOnly?: boolean;
  prepare(): Promise<PreparedWorkload>;
}

/** Why a `gpuOnly` workload is skipped on the CPU backends. */
export const GPU_ONLY_SKIP_REASON = 'sized for a GPU backend (webgpu, tensorflow): beyond the 4 GiB wasm heap';

/** The workloads a tfjs backend runs, and the GPU-only ones it skips (cpu and wasm). */
export function tfjsBenchPlan(workloads: readonly Workload[], backend: string): { workloads: Workload[]; skipped: { name: string; reason: string }[] } {
  const cpuBackend = backend === 'wasm' || backend === 'cpu';
  return {
    workloads: workloads.filter((w) => !(cpuBackend && w.gpuOnly)),
    skipped: workloads.filter((w) => cpuBackend && w.gpuOnly).map((w) => ({ name: w.name, reason: GPU_ONLY_SKIP_REASON })),
  };
}

/** UCM-sized vocabulary and noun classes (what `s2cpnet prepare` gives on UCM-captions). */
export const VOCAB = 274;
export const CLASSES = 91;
/** Caption length of the training workloads: `<start>` + 19 words + `<end>` (T = 20 decoder inputs). */
const CAPTION_TOKENS = 21;

function variablesOf(layer: { trainableWeights: unknown[] }): tf.Variable[] {
  return layer.trainableWeights.map((w) => (w as { val: tf.Variable }).val);
}

/**
 * A forward+backward pass over `variables` of `loss(part)`, summed over `parts` micro-batches with the gradients
 * accumulated (what the trainer does to keep large batches under the 4 GiB wasm heap); results are read back.
 */
async function backward(loss: (part: number) => tf.Scalar, variables: tf.Variable[], parts = 1): Promise<void> {
  let total: tf.NamedTensorMap | null = null;
  for (let part = 0; part < parts; part++) {
    const { value, grads } = tf.variableGrads(() => loss(part), variables);
    await value.data();
    value.dispose();
    if (total === null) total = grads;
    else {
      const sum: tf.NamedTensorMap = {};
      for (const [name, g] of Object.entries(grads)) sum[name] = tf.add(total[name]!, g);
      tf.dispose([...Object.values(total), ...Object.values(grads)]);
      total = sum;
    }
  }
  for (const g of Object.values(total ?? {})) await g.data();
  tf.dispose(Object.values(total ?? {}));
}

/** Deterministic caption ids [rows, T]: `<start>`=1, words 4..V-1, `<end>`=2, no padding. */
function captionIds(rows: number, tokens: number, vocab: number): Int32Array {
  const ids = new Int32Array(rows * tokens);
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < tokens; t++) {
      ids[r * tokens + t] = t === 0 ? 1 : t === tokens - 1 ? 2 : 4 + ((r * 131 + t * 7919) % (vocab - 4));
    }
  }
  return ids;
}

function multiHot(rows: number, classes: number): Float32Array {
  return new Float32Array(rows * classes).map((_, i) => ((i * 2654435761) % 97 < 6 ? 1 : 0));
}

export type BackboneKind = 'resnet50' | 'mobilenet';

/** The seeded backbone of the `resnet50.*` / `mobilenet.*` workloads, its weights built (shared with `--runtime onnx`). */
export function benchBackbone(kind: BackboneKind): ReturnType<typeof createEncoder> {
  const encoder = createEncoder(
    kind === 'resnet50'
      ? { type: 'resnet50', inputSize: 224, grid: 'native', freeze: 'none', seed: 1 }
      : { type: 'mobilenet-v1', width: 0.75, inputSize: 224, grid: 'native', freeze: 'none', seed: 1 },
  );
  tf.dispose(tf.tidy(() => encoder.encode(tf.zeros([1, 224, 224, 3]) as tf.Tensor4D, { training: false }))); // builds the weights
  return encoder;
}

/** The seeded input pixels of the backbone workloads, [batch, 224, 224, 3]. */
export function benchBackbonePixels(batch: number): tf.Tensor4D {
  return tf.randomNormal([batch, 224, 224, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
}

function backboneWorkload(kind: BackboneKind, mode: 'forward' | 'train', batch: number): Workload {
  const label = kind === 'resnet50' ? 'ResNet50' : 'MobileNetV1-0.75';
  // ResNet50 training at batch 8 in one pass needs more than the 4 GiB wasm heap: 2 micro-batches of 4.
  const parts = kind === 'resnet50' && mode === 'train' && batch > 4 ? batch / 4 : 1;
  const micro = batch / parts;
  return {
    name: `${kind}.${mode}.b${batch}`,
    description: `${label} trunk, 224x224, batch ${batch}, ${mode === 'forward' ? 'inference' : `forward+backward of all weights (batch-norm in training mode)${parts > 1 ? `, ${parts} accumulated micro-batches of ${micro}` : ''}`}`,
    units: { count: 1, name: 'batch' },
    heavy: kind === 'resnet50' && mode === 'train',
    countFlops: true,
    async prepare() {
      const encoder = benchBackbone(kind);
      const x = benchBackbonePixels(batch);
      const variables = variablesOf(encoder);
      return {
        async run() {
          if (mode === 'forward') {
            const y = tf.tidy(() => encoder.encode(x, { training: false }));
            await y.data();
            y.dispose();
          } else {
            await backward(
              (part) => tf.div(tf.mean(tf.square(encoder.encode(parts === 1 ? x : (tf.slice(x, [part * micro, 0, 0, 0], [micro, 224, 224, 3]) as tf.Tensor4D), { training: true }))), parts) as tf.Scalar,
              variables,
              parts,
            );
          }
        },
        dispose() {
          x.dispose();
          encoder.dispose();
        },
      };
    },
  };
}

const cvffWorkload: Workload = {
  name: 'cvff.train.b8',
  description: 'CVFF at paper size (d 512, 3 units, 8 heads, 14x14 grid; views of 2048 and 512 channels), batch 8 as 4 accumulated micro-batches of 2 (batch 8 at once exceeds the 4 GiB wasm heap), forward+backward',
  units: { count: 1, name: 'batch' },
  heavy: true,
  countFlops: true,
  async prepare() {
    const fusion = createFusion({ type: 'cvff', imageChannels: 2048, maskChannels: 512, grid: 14, dim: 512, heads: 8, units: 3, ffnMultiplier: 4, dropout: 0.1, seed: 1 });
    const image = tf.randomNormal([8, 196, 2048], 0, 1, 'float32', 2) as tf.Tensor3D;
    const mask = tf.randomNormal([8, 196, 512], 0, 1, 'float32', 3) as tf.Tensor3D;
    tf.dispose(tf.tidy(() => fusion.fuse(tf.slice(image, [0, 0, 0], [1, 196, 2048]) as tf.Tensor3D, tf.slice(mask, [0, 0, 0], [1, 196, 512]) as tf.Tensor3D, { training: false })));
    const variables = variablesOf(fusion);
    let step = 0;
    return {
      run: () =>
        backward(
          (part) => {
            const slice = (t: tf.Tensor3D) => tf.slice(t, [part * 2, 0, 0], [2, t.shape[1], t.shape[2]]) as tf.Tensor3D;
            return tf.div(tf.mean(tf.square(fusion.fuse(slice(image), slice(mask), { training: true, dropoutSeed: ++step }))), 4) as tf.Scalar;
          },
          variables,
          4,
        ),
      dispose() {
        tf.dispose([image, mask]);
        fusion.dispose();
      },
    };
  },
};

const decoderWorkload: Workload = {
  name: 'decoder.train.b8x5',
  description: 'gated caption decoder at paper size (3 layers, d 512, 8 heads, vocab 274), 8 images x 5 captions, T 20, memory 196x1024, forward+backward',
  units: { count: 1, name: 'batch' },
  captionSamples: 40,
  countFlops: true,
  async prepare() {
    const decoder = createCaptionDecoder({ type: 'gated', vocabSize: VOCAB, memoryWidth: 1024, dim: 512, numLayers: 3, numHeads: 8, dropout: 0.1, maxLength: 32, seed: 1 });
    const memory = tf.randomNormal([8, 196, 1024], 0, 1, 'float32', 4) as tf.Tensor3D;
    const rows = tf.tensor2d(captionIds(40, CAPTION_TOKENS, VOCAB), [40, CAPTION_TOKENS], 'int32');
    const input = tf.slice(rows, [0, 0], [40, CAPTION_TOKENS - 1]) as tf.Tensor2D;
    const target = tf.slice(rows, [0, 1], [40, CAPTION_TOKENS - 1]) as tf.Tensor2D;
    tf.dispose(tf.tidy(() => decoder.forward(tf.slice(memory, [0, 0, 0], [1, 196, 1024]) as tf.Tensor3D, tf.slice(input, [0, 0], [1, 4]) as tf.Tensor2D, { training: false }).logits));
    const variables = variablesOf(decoder as unknown as { trainableWeights: unknown[] });
    let step = 0;
    return {
      run: () =>
        backward(() => {
          const { logits } = decoder.forward(memory, input, { training: true, captionsPerImage: 5, dropoutSeed: ++step } as never);
          return captionCrossEntropy(logits, target, 0);
        }, variables),
      dispose() {
        tf.dispose([memory, rows, input, target]);
        (decoder as unknown as { dispose(): void }).dispose();
      },
    };
  },
};

function trainStepWorkload(options: {
  name: string;
  twin?: string;
  description: string;
  preset: 's2cpnet' | 'lite';
  images: number;
  microBatch: number;
  heavy: boolean;
  gpuOnly?: boolean;
}): Workload {
  const captions = options.images * 5;
  return {
    name: options.name,
    ...(options.twin ? { twin: options.twin } : {}),
    description: options.description,
    units: { count: 1, name: 'step' },
    captionSamples: captions,
    heavy: options.heavy,
    ...(options.gpuOnly ? { gpuOnly: true } : {}),
    countFlops: true,
    async prepare() {
      const model = buildS2CPNet(presetConfig(options.preset), { vocabSize: VOCAB, numClasses: CLASSES });
      const variables = trainableVariables(model);
      const optimizer = new Adam({ learningRate: 1e-4, clipNorm: 5 });
      const b = options.images;
      const inputs: Record<string, tf.Tensor4D> =
        options.preset === 'lite'
          ? {
              imageFeatures: tf.randomNormal([b, 7, 7, 768], 0, 1, 'float32', 5) as tf.Tensor4D,
              maskFeatures: tf.randomNormal([b, 7, 7, 768], 0, 1, 'float32', 6) as tf.Tensor4D,
            }
          : {
              images: tf.randomNormal([b, 224, 224, 3], 0, 1, 'float32', 5) as tf.Tensor4D,
              masks: tf.randomNormal([b, 224, 224, 3], 0, 1, 'float32', 6) as tf.Tensor4D,
            };
      const ids = captionIds(captions, CAPTION_TOKENS, VOCAB);
      const categories = multiHot(b, CLASSES);
      let step = 0;
      return {
        async run() {
          await trainStep(model, variables, optimizer, {
            inputs: inputs as never,
            captions: ids,
            captionShape: [b, 5, CAPTION_TOKENS],
            categories,
            numClasses: CLASSES,
            microBatchSize: options.microBatch,
            dropoutSeed: ++step,
          });
          // the update is queued on GPU backends: wait for its last write before the clock stops
          await variables[variables.length - 1]!.variable.data();
        },
        dispose() {
          tf.dispose(Object.values(inputs));
          optimizer.dispose();
          model.dispose();
        },
      };
    },
  };
}

/** What the captioning workloads decode: 8 images, beam 3, exactly 25 words (shared with `--runtime onnx`). */
export const CAPTION_IMAGES = 8;
export const CAPTION_SEARCH = { beamSize: 3, maxLength: 25, minLength: 25 } as const;
/** Start and end ids of the captioning workloads; `<end>` is never chosen (minLength = maxLength). */
export const CAPTION_WORDS = { startId: 1, endId: 2, wordOf: (id: number) => `w${id}` };

export type CaptionPreset = 's2cpnet' | 'lite';

/** The model and seeded inputs of a captioning workload (random weights, seeded by the preset's config). */
export function captionSetup(preset: CaptionPreset): { model: S2CPNet; pixels: tf.Tensor4D; masks: tf.Tensor4D } {
  const model: S2CPNet = buildS2CPNet(presetConfig(preset), { vocabSize: VOCAB, numClasses: CLASSES });
  const pixels = tf.randomNormal([CAPTION_IMAGES, 224, 224, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
  const masks = tf.randomNormal([CAPTION_IMAGES, 224, 224, 3], 0, 1, 'float32', 8) as tf.Tensor4D;
  return { model, pixels, masks };
}

function captionWorkload(preset: CaptionPreset): Workload {
  const images = CAPTION_IMAGES;
  const name = preset === 's2cpnet' ? 'caption.beam3.paper' : 'caption.beam3.lite';
  return {
    name,
    description:
      preset === 's2cpnet'
        ? `paper preset inference: encode ${images} images + masks (ResNet50, 14x14), beam 3 with cached keys/values for exactly 25 words`
        : `lite preset inference from pixels: encode ${images} images + masks (MobileNetV1-0.75, 7x7), beam 3 with cached keys/values for exactly 25 words`,
    units: { count: images, name: 'image' },
    heavy: preset === 's2cpnet',
    countFlops: true,
    async prepare() {
      const { model, pixels, masks } = captionSetup(preset);
      const classNames = Array.from({ length: CLASSES }, (_, i) => `class${i}`);
      return {
        async run() {
          // minLength 25: <end> is never chosen, so every run decodes all 25 words (random weights would stop anywhere).
          const out = await captionBatchAsync(model, { images: pixels, masks }, CAPTION_WORDS, classNames, { ...CAPTION_SEARCH, returnAttention: false });
          if (out.length !== images || out.some((c) => c.tokens.length !== 25)) throw new Error(`${name}: expected 25 words per image`);
        },
        dispose() {
          tf.dispose([pixels, masks]);
          model.dispose();
        },
      };
    },
  };
}

const metricsWorkload: Workload = {
  name: 'metrics.score.10k',
  description: 'BLEU-1..4, METEOR, ROUGE_L and CIDEr of 10,000 synthetic captions against 5 references each (PTB tokenizer included)',
  units: { count: 10_000, name: 'image' },
  countFlops: false,
  async prepare() {
    let corpus: Record<string, number> = {};
    return {
      async run() {
        const result = runMetricsBenchmark({ images: 10_000, referencesPerImage: 5 });
        corpus = result.corpus as unknown as Record<string, number>;
        if (!(corpus['CIDEr']! > 0)) throw new Error('metrics.score.10k: expected a positive CIDEr');
      },
      dispose() {},
      extra: () => ({ CIDEr: corpus['CIDEr'] ?? 0 }),
    };
  },
};

/** Every workload, in the order they run. */
export function benchWorkloads(): Workload[] {
  return [
    backboneWorkload('resnet50', 'forward', 1),
    backboneWorkload('resnet50', 'forward', 8),
    backboneWorkload('resnet50', 'train', 8),
    backboneWorkload('mobilenet', 'forward', 1),
    backboneWorkload('mobilenet', 'forward', 8),
    backboneWorkload('mobilenet', 'train', 8),
    cvffWorkload,
    decoderWorkload,
    trainStepWorkload({
      name: 'lite.train.b16x5',
      description: 'lite preset training step on cached 7x7 MobileNet features: 16 images x 5 captions, d 256, Adam update',
      preset: 'lite',
      images: 16,
      microBatch: 16,
      heavy: false,
    }),
    trainStepWorkload({
      name: 's2cpnet.train.b2x5',
      twin: 's2cpnet.train.b8x5',
      description:
        'paper preset training step (ResNet50 fine-tuned from stage 2, both views, 14x14): 2 images x 5 captions as 2 micro-batches of 1 image ' +
        '(image and mask view in one backbone pass; larger micro-batches exceed the 4 GiB wasm heap), Adam update. Compare per caption sample.',
      preset: 's2cpnet',
      images: 2,
      microBatch: 1,
      heavy: true,
    }),
    trainStepWorkload({
      name: 's2cpnet.train.b8x5',
      description:
        'paper preset training step as the PyTorch twin runs it: 8 images x 5 captions in one pass (ResNet50 fine-tuned from stage 2, both views, 14x14), ' +
        'Adam update. GPU backends only (beyond the 4 GiB wasm heap).',
      preset: 's2cpnet',
      images: 8,
      microBatch: 8,
      heavy: true,
      gpuOnly: true,
    }),
    captionWorkload('s2cpnet'),
    captionWorkload('lite'),
    metricsWorkload,
  ];
}
