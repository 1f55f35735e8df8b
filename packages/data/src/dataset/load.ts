import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { InputError, S2CPNetError } from '@s2cpnet/core';
import { describeFsError } from '../image/codec';
import { describeValue, resolveImagePath } from './paths';
import { normalizeTokens, tokenizeCaption } from './tokenize';
import {
  CAPTION_FORMATS,
  type Caption,
  type CaptionDataset,
  type CaptionFormat,
  type DatasetImage,
  type OnErrorPolicy,
  type SkippedItem,
  type Split,
} from './types';

export interface LoadCaptionDatasetOptions {
  /** Folder the file names in the caption file are relative to. */
  imagesDir: string;
  /** Source layout; `auto` (default) detects it from the JSON's shape. */
  format?: CaptionFormat | 'auto';
  /** `stop` (default): the first malformed entry throws. `skip`: it is left out and listed in `skipped`. */
  onError?: OnErrorPolicy;
  /**
   * Split for entries that have none (COCO files often carry no split). Without it such an entry is an error,
   * because silently calling everything "train" would leave no validation data.
   */
  defaultSplit?: Split;
}

/** An image entry as read from the file, before its path is checked and duplicates removed. */
interface RawEntry {
  name: unknown;
  split: Split;
  captions: Caption[];
  sceneClass?: string;
  sourceId?: number | string;
  jsonPath: string;
}

/** Applies the on-error policy: throws under `stop`, records the item under `skip`. */
class ErrorPolicy {
  readonly skipped: SkippedItem[] = [];
  constructor(
    private readonly policy: OnErrorPolicy,
    private readonly file: string,
  ) {}

  /** Runs `read`; returns its result, or undefined when it failed and the policy is `skip`. */
  attempt<T>(jsonPath: string, read: () => T): T | undefined {
    try {
      return read();
    } catch (error) {
      if (this.policy === 'stop' || !S2CPNetError.isInstance(error)) throw error;
      const withFile = error as S2CPNetError & { file?: string; jsonPath?: string };
      this.skipped.push({ file: withFile.file ?? this.file, jsonPath: withFile.jsonPath ?? jsonPath, reason: withFile.message });
      return undefined;
    }
  }
}

const SPLIT_NAMES: Record<string, Split> = { train: 'train', restval: 'train', val: 'val', test: 'test' };

