/** The splits a caption dataset is divided into. Karpathy's `restval` is read as `train`. */
export type Split = 'train' | 'val' | 'test';

export const SPLITS: readonly Split[] = ['train', 'val', 'test'];

/** Caption file layouts the loader understands. */
export type CaptionFormat = 'karpathy' | 'nwpu' | 'coco';

export const CAPTION_FORMATS: readonly CaptionFormat[] = ['karpathy', 'nwpu', 'coco'];

/** One caption: the text as written, and its tokens lower-cased with surrounding punctuation removed. */
export interface Caption {
  raw: string;
  tokens: string[];
}

/** One image of a caption dataset, whatever the source format. */
export interface DatasetImage {
  /**
   * Stable identifier: the image's path relative to the images folder, with `/` separators
   * (`12.tif`, `airplane/airplane_001.jpg`). Unique within a dataset.
   */
  id: string;
  /** Absolute path of the image file. */
  file: string;
  split: Split;
  captions: Caption[];
  /** Scene class when the source names one (NWPU-Captions keys images by class). */
  sceneClass?: string;
  /** The image's id in the source file (`imgid`, COCO `id`), kept for cross-reference. */
  sourceId?: number | string;
  /** Where the image's entry is in the caption file, e.g. `$.images[12]`; used in error messages. */
  jsonPath: string;
}

/** An entry of the caption file that was left out under `onError: 'skip'`. */
export interface SkippedItem {
  /** The file concerned (the caption file, an image or a mask). */
  file: string;
  /** JSON path of the entry in the caption file, when the problem is there. */
  jsonPath?: string;
  /** What was wrong: the message of the error that would otherwise have stopped the run. */
  reason: string;
}

/** A caption dataset in memory: images with their captions and split. */
export interface CaptionDataset {
  source: {
    /** Absolute path of the caption file. */
    file: string;
    format: CaptionFormat;
    /** The `dataset` field of a Karpathy file (UCM, Sydney, RSICD), when present. */
    name?: string;
  };
  /** Absolute path of the folder image paths are relative to. */
  imagesDir: string;
  images: DatasetImage[];
  /** Entries left out because they were malformed (only under `onError: 'skip'`). */
  skipped: SkippedItem[];
}

/** Whether to stop at the first bad item, or leave it out and record it. */
export type OnErrorPolicy = 'stop' | 'skip';
