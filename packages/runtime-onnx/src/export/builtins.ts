import { builtinCaptionDecoderExporters } from './caption-decoder';
import { builtinCategoryHeadExporters, builtinEnhancerExporters, builtinFusionExporters } from './components';
import { builtinEncoderExporters } from './encoder';
import { registerOnnxExporter, type ExporterMap, type OnnxComponentKind } from './registry';

let registered = false;

/** Registers the exporters of every component that ships with S²CPNet (idempotent; exports call it). */
export function registerBuiltinExporters(): void {
  if (registered) return;
  registered = true;
  const add = <K extends OnnxComponentKind>(kind: K, map: Record<string, ExporterMap[K]>) => {
    for (const [className, exporter] of Object.entries(map)) registerOnnxExporter(kind, className, exporter);
  };
  add('encoder', builtinEncoderExporters);
  add('semanticEnhancer', builtinEnhancerExporters.semanticEnhancer);
  add('spatialEnhancer', builtinEnhancerExporters.spatialEnhancer);
  add('fusion', builtinFusionExporters);
  add('categoryHead', builtinCategoryHeadExporters);
  add('captionDecoder', builtinCaptionDecoderExporters);
}
