/**
 * The ablation presets of the paper (Tables IV-VII; spec section 8) as data: which parts each variant switches
 * on. `buildS2CPNet` turns a preset into a full config; the table is also what `s2cpnet presets` prints.
 */

export const PRESET_NAMES = [
  'baseline1',
  'baseline2',
  'model2a',
  'model2b',
  'model2',
  'model3',
  'model4a',
  'model4b',
  's2cpnet',
  'lite',
] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export type FusionType = 'single-view' | 'add' | 'concat' | 'cvff';
export type CaptionDecoderType = 'plain' | 'gated';

/** What a preset switches on. */
export interface PresetSwitches {
  /** Reads the "potential target" mask view. */
  masks: boolean;
  /** Semantic enhancer on the image view (SSFE, semantic half). */
  semanticEnhancer: boolean;
  /** Spatial enhancer on the mask view (SSFE, spatial half). */
  spatialEnhancer: boolean;
  fusion: FusionType;
  /** Multi-target category (noun) task. */
  categoryTask: boolean;
  captionDecoder: CaptionDecoderType;
  /** Where the variant comes from. */
  description: string;
}

export const PRESETS: Readonly<Record<PresetName, PresetSwitches>> = {
  baseline1: { masks: false, semanticEnhancer: false, spatialEnhancer: false, fusion: 'single-view', categoryTask: false, captionDecoder: 'plain', description: 'Baseline1: image only, plain transformer decoder' },
  baseline2: { masks: false, semanticEnhancer: false, spatialEnhancer: false, fusion: 'single-view', categoryTask: false, captionDecoder: 'gated', description: 'Baseline2 (= Model1): image only, gated decoder' },
  model2a: { masks: true, semanticEnhancer: false, spatialEnhancer: false, fusion: 'add', categoryTask: false, captionDecoder: 'gated', description: 'Model2-A: both views fused by addition' },
  model2b: { masks: true, semanticEnhancer: false, spatialEnhancer: false, fusion: 'concat', categoryTask: false, captionDecoder: 'gated', description: 'Model2-B: both views fused by concatenation' },
  model2: { masks: true, semanticEnhancer: false, spatialEnhancer: false, fusion: 'cvff', categoryTask: false, captionDecoder: 'gated', description: 'Model2: both views fused by CVFF' },
  model3: { masks: true, semanticEnhancer: false, spatialEnhancer: false, fusion: 'cvff', categoryTask: true, captionDecoder: 'gated', description: 'Model3: Model2 + multi-target category task' },
  model4a: { masks: true, semanticEnhancer: true, spatialEnhancer: false, fusion: 'cvff', categoryTask: true, captionDecoder: 'gated', description: 'Model4-A: Model3 + semantic enhancer' },
  model4b: { masks: true, semanticEnhancer: false, spatialEnhancer: true, fusion: 'cvff', categoryTask: true, captionDecoder: 'gated', description: 'Model4-B: Model3 + spatial enhancer' },
  s2cpnet: { masks: true, semanticEnhancer: true, spatialEnhancer: true, fusion: 'cvff', categoryTask: true, captionDecoder: 'gated', description: 'S²CPNet: both enhancers, CVFF, category task, gated decoder' },
  lite: { masks: true, semanticEnhancer: true, spatialEnhancer: true, fusion: 'cvff', categoryTask: true, captionDecoder: 'gated', description: 'S²CPNet sized for CPU training: pretrained MobileNetV1, 7x7 grid, smaller widths' },
};

/** Scores the paper reports on the UCM test split (BLEU-4, METEOR, ROUGE_L, CIDEr), where it reports them. */
export const PAPER_UCM_TEST_SCORES: Readonly<Partial<Record<PresetName, { Bleu_4: number; METEOR: number; ROUGE_L: number; CIDEr: number }>>> = {
  baseline1: { Bleu_4: 0.6942, METEOR: 0.4501, ROUGE_L: 0.8026, CIDEr: 3.1708 },
  model2: { Bleu_4: 0.7208, METEOR: 0.4629, ROUGE_L: 0.8125, CIDEr: 3.4428 },
  model3: { Bleu_4: 0.7332, METEOR: 0.4662, ROUGE_L: 0.8018, CIDEr: 3.4063 },
  model4b: { Bleu_4: 0.7579, METEOR: 0.4752, ROUGE_L: 0.8264, CIDEr: 3.4396 },
  s2cpnet: { Bleu_4: 0.7302, METEOR: 0.4822, ROUGE_L: 0.8345, CIDEr: 3.5482 },
};

export function isPresetName(name: string): name is PresetName {
  return (PRESET_NAMES as readonly string[]).includes(name);
}
