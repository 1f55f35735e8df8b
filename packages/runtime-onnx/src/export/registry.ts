import type { OnnxGraph, Value } from '../graph';

/** The parts of S²CPNet an ONNX exporter is looked up for. */
export type OnnxComponentKind = 'encoder' | 'semanticEnhancer' | 'spatialEnhancer' | 'fusion' | 'categoryHead' | 'captionDecoder';

/** Encoder: normalised pixels NHWC [B,S,S,3] -> backbone features NHWC [B,G,G,C] (inference mode). */
export type EncoderExporter<L = any> = (g: OnnxGraph, layer: L, pixels: Value) => Value;

/** Enhancer (semantic or spatial): features NHWC [B,G,G,C] -> enhanced features NHWC [B,G,G,C'] (inference mode). */
export type EnhancerExporter<L = any> = (g: OnnxGraph, layer: L, features: Value) => Value;

/** Fusion: image tokens [B,N,C1] and mask tokens [B,N,C2] (null for single-view) -> memory [B,M,D]. */
export type FusionExporter<L = any> = (g: OnnxGraph, layer: L, imageTokens: Value, maskTokens: Value | null) => Value;

/** Category head: memory [B,M,D] -> noun logits [B,K] (the values `categoryHead.logits(memory)` returns). */
export type CategoryHeadExporter<L = any> = (g: OnnxGraph, layer: L, memory: Value) => Value;

/** Inputs of one exported decoding step. R is the number of hypothesis rows, H heads, P the past length. */
export interface DecoderStepInputs {
  /** [R] int64: the word fed at this step. */
  tokens: Value;
  /** [1] int64: its position (the number of words fed before it). */
  position: Value;
  /** Per layer, the memory's cross-attention keys/values [R,H,M,headDim] (already one per row). */
  memoryKeys: Value[];
  memoryValues: Value[];
  /** Per layer, the self-attention keys/values of the words fed so far [R,H,P,headDim] (P may be 0). */
  pastKeys: Value[];
  pastValues: Value[];
}

export interface DecoderStepOutputs {
  /** [R,V] next-word logits. */
  logits: Value;
  /** [R,M] the last layer's cross-attention averaged over heads. */
  attention: Value;
  /** Per layer, [R,H,P+1,headDim]. */
  presentKeys: Value[];
  presentValues: Value[];
}

/** Caption decoder: the memory's keys/values once per image, and one step of decoding over a key/value cache. */
export interface CaptionDecoderExporter<L = any> {
  /** Shapes the runtime needs to build empty caches. */
  describe(layer: L): { numLayers: number; numHeads: number; headDim: number; vocabSize: number; maxLength: number };
  /** memory [B,M,D] -> per layer keys and values [B,H,M,headDim] (as `initState` computes them). */
  memoryKeyValues(g: OnnxGraph, layer: L, memory: Value): { keys: Value[]; values: Value[] };
  /** One step, as `step` computes it (with `returnAttention`). */
  step(g: OnnxGraph, layer: L, inputs: DecoderStepInputs): DecoderStepOutputs;
}

export interface ExporterMap {
  encoder: EncoderExporter;
  semanticEnhancer: EnhancerExporter;
  spatialEnhancer: EnhancerExporter;
  fusion: FusionExporter;
  categoryHead: CategoryHeadExporter;
  captionDecoder: CaptionDecoderExporter;
}

/**
 * The hook a component a user adds (a fusion strategy from their own factory, say) implements to be exportable:
 * a method `exportOnnx` with the signature of its kind's exporter, minus the `layer` argument; for a caption
 * decoder, an `onnxExporter` property holding a `CaptionDecoderExporter`.
 *
 * @example
 * ```ts
 * class MaxFusion extends S2Layer {
 *   exportOnnx(g: OnnxGraph, imageTokens: Value, maskTokens: Value | null): Value {
 *     return g.op('Max', [imageTokens, maskTokens!]);
 *   }
 * }
 * ```
 */
export interface OnnxExportable {
  exportOnnx?: (g: OnnxGraph, ...inputs: any[]) => Value;
  onnxExporter?: CaptionDecoderExporter;
}

const registry: { [K in OnnxComponentKind]: Map<string, ExporterMap[K]> } = {
  encoder: new Map(),
  semanticEnhancer: new Map(),
  spatialEnhancer: new Map(),
  fusion: new Map(),
  categoryHead: new Map(),
  captionDecoder: new Map(),
};

/** Registers the exporter of a component class (by its tfjs class name, `getClassName()`). */
export function registerOnnxExporter<K extends OnnxComponentKind>(kind: K, className: string, exporter: ExporterMap[K]): void {
  (registry[kind] as Map<string, ExporterMap[K]>).set(className, exporter);
}

/** Thrown when a component has no ONNX exporter. */
export class NoOnnxExportError extends Error {
  constructor(
    readonly kind: OnnxComponentKind,
    readonly type: string,
  ) {
    super(
      `no ONNX export for ${kind} type "${type}": give the layer an exportOnnx(graph, ...inputs) method ` +
        `(a caption decoder: an onnxExporter property) or call registerOnnxExporter('${kind}', '${type}', exporter) ` +
        `before exporting (see @s2cpnet/runtime-onnx's README, "Exporting your own components")`,
    );
    this.name = 'NoOnnxExportError';
  }
}

function classNameOf(layer: unknown): string {
  const l = layer as { getClassName?: () => string; constructor?: { className?: string; name?: string } };
  return l.getClassName?.() ?? l.constructor?.className ?? l.constructor?.name ?? typeof layer;
}

/** The exporter for `layer`: its own hook first, then the registry; throws `NoOnnxExportError` when there is none. */
export function exporterFor<K extends OnnxComponentKind>(kind: K, layer: unknown): ExporterMap[K] {
  const hook = layer as OnnxExportable;
  if (kind === 'captionDecoder' && hook.onnxExporter) return hook.onnxExporter as ExporterMap[K];
  if (kind !== 'captionDecoder' && typeof hook.exportOnnx === 'function') {
    return ((g: OnnxGraph, _layer: unknown, ...inputs: unknown[]) => hook.exportOnnx!.call(layer, g, ...inputs)) as unknown as ExporterMap[K];
  }
  const found = registry[kind].get(classNameOf(layer));
  if (!found) throw new NoOnnxExportError(kind, classNameOf(layer));
  return found as ExporterMap[K];
}
