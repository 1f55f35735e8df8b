/**
 * The inference workloads of `s2cpnet bench --runtime onnx`: the same names and the same work as the tfjs workloads
 * (same batch sizes, input sizes, model configs, beam width, caption length). Each builds the same seeded tfjs model
 * as its tfjs twin, exports it with `@s2cpnet/runtime-onnx` and times it in onnxruntime-node. The export, the
 * session creation and the copy of the inputs to plain arrays happen in `prepare`: setup, not timed.
 * Training workloads are reported as skipped: ONNX Runtime has no training API in Node.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { OnnxExportManifest } from '@s2cpnet/runtime-onnx';
import type { RuntimeOnnxPackage } from '../commands/runtime-package';
import {
  CAPTION_IMAGES,
  CAPTION_SEARCH,
  CAPTION_WORDS,
  CLASSES,
  VOCAB,
  benchBackbone,
  benchBackbonePixels,
  captionSetup,
  type BackboneKind,
  type CaptionPreset,
  type PreparedWorkload,
  type Workload,
} from './workloads';

/** A workload `--runtime onnx` does not run, and why. */
export interface SkippedWorkload {
  name: string;
  reason: string;
}

export const ONNX_SKIP_REASONS = {
  training: "training workload: ONNX Runtime has no training API in Node (onnxruntime-web's ./training export ended with 1.19.2)",
  noModel: 'no model: metric scoring is plain JavaScript, the same under either runtime (run it with --runtime tfjs)',
  noExport: 'no ONNX version of this workload yet',
} as const;

/** ONNX Runtime settings of the workloads. */
export interface OnnxBenchSettings {
  /** Intra-op threads of every session (inter-op 1). */
  threads: number;
}

type OnnxSession = Awaited<ReturnType<RuntimeOnnxPackage['createOnnxSession']>>;

/** The ONNX twin of a tfjs workload: same name, description, units and repetitions; FLOPs are not profiled. */
function twinOf(workload: Workload, prepare: () => Promise<PreparedWorkload>): Workload {
  return {
    name: workload.name,
    ...(workload.twin ? { twin: workload.twin } : {}),
    description: workload.description,
    units: workload.units,
    ...(workload.heavy ? { heavy: true } : {}),
    countFlops: false,
    prepare,
  };
}

/** The backbone alone as an ONNX graph: `pixels` [batch,224,224,3] -> `features` [batch,G,G,C]. */
function backboneWorkload(workload: Workload, kind: BackboneKind, batch: number, pkg: RuntimeOnnxPackage, settings: OnnxBenchSettings): Workload {
  return twinOf(workload, async () => {
    const encoder = benchBackbone(kind);
    const pixelsTensor = benchBackbonePixels(batch);
    let bytes: Uint8Array;
    let pixels: Float32Array;
    let featureShape: number[];
    try {
      pkg.registerBuiltinExporters();
      const g = new pkg.OnnxGraph(`${kind}-trunk`);
      const input = g.input('pixels', 'float32', ['batch', 224, 224, 3]);
      const features = g.scope('encoder', () => pkg.exporterFor('encoder', encoder)(g, encoder, input));
      featureShape = [batch, encoder.gridSize, encoder.gridSize, encoder.outputChannels];
      g.output(features, 'features', 'float32', ['batch', ...featureShape.slice(1)]);
      bytes = g.serialize();
      pixels = Float32Array.from(pixelsTensor.dataSync() as Float32Array);
    } finally {
      pixelsTensor.dispose();
      encoder.dispose();
    }
    const ort = await pkg.importOnnxRuntime();
    const session: OnnxSession = await pkg.createOnnxSession(bytes, { threads: settings.threads });
    const feeds = { pixels: new ort.Tensor('float32', pixels, [batch, 224, 224, 3]) };
    return {
      async run() {
        const out = await session.run(feeds);
        const dims = out['features']?.dims ?? [];
        if (dims.join() !== featureShape.join()) throw new Error(`${workload.name}: expected features ${featureShape.join('x')}, found ${dims.join('x')}`);
      },
      dispose: () => session.release(),
    };
  });
}

function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A vocabulary of `VOCAB` ids whose words are `CAPTION_WORDS.wordOf(id)` (special tokens first, as the format wants). */
function benchVocabularyJson(): string {
  const words = ['<pad>', '<start>', '<end>', '<unk>', ...Array.from({ length: VOCAB - 4 }, (_, i) => CAPTION_WORDS.wordOf(i + 4))];
  return JSON.stringify({
    format: 's2cpnet-vocabulary',
    version: 1,
    settings: { minWordFreq: 1, maxCaptionWords: CAPTION_SEARCH.maxLength, lowerCase: true, countedOn: 'train' },
    words,
    trainCounts: words.map(() => 0),
  });
}

/**
 * Writes the export folder of an in-memory model (what `exportOnnx` writes for a checkpoint, with a stand-in
 * vocabulary and noun list) to a temporary folder and returns it.
 */
