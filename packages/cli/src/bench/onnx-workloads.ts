/**
 * The inference workloads of `s2cpnet bench --runtime onnx`: the same names and the same work as the tfjs workloads
 * (same batch sizes, input sizes, model configs, beam width, caption length). Each builds the same seeded tfjs model
 * as its tfjs twin, exports it with `@s2cpnet/runtime-onnx` and times it in onnxruntime-node. The export, the
 * session creation and the copy of the inputs to plain arrays happen in `prepare`: setup, not timed.
 * Training workloads are reported as skipped: ONNX Runtime has no training API in Node.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
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

/** A vocabulary of `VOCAB` ids whose words are `CAPTION_WORDS.wordOf(id)` (special tokens first, as the format wants). */
function benchVocabulary(): { toJSON(): unknown } {
  const words = ['<pad>', '<start>', '<end>', '<unk>', ...Array.from({ length: VOCAB - 4 }, (_, i) => CAPTION_WORDS.wordOf(i + 4))];
  const json = {
    format: 's2cpnet-vocabulary',
    version: 1,
    settings: { minWordFreq: 1, maxCaptionWords: CAPTION_SEARCH.maxLength, lowerCase: true, countedOn: 'train' },
    words,
    trainCounts: words.map(() => 0),
  };
  return { toJSON: () => json };
}

/**
 * Writes the export folder of an in-memory model (what `exportOnnx` writes for a checkpoint, with a stand-in
 * vocabulary and noun list) to a temporary folder and returns that folder.
 */
async function writeBenchExport(pkg: RuntimeOnnxPackage, model: ReturnType<typeof captionSetup>['model']): Promise<string> {
  const parent = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-bench-onnx-'));
  try {
    const info = {
      vocabulary: benchVocabulary(),
      classNames: Array.from({ length: CLASSES }, (_, i) => `class${i}`),
      maskSize: 224,
      source: 'bench (random weights)',
    };
    await pkg.writeOnnxExport(model, info, path.join(parent, 'export'));
  } catch (error) {
    rmSync(parent, { recursive: true, force: true });
    throw error;
  }
  return parent;
}

/** Captioning through `OnnxCaptionModel.captionBatch`: the encoder graph, then beam 3 over the decoder-step graph. */
function captionWorkload(workload: Workload, preset: CaptionPreset, pkg: RuntimeOnnxPackage, settings: OnnxBenchSettings): Workload {
  return twinOf(workload, async () => {
    const { model, pixels, masks } = captionSetup(preset);
    let dir: string;
    let pixelData: Float32Array;
    let maskData: Float32Array | null;
    try {
      dir = await writeBenchExport(pkg, model);
      pixelData = Float32Array.from(pixels.dataSync() as Float32Array);
      maskData = model.config.useMaskView ? Float32Array.from(masks.dataSync() as Float32Array) : null;
    } finally {
      tf.dispose([pixels, masks]);
      model.dispose();
    }
    let onnx: Awaited<ReturnType<RuntimeOnnxPackage['OnnxCaptionModel']['load']>>;
    try {
      onnx = await pkg.OnnxCaptionModel.load(path.join(dir, 'export'), { threads: settings.threads });
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
