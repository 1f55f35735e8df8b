import type { FeatureExtractor, S2CPNet } from '@s2cpnet/model';
import { registerBuiltinExporters } from './export/builtins';
import { exporterFor } from './export/registry';
import { OnnxGraph } from './graph';
import { createOnnxSession, importOnnxRuntime, type OnnxSessionOptions } from './runtime';

/** The backbone of `model` alone as an ONNX graph: `pixels` [batch,S,S,3] normalised -> `features` [batch,G,G,C]. */
export function backboneGraph(model: S2CPNet): OnnxGraph {
  registerBuiltinExporters();
  const g = new OnnxGraph('s2cpnet-backbone');
  const s = model.inputSize;
  const pixels = g.input('pixels', 'float32', ['batch', s, s, 3]);
  const features = g.scope('encoder', () => exporterFor('encoder', model.encoder)(g, model.encoder, pixels));
  g.output(features, 'features', 'float32', ['batch', model.gridSize, model.gridSize, model.encoder.outputChannels]);
  return g;
}

/**
 * A feature extractor for training's feature cache (`train({ featureExtractor })`, CLI `train --feature-runtime`):
 * the model's frozen backbone exported in memory and run in ONNX Runtime. The features equal the tfjs backbone's to
 * float32 rounding (the encoder exporter's tests bound the difference by 1e-4 relative).
 *
 * @example
 * ```ts
 * await train({ ...options, featureExtractor: (model) => onnxFeatureExtractor(model, { threads: 1 }) });
 * ```
 */
export async function onnxFeatureExtractor(model: S2CPNet, options: OnnxSessionOptions = {}): Promise<FeatureExtractor> {
  const ort = await importOnnxRuntime();
  const session = await createOnnxSession(backboneGraph(model).serialize(), options);
  const s = model.inputSize;
  const threads = options.threads ?? (Number(process.env.S2CPNET_THREADS) || undefined);
  return {
    name: `onnxruntime-${options.provider ?? 'cpu'}${threads ? ` (${threads} thread${threads === 1 ? '' : 's'})` : ''}`,
    async compute(pixels, count) {
      const out = await session.run({ pixels: new ort.Tensor('float32', pixels, [count, s, s, 3]) });
      const features = out.features!;
      const data = features.data as Float32Array;
      const shape = features.dims.slice(1) as number[];
      const per = data.length / count;
      return Array.from({ length: count }, (_, i) => ({ shape, data: data.slice(i * per, (i + 1) * per) }));
    },
    dispose: () => session.release(),
  };
}