function writeBenchExport(pkg: RuntimeOnnxPackage, model: ReturnType<typeof captionSetup>['model']): string {
  const graphs = pkg.buildOnnxGraphs(model);
  const files = pkg.ONNX_FILES;
  const contents: Record<string, Uint8Array | string> = {
    [files.encoder]: graphs.encoder.serialize({ docString: `bench: encoder of ${model.config.name}` }),
    [files.decoderStep]: graphs.decoderStep.serialize({ docString: `bench: decoder step of ${model.config.name}` }),
    [files.vocabulary]: benchVocabularyJson(),
    [files.nouns]: JSON.stringify({ classes: Array.from({ length: CLASSES }, (_, i) => `class${i}`) }),
  };
  const manifest: OnnxExportManifest = {
    format: pkg.ONNX_EXPORT_FORMAT,
    version: pkg.ONNX_EXPORT_VERSION,
    created: new Date().toISOString(),
    name: model.config.name,
    config: model.config,
    inputSize: model.inputSize,
    normalization: model.encoder.normalization === 'symmetric' ? 'mobilenet' : 'resnet',
    useMaskView: model.config.useMaskView,
    maskSize: model.config.useMaskView ? 224 : null,
    masks: null,
    gridSize: model.gridSize,
    memoryTokens: graphs.memoryTokens,
    numClasses: model.numClasses,
    hasCategoryHead: model.categoryHead !== null,
    decoder: graphs.decoder,
    weights: 'float32',
    files: Object.fromEntries(Object.entries(contents).map(([name, data]) => [name, { bytes: typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength, sha256: sha256(data) }])),
    source: { checkpoint: 'bench (random weights)' },
  };
  const dir = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-bench-onnx-'));
  try {
    for (const [name, data] of Object.entries(contents)) writeFileSync(path.join(dir, name), data);
    writeFileSync(path.join(dir, files.manifest), JSON.stringify(manifest));
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return dir;
}

/** Captioning through `OnnxCaptionModel.captionBatch`: the encoder graph, then beam 3 over the decoder-step graph. */
function captionWorkload(workload: Workload, preset: CaptionPreset, pkg: RuntimeOnnxPackage, settings: OnnxBenchSettings): Workload {
  return twinOf(workload, async () => {
    const { model, pixels, masks } = captionSetup(preset);
    let dir: string;
    let pixelData: Float32Array;
    let maskData: Float32Array | null;
    try {
      dir = writeBenchExport(pkg, model);
      pixelData = Float32Array.from(pixels.dataSync() as Float32Array);
      maskData = model.config.useMaskView ? Float32Array.from(masks.dataSync() as Float32Array) : null;
    } finally {
      tf.dispose([pixels, masks]);
      model.dispose();
    }
    let onnx: Awaited<ReturnType<RuntimeOnnxPackage['OnnxCaptionModel']['load']>>;
    try {
      onnx = await pkg.OnnxCaptionModel.load(dir, { threads: settings.threads });
    } finally {
      rmSync(dir, { recursive: true, force: true }); // the sessions hold the graphs now
    }
    // The tfjs workload's word table has no <pad> or <unk>, so its search suppresses only <start>: the same here.
    const options = { ...CAPTION_SEARCH, returnAttention: false, suppressIds: [CAPTION_WORDS.startId] };
    return {
      async run() {
        const out = await onnx.captionBatch(pixelData, maskData, CAPTION_IMAGES, options);
        if (out.length !== CAPTION_IMAGES || out.some((c) => c.caption.split(' ').length !== CAPTION_SEARCH.maxLength)) {
          throw new Error(`${workload.name}: expected ${CAPTION_SEARCH.maxLength} words per image`);
        }
      },
      dispose: () => onnx.dispose(),
    };
  });
}

/**
 * Splits tfjs workloads into their ONNX twins (run at `settings.threads` intra-op threads) and the ones
 * `--runtime onnx` skips, with the reason.
 */
export function onnxBenchPlan(workloads: readonly Workload[], pkg: RuntimeOnnxPackage, settings: OnnxBenchSettings): { workloads: Workload[]; skipped: SkippedWorkload[] } {
  const planned: Workload[] = [];
  const skipped: SkippedWorkload[] = [];
  for (const workload of workloads) {
    const backbone = /^(resnet50|mobilenet)\.forward\.b(\d+)$/.exec(workload.name);
    if (backbone) planned.push(backboneWorkload(workload, backbone[1] as BackboneKind, Number(backbone[2]), pkg, settings));
    else if (workload.name === 'caption.beam3.paper') planned.push(captionWorkload(workload, 's2cpnet', pkg, settings));
    else if (workload.name === 'caption.beam3.lite') planned.push(captionWorkload(workload, 'lite', pkg, settings));
    else if (/\.train\./.test(workload.name)) skipped.push({ name: workload.name, reason: ONNX_SKIP_REASONS.training });
    else if (!workload.countFlops) skipped.push({ name: workload.name, reason: ONNX_SKIP_REASONS.noModel });
    else skipped.push({ name: workload.name, reason: ONNX_SKIP_REASONS.noExport });
  }
  return { workloads: planned, skipped };
}

/** onnxruntime-node's version, as the runtime reports it. */
export async function onnxRuntimeVersion(pkg: RuntimeOnnxPackage): Promise<string> {
  const ort = await pkg.importOnnxRuntime();
  const versions = (ort.env as { versions?: Record<string, string> }).versions ?? {};
  return versions['node'] ?? versions['common'] ?? 'unknown';
}