function readSplit(value: unknown, file: string, jsonPath: string, defaultSplit: Split | undefined): Split {
  if (value === undefined && defaultSplit) return defaultSplit;
  if (typeof value === 'string' && Object.hasOwn(SPLIT_NAMES, value)) return SPLIT_NAMES[value]!;
  const hint = value === undefined ? ' (a default split, --default-split on the command line, assigns one to entries without it)' : '';
  throw new InputError(
    `expected a split "train", "val", "test" or "restval", found ${describeValue(value)}${hint}`,
    { file, jsonPath },
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function captionFromText(raw: unknown, file: string, jsonPath: string): Caption {
  if (typeof raw !== 'string') {
    throw new InputError(`expected a caption string, found ${describeValue(raw)}`, { file, jsonPath });
  }
  const tokens = tokenizeCaption(raw);
  if (tokens.length === 0) {
    throw new InputError(`caption ${JSON.stringify(raw)} has no words`, { file, jsonPath });
  }
  return { raw, tokens };
}

function requireCaptions(captions: Caption[], file: string, jsonPath: string): Caption[] {
  if (captions.length === 0) {
    throw new InputError('expected at least one caption for this image, found none', { file, jsonPath });
  }
  return captions;
}

// ---------------------------------------------------------------- Karpathy

function readKarpathy(root: Record<string, unknown>, file: string, errors: ErrorPolicy, defaultSplit?: Split): RawEntry[] {
  const images = root.images;
  if (!Array.isArray(images)) {
    throw new InputError(`expected "images" to be an array, found ${describeValue(images)}`, { file, jsonPath: '$.images' });
  }
  const entries: RawEntry[] = [];
  images.forEach((image, i) => {
    const at = `$.images[${i}]`;
    const entry = errors.attempt(at, (): RawEntry => {
      if (!isRecord(image)) throw new InputError(`expected an image object, found ${describeValue(image)}`, { file, jsonPath: at });
      const filename = image.filename;
      if (typeof filename !== 'string') {
        throw new InputError(`expected "filename" to be a string, found ${describeValue(filename)}`, { file, jsonPath: `${at}.filename` });
      }
      // MS-COCO's Karpathy file keeps images in per-split folders named by "filepath".
      const filepath = image.filepath;
      if (filepath !== undefined && typeof filepath !== 'string') {
        throw new InputError(`expected "filepath" to be a string, found ${describeValue(filepath)}`, { file, jsonPath: `${at}.filepath` });
      }
      const name = filepath ? `${filepath}/${filename}` : filename;
      const split = readSplit(image.split, file, `${at}.split`, defaultSplit);
      const sentences = image.sentences;
      if (!Array.isArray(sentences)) {
        throw new InputError(`expected "sentences" to be an array, found ${describeValue(sentences)}`, { file, jsonPath: `${at}.sentences` });
      }
      const captions = sentences.map((sentence, j): Caption => {
        const sat = `${at}.sentences[${j}]`;
        if (!isRecord(sentence)) throw new InputError(`expected a sentence object, found ${describeValue(sentence)}`, { file, jsonPath: sat });
        const { tokens, raw } = sentence;
        if (tokens !== undefined) {
          if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string')) {
            throw new InputError(`expected "tokens" to be an array of strings, found ${describeValue(tokens)}`, { file, jsonPath: `${sat}.tokens` });
          }
          // Karpathy tokens are the reference tokenisation (typos included); raw is for display.
          const normalized = normalizeTokens(tokens as string[]);
          if (normalized.length === 0) throw new InputError('sentence has no words', { file, jsonPath: `${sat}.tokens` });
          return { raw: typeof raw === 'string' ? raw : (tokens as string[]).join(' '), tokens: normalized };
        }
        if (raw === undefined) {
          throw new InputError('expected "tokens" (an array of strings) or "raw" (a string), found neither', { file, jsonPath: sat });
        }
        return captionFromText(raw, file, `${sat}.raw`);
      });
      return {
        name,
        split,
        captions: requireCaptions(captions, file, `${at}.sentences`),
        sourceId: typeof image.imgid === 'number' || typeof image.imgid === 'string' ? image.imgid : undefined,
        jsonPath: at,
      };
    });
    if (entry) entries.push(entry);
  });
  return entries;
}

// ---------------------------------------------------------------- NWPU-Captions

const NWPU_CAPTION_KEY = /^raw(?:_(\d+))?$/;

function readNwpu(root: Record<string, unknown>, file: string, errors: ErrorPolicy, defaultSplit?: Split): RawEntry[] {
  const entries: RawEntry[] = [];
  for (const [sceneClass, list] of Object.entries(root)) {
    const classPath = `$[${JSON.stringify(sceneClass)}]`;
    if (!Array.isArray(list)) {
      errors.attempt(classPath, () => {
        throw new InputError(`expected an array of images for class ${JSON.stringify(sceneClass)}, found ${describeValue(list)}`, { file, jsonPath: classPath });
      });
      continue;
    }
    list.forEach((image, i) => {
      const at = `${classPath}[${i}]`;
      const entry = errors.attempt(at, (): RawEntry => {
        if (!isRecord(image)) throw new InputError(`expected an image object, found ${describeValue(image)}`, { file, jsonPath: at });
        const filename = image.filename;
        if (typeof filename !== 'string') {
          throw new InputError(`expected "filename" to be a string, found ${describeValue(filename)}`, { file, jsonPath: `${at}.filename` });
        }
        const split = readSplit(image.split, file, `${at}.split`, defaultSplit);
        // Captions are raw, raw_1, raw_2, ...: ordered by their number so "raw" comes first.
        const keys = Object.keys(image)
          .map((key) => ({ key, match: NWPU_CAPTION_KEY.exec(key) }))
          .filter((k) => k.match)
          .sort((a, b) => Number(a.match![1] ?? 0) - Number(b.match![1] ?? 0));
        const captions = keys.map(({ key }) => captionFromText(image[key], file, `${at}.${key}`));
        return {
          name: `${sceneClass}/${filename}`,
          split,
          captions: requireCaptions(captions, file, `${at}.raw`),
          sceneClass,
          sourceId: typeof image.imgid === 'number' || typeof image.imgid === 'string' ? image.imgid : undefined,
          jsonPath: at,
        };
      });
      if (entry) entries.push(entry);
    });
  }
  return entries;
}

// ---------------------------------------------------------------- COCO captions

function readCoco(root: Record<string, unknown>, file: string, errors: ErrorPolicy, defaultSplit?: Split): RawEntry[] {
  const { images, annotations } = root;
  if (!Array.isArray(images)) {
    throw new InputError(`expected "images" to be an array, found ${describeValue(images)}`, { file, jsonPath: '$.images' });
  }
  if (!Array.isArray(annotations)) {
    throw new InputError(`expected "annotations" to be an array, found ${describeValue(annotations)}`, { file, jsonPath: '$.annotations' });
  }
  interface CocoImage { name: string; split: Split; sourceId: number | string; jsonPath: string; captions: Caption[] }
  const byId = new Map<string, CocoImage>();
  images.forEach((image, i) => {
    const at = `$.images[${i}]`;
    const entry = errors.attempt(at, (): CocoImage => {
      if (!isRecord(image)) throw new InputError(`expected an image object, found ${describeValue(image)}`, { file, jsonPath: at });
      const { id, file_name: fileName } = image;
      if (typeof id !== 'number' && typeof id !== 'string') {
        throw new InputError(`expected "id" to be a number or string, found ${describeValue(id)}`, { file, jsonPath: `${at}.id` });
      }
      if (typeof fileName !== 'string') {
        throw new InputError(`expected "file_name" to be a string, found ${describeValue(fileName)}`, { file, jsonPath: `${at}.file_name` });
      }
      if (byId.has(String(id))) {
        throw new InputError(`image id ${JSON.stringify(id)} is used twice (also at ${byId.get(String(id))!.jsonPath})`, { file, jsonPath: `${at}.id` });
      }
      return { name: fileName, split: readSplit(image.split, file, `${at}.split`, defaultSplit), sourceId: id, jsonPath: at, captions: [] };
    });
    if (entry) byId.set(String(entry.sourceId), entry);
  });
  annotations.forEach((annotation, i) => {
    const at = `$.annotations[${i}]`;
    errors.attempt(at, () => {
      if (!isRecord(annotation)) throw new InputError(`expected an annotation object, found ${describeValue(annotation)}`, { file, jsonPath: at });
      const imageId = annotation.image_id;
      const image = byId.get(String(imageId));
      if (!image) {
        throw new InputError(`"image_id" ${describeValue(imageId)} matches no entry of "images"`, { file, jsonPath: `${at}.image_id` });
      }
      image.captions.push(captionFromText(annotation.caption, file, `${at}.caption`));
    });
  });
  const entries: RawEntry[] = [];
  for (const image of byId.values()) {
    const entry = errors.attempt(image.jsonPath, () => ({
      ...image,
      captions: requireCaptions(image.captions, file, image.jsonPath),
    }));
    if (entry) entries.push(entry);
  }
  return entries;
}

// ---------------------------------------------------------------- detection and assembly

/**
 * Recognises a caption file's layout from its shape:
 * COCO has `images` and `annotations` arrays; Karpathy has `images` whose entries hold `sentences`;
 * NWPU-Captions is an object of arrays (one per scene class) whose entries hold `raw` and `filename`.
 */
export function detectCaptionFormat(json: unknown, file = '<caption file>'): CaptionFormat {
  if (!isRecord(json)) {
    throw new InputError(
      `expected a JSON object (Karpathy, NWPU-Captions or COCO captions), found ${describeValue(json)}`,
      { file, jsonPath: '$' },
    );
  }
  if ('images' in json && !Array.isArray(json.images)) {
    throw new InputError(`expected "images" to be an array (Karpathy or COCO layout), found ${describeValue(json.images)}`, { file, jsonPath: '$.images' });
  }
  if (Array.isArray(json.images) && Array.isArray(json.annotations)) return 'coco';
  if (Array.isArray(json.images)) {
    const first = json.images.find(isRecord);
    if (!first || 'sentences' in first || 'filename' in first) return 'karpathy';
  }
  const values = Object.values(json);
  if (values.length > 0 && values.every(Array.isArray)) {
    const sample = (values as unknown[][]).flat().find(isRecord);
    if (sample && 'filename' in sample && Object.keys(sample).some((key) => NWPU_CAPTION_KEY.test(key))) return 'nwpu';
  }
  throw new InputError(
    'unrecognised caption file layout; expected Karpathy ({images:[{filename, split, sentences}]}), ' +
      'NWPU-Captions ({"<class>": [{filename, split, raw, raw_1, ...}]}) or COCO ({images:[{id, file_name}], annotations:[{image_id, caption}]}), ' +
      `found an object with keys ${Object.keys(json).slice(0, 8).map((k) => JSON.stringify(k)).join(', ') || '(none)'}`,
    { file, jsonPath: '$' },
  );
}

/** Builds a dataset from parsed JSON. `file` is used for error messages and the dataset's `source`. */
export function parseCaptionDataset(
  json: unknown,
  options: LoadCaptionDatasetOptions & { file: string },
): CaptionDataset {
  const file = path.resolve(options.file);
  const imagesDir = path.resolve(options.imagesDir);
  const requested = options.format ?? 'auto';
  if (requested !== 'auto' && !CAPTION_FORMATS.includes(requested)) {
    throw new InputError(`unknown caption format ${JSON.stringify(requested)}; expected auto, ${CAPTION_FORMATS.join(', ')}`);
  }
  const format = requested === 'auto' ? detectCaptionFormat(json, file) : requested;
  if (!isRecord(json)) {
    throw new InputError(`expected a JSON object, found ${describeValue(json)}`, { file, jsonPath: '$' });
  }
  const errors = new ErrorPolicy(options.onError ?? 'stop', file);
  const readers = { karpathy: readKarpathy, nwpu: readNwpu, coco: readCoco } as const;
  const entries = readers[format](json, file, errors, options.defaultSplit);

  const images: DatasetImage[] = [];
  const seen = new Map<string, string>();
  for (const entry of entries) {
    const image = errors.attempt(entry.jsonPath, (): DatasetImage => {
      const { id, file: imageFile } = resolveImagePath(imagesDir, entry.name, { file, jsonPath: entry.jsonPath });
      const firstAt = seen.get(id);
      if (firstAt !== undefined) {
        throw new InputError(`image ${JSON.stringify(id)} is listed twice (first at ${firstAt}); expected each image once`, {
          file,
          jsonPath: entry.jsonPath,
        });
      }
      seen.set(id, entry.jsonPath);
      const image: DatasetImage = { id, file: imageFile, split: entry.split, captions: entry.captions, jsonPath: entry.jsonPath };
      if (entry.sceneClass !== undefined) image.sceneClass = entry.sceneClass;
      if (entry.sourceId !== undefined) image.sourceId = entry.sourceId;
      return image;
    });
    if (image) images.push(image);
  }
  if (images.length === 0) {
    const why = errors.skipped.length > 0 ? ` (all ${errors.skipped.length} entries were skipped as malformed)` : '';
    throw new InputError(`the caption file lists no usable images${why}`, { file });
  }
  const dataset: CaptionDataset = { source: { file, format }, imagesDir, images, skipped: errors.skipped };
  if (format === 'karpathy' && typeof json.dataset === 'string') dataset.source.name = json.dataset;
  return dataset;
}

/**
 * Reads a caption file (Karpathy `dataset.json`, NWPU-Captions JSON or COCO captions) into one typed dataset.
 * Errors name the file and the JSON path of the offending entry.
 *
 * @example
 * ```ts
 * const ucm = await loadCaptionDataset('data/ucm/dataset.json', { imagesDir: 'data/ucm/images' });
 * const train = ucm.images.filter((image) => image.split === 'train');
 * ```
 */
export async function loadCaptionDataset(file: string, options: LoadCaptionDatasetOptions): Promise<CaptionDataset> {
  const resolved = path.resolve(file);
  let bytes: Uint8Array;
  try {
    bytes = await fsp.readFile(resolved);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const what = code === 'EISDIR' ? 'expected a caption JSON file, found a folder' : describeFsError(code, 'caption file');
    throw new InputError(what, { file: resolved, cause: error });
  }
  const text = decodeUtf8(bytes, resolved);
  let json: unknown;
  try {
    json = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (error) {
    throw new InputError(`not valid JSON: ${(error as Error).message}`, { file: resolved, cause: error });
  }
  return parseCaptionDataset(json, { ...options, file: resolved });
}

/** Offset of the first byte that is not part of well-formed UTF-8, or -1 when all of `bytes` is. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const lead = bytes[i]!;
    if (lead < 0x80) {
      i++;
      continue;
    }
    const need = lead >= 0xc2 && lead <= 0xdf ? 1 : lead >= 0xe0 && lead <= 0xef ? 2 : lead >= 0xf0 && lead <= 0xf4 ? 3 : 0;
    if (need === 0 || i + need >= n) return i;
    // The second byte's range excludes overlong forms, surrogates and code points above U+10FFFF.
    const low = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
    const high = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
    if (bytes[i + 1]! < low || bytes[i + 1]! > high) return i;
    for (let k = 2; k <= need; k++) if ((bytes[i + k]! & 0xc0) !== 0x80) return i;
    i += need + 1;
  }
  return -1;
}

/** Decodes a caption file as strict UTF-8; anything else (Latin-1, Windows-1252) is an error naming the byte. */
function decodeUtf8(bytes: Uint8Array, file: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    const offset = Math.max(0, firstInvalidUtf8(bytes));
    let line = 1;
    for (let i = 0; i < offset; i++) if (bytes[i] === 0x0a) line++;
    const byte = (bytes[offset] ?? 0).toString(16).padStart(2, '0');
    throw new InputError(
      `not valid UTF-8 (byte 0x${byte} at offset ${offset}, line ${line}); expected a UTF-8 caption file. ` +
        'A Latin-1 or Windows-1252 file can be converted first, e.g. iconv -f latin1 -t utf-8 old.json > new.json',
      { file, cause: error },
    );
  }
}

/** Number of images per split. */
export function countBySplit(dataset: Pick<CaptionDataset, 'images'>): Record<Split, number> {
  const counts: Record<Split, number> = { train: 0, val: 0, test: 0 };
  for (const image of dataset.images) counts[image.split]++;
  return counts;
}

/** The images of one split, in file order. */
export function imagesOfSplit(dataset: Pick<CaptionDataset, 'images'>, split: Split): DatasetImage[] {
  return dataset.images.filter((image) => image.split === split);
}
