/** Types shared by every scorer. */

/** An image id as it appears in COCO-style files: a number or a string. */
export type ImageId = string | number;

/** One image to score: the caption a model produced and the human references for that image. */
export interface CaptionItem {
  imageId: ImageId;
  /** The model's caption. May be empty: the toolkit scores an empty caption (mostly as 0). */
  candidate: string;
  /** At least one reference caption. */
  references: readonly string[];
}

/** The metric families the toolkit reports. `Bleu` stands for Bleu_1..Bleu_4. */
export type MetricName = 'Bleu' | 'METEOR' | 'ROUGE_L' | 'CIDEr';

/** All metric families, in the toolkit's reporting order. */
export const ALL_METRICS: readonly MetricName[] = ['Bleu', 'METEOR', 'ROUGE_L', 'CIDEr'];

/** Scores with the toolkit's key names, plus Sm. A key is present when its metric was computed. */
export interface CaptionScores {
  Bleu_1?: number;
  Bleu_2?: number;
  Bleu_3?: number;
  Bleu_4?: number;
  METEOR?: number;
  ROUGE_L?: number;
  CIDEr?: number;
  /** mean(Bleu_4, METEOR, ROUGE_L, CIDEr); present only when all four were computed. */
  Sm?: number;
}

/** The score keys in output order. */
export const SCORE_KEYS: readonly (keyof CaptionScores)[] = [
  'Bleu_1',
  'Bleu_2',
  'Bleu_3',
  'Bleu_4',
  'METEOR',
  'ROUGE_L',
  'CIDEr',
  'Sm',
];
