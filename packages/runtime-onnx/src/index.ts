/**
 * @s2cpnet/runtime-onnx: export S²CPNet checkpoints to ONNX from TypeScript (no Python) and caption with ONNX
 * Runtime at native speed, with the same greedy and true beam search as the tfjs runtime.
 *
 * @example
 * ```ts
 * import { exportOnnx, loadOnnxCaptioner } from '@s2cpnet/runtime-onnx';
 * import { loadCheckpoint } from '@s2cpnet/model';
 * await exportOnnx(await loadCheckpoint('runs/ucm/best'), 'runs/ucm/onnx');
 * const captioner = await loadOnnxCaptioner('runs/ucm/onnx');
 * console.log(await captioner.caption('airport.tif'));
 * ```
 * @module
 */
export {
  OnnxGraph,
  float,
  floats,
  OPSET,
  IR_VERSION,
  type AttributeValue,
  type Dim,
  type FloatAttribute,
  type FloatsAttribute,
  type InitializerInfo,
  type OnnxDtype,
  type SerializeOptions,
  type Value,
  type ValueReader,
} from './graph';
export {
  NoOnnxExportError,
  exporterFor,
  registerOnnxExporter,
  type CaptionDecoderExporter,
  type CategoryHeadExporter,
  type DecoderStepInputs,
  type DecoderStepOutputs,
  type EncoderExporter,
  type EnhancerExporter,
  type ExporterMap,
  type FusionExporter,
  type OnnxComponentKind,
  type OnnxExportable,
} from './export/registry';
export { registerBuiltinExporters } from './export/builtins';
export {
  IO as ONNX_IO,
  ONNX_EXPORT_FORMAT,
  ONNX_EXPORT_VERSION,
  ONNX_FILES,
  buildOnnxGraphs,
  exportOnnx,
  writeOnnxExport,
  type OnnxExportInfo,
  type ExportOnnxOptions,
  type ExportOnnxResult,
  type OnnxExportManifest,
  type OnnxGraphs,
  type OnnxWeightOptions,
} from './export/export';
export {
  DEFAULT_GROUP_SIZE,
  DEFAULT_MIN_QUANTIZED_SIZE,
  quantizeWeights,
  type GroupLayout,
  type QuantizeReport,
  type QuantizeWeightsOptions,
  type QuantizedTensorReport,
} from './export/quantize';
export {
  ORT_PROVIDERS,
  OnnxCaptionModel,
  createOnnxSession,
  findOnnxExport,
  haveOnnxRuntime,
  importOnnxRuntime,
  loadOnnxCaptioner,
  type EncodedBatch,
  type LoadOnnxCaptionerOptions,
  type OnnxCaptioner,
  type OnnxSessionOptions,
  type OrtProvider,
} from './runtime';
export * from './sam';
export { backboneGraph, onnxFeatureExtractor } from './features';
