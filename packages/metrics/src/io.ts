/**
 * Reading caption files: COCO results (`[{image_id, caption}]`), COCO caption annotations
 * (`{annotations: [{image_id, caption}]}`) and Karpathy-style `dataset.json` files (`{images: [{imgid,
 * split, sentences: [{raw, tokens}]}]}`), checked at the edge so that every problem is reported with the file,
 * the JSON path or image id, what was expected and what was found.
 *
 * A file is read whole and parsed in memory, so files over a size limit (`maxBytes`, default 64 MiB) are refused
 * before they are read: a results file of that size already holds about a million captions.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

import { MetricsInputError } from './errors.js';
import type { CaptionItem, ImageId } from './types.js';
import { describe } from './validate.js';

/** One prediction of a COCO results file. */
export interface CandidateCaption {
  imageId: ImageId;
  caption: string;
}

/** The references of one image. */
export interface ReferenceSet {
  imageId: ImageId;
  captions: string[];
}

/** The largest caption file read unless `maxBytes` says otherwise: 64 MiB. */
export const DEFAULT_MAX_CAPTION_FILE_BYTES = 64 * 2 ** 20;

/** How large a file the loaders read. */
export interface FileSizeLimit {
  /**
   * Refuse a file larger than this many bytes, with a MetricsInputError naming the file, its size and the limit.
   * Default `DEFAULT_MAX_CAPTION_FILE_BYTES` (64 MiB); `Infinity` turns the check off.
   */
  maxBytes?: number;
}

export interface ReferenceLoadOptions {
  /** For a Karpathy dataset.json: the split to keep (`test`, `val`, `train`, `restval`, ...). Required there. */
  split?: string;
  /** Use the pre-tokenized form of Karpathy sentences (`tokens` joined by spaces) instead of `raw`. */
  pretokenized?: boolean;
  /** For a Karpathy dataset.json: the image field results refer to. Default: detected from the results. */
  karpathyIdField?: string;
  /** The results' image ids, used to detect the Karpathy id field. */
  resultImageIds?: readonly ImageId[];
}

/** Parse JSON text, turning a syntax error into a MetricsInputError with the line and column. */
export function parseJsonText(text: string, file: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const message = (error as Error).message;
    const position = /position (\d+)/.exec(message);
    let where = '';
    if (position) {
      const offset = Number(position[1]);
      const before = text.slice(0, offset);
      const line = before.split('\n').length;
      const column = offset - before.lastIndexOf('\n');
      where = ` at line ${line}, column ${column}`;
    }
    throw new MetricsInputError(`malformed JSON${where}: ${message}`, { file }, { cause: error });
  }
}

function formatSize(bytes: number): string {
  return `${bytes} bytes (${(bytes / 2 ** 20).toFixed(1)} MiB)`;
}

function tooLarge(file: string, size: string, maxBytes: number): MetricsInputError {
  return new MetricsInputError(
    `the file is ${size}, more than the limit of ${formatSize(maxBytes)} (raise it with maxBytes, or --max-bytes on the command line)`,
    { file },
  );
}

/**
 * Read a file whole, refusing one over `maxBytes`: a regular file by its size before reading, anything else (a
 * pipe) once more than `maxBytes` have arrived.
 */
function readBoundedFile(file: string, maxBytes: number): Buffer {
  if (!(maxBytes > 0)) throw new MetricsInputError(`maxBytes must be a positive number of bytes, found ${describe(maxBytes)}`);
  let descriptor: number;
  try {
    descriptor = openSync(file, 'r');
  } catch (error) {
    throw new MetricsInputError(`cannot read the file (${(error as Error).message})`, { file }, { cause: error });
  }
  try {
    const stats = fstatSync(descriptor);
    if (stats.isFile() && stats.size > maxBytes) throw tooLarge(file, formatSize(stats.size), maxBytes);
    const chunks: Buffer[] = [];
    let total = 0;
    // One read for a regular file (its size plus one byte to see the end), 1 MiB at a time otherwise.
    const chunkSize = Math.min(stats.isFile() && stats.size > 0 ? Math.min(stats.size + 1, maxBytes + 1) : 1 << 20, 1 << 26);
    for (;;) {
      const chunk = Buffer.allocUnsafe(chunkSize);
      const read = readSync(descriptor, chunk, 0, chunk.length, null);
      if (read === 0) break;
      total += read;
      if (total > maxBytes) throw tooLarge(file, `more than ${formatSize(maxBytes)}`, maxBytes);
      chunks.push(read === chunk.length ? chunk : chunk.subarray(0, read));
    }
    return Buffer.concat(chunks, total);
  } catch (error) {
    if (MetricsInputError.isInstance(error)) throw error;
    throw new MetricsInputError(`cannot read the file (${(error as Error).message})`, { file }, { cause: error });
  } finally {
    closeSync(descriptor);
  }
}

/** Read and parse a JSON file, refusing one over `maxBytes` (default 64 MiB). */
export function readJsonFile(file: string, limit: FileSizeLimit = {}): unknown {
  let text = readBoundedFile(file, limit.maxBytes ?? DEFAULT_MAX_CAPTION_FILE_BYTES).toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return parseJsonText(text, file);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkImageId(value: unknown, file: string, jsonPath: string): ImageId {
  if ((typeof value === 'number' && Number.isFinite(value)) || (typeof value === 'string' && value !== '')) return value;
  throw new MetricsInputError(`image_id must be a number or a non-empty string, found ${describe(value)}`, {
    file,
    jsonPath,
  });
}

/** Parse a COCO results array `[{image_id, caption}, ...]`. An empty caption is allowed; duplicates are not. */
export function parseCocoResults(json: unknown, file: string): CandidateCaption[] {
  if (!Array.isArray(json)) {
    throw new MetricsInputError(
      `expected a COCO results array [{"image_id": ..., "caption": "..."}, ...], found ${describe(json)}`,
      { file, jsonPath: '$' },
    );
  }
  if (json.length === 0) throw new MetricsInputError('the results array is empty', { file, jsonPath: '$' });
  const firstIndex = new Map<string, number>();
  return json.map((entry: unknown, index) => {
    const jsonPath = `$[${index}]`;
    if (!isRecord(entry)) {
      throw new MetricsInputError(`expected an object {"image_id", "caption"}, found ${describe(entry)}`, {
        file,
        jsonPath,
      });
    }
    const imageId = checkImageId(entry.image_id, file, `${jsonPath}.image_id`);
    const caption = entry.caption;
    if (typeof caption !== 'string') {
      throw new MetricsInputError(`caption must be a string, found ${describe(caption)}`, {
        file,
        imageId,
        jsonPath: `${jsonPath}.caption`,
      });
    }
    const key = String(imageId);
    const previous = firstIndex.get(key);
    if (previous !== undefined) {
      throw new MetricsInputError(`the image has two captions (entries $[${previous}] and ${jsonPath}); expected one`, {
        file,
        imageId,
      });
    }
    firstIndex.set(key, index);
    return { imageId, caption };
  });
}

function checkReferenceCaption(value: unknown, file: string, imageId: ImageId, jsonPath: string): string {
  if (typeof value !== 'string') {
    throw new MetricsInputError(`reference caption must be a string, found ${describe(value)}`, {
      file,
      imageId,
      jsonPath,
    });
  }
  if (value.trim() === '') {
    throw new MetricsInputError('reference caption is empty', { file, imageId, jsonPath });
  }
  return value;
}

function addReference(sets: Map<string, ReferenceSet>, imageId: ImageId, caption: string): void {
  const key = String(imageId);
  let set = sets.get(key);
  if (set === undefined) {
    set = { imageId, captions: [] };
    sets.set(key, set);
  }
  set.captions.push(caption);
}

function parseCocoAnnotations(json: Record<string, unknown>, file: string): Map<string, ReferenceSet> {
  const annotations = json.annotations;
  if (!Array.isArray(annotations)) {
    throw new MetricsInputError(`expected "annotations" to be an array, found ${describe(annotations)}`, {
      file,
      jsonPath: '$.annotations',
    });
  }
  const sets = new Map<string, ReferenceSet>();
  const annotationIds = new Map<string, number>();
  annotations.forEach((entry: unknown, index) => {
    const jsonPath = `$.annotations[${index}]`;
    if (!isRecord(entry)) {
      throw new MetricsInputError(`expected an object {"image_id", "caption"}, found ${describe(entry)}`, {
        file,
        jsonPath,
      });
    }
    const imageId = checkImageId(entry.image_id, file, `${jsonPath}.image_id`);
    const caption = checkReferenceCaption(entry.caption, file, imageId, `${jsonPath}.caption`);
    if (entry.id !== undefined) {
      const idKey = JSON.stringify(entry.id);
      const previous = annotationIds.get(idKey);
      if (previous !== undefined) {
        throw new MetricsInputError(
          `annotation id ${idKey} is used twice ($.annotations[${previous}] and ${jsonPath})`,
          { file, imageId },
        );
      }
      annotationIds.set(idKey, index);
    }
    addReference(sets, imageId, caption);
  });
  if (sets.size === 0) throw new MetricsInputError('there are no annotations', { file, jsonPath: '$.annotations' });
  return sets;
}

const KARPATHY_ID_FIELDS = ['imgid', 'cocoid', 'id', 'filename'] as const;

function chooseKarpathyIdField(images: readonly Record<string, unknown>[], resultIds: readonly ImageId[] | undefined) {
  const present = KARPATHY_ID_FIELDS.filter((field) => images.some((image) => image[field] !== undefined));
  if (present.length === 0) return undefined;
  if (resultIds === undefined || resultIds.length === 0) return present[0];
  let best = present[0]!;
  let bestHits = -1;
  for (const field of present) {
    const keys = new Set(images.map((image) => String(image[field])));
    const hits = resultIds.filter((id) => keys.has(String(id))).length;
    if (hits > bestHits) {
      best = field;
      bestHits = hits;
    }
  }
  return best;
}

function parseKarpathyDataset(
  json: Record<string, unknown>,
  file: string,
  options: ReferenceLoadOptions,
): Map<string, ReferenceSet> {
  const images = json.images;
  if (!Array.isArray(images)) {
    throw new MetricsInputError(`expected "images" to be an array, found ${describe(images)}`, {
      file,
      jsonPath: '$.images',
    });
  }
  images.forEach((image: unknown, index) => {
    if (!isRecord(image)) {
      throw new MetricsInputError(`expected an image object, found ${describe(image)}`, {
        file,
        jsonPath: `$.images[${index}]`,
      });
    }
  });
  const records = images as Record<string, unknown>[];
  const splits = [...new Set(records.map((image) => String(image.split)))];
  if (options.split === undefined) {
    throw new MetricsInputError(
      `this is a Karpathy-style dataset.json: choose a split with --split (${splits.join(', ')})`,
      { file },
    );
  }
  const chosen = records
    .map((image, index) => ({ image, index }))
    .filter(({ image }) => image.split === options.split);
  if (chosen.length === 0) {
    throw new MetricsInputError(
      `no image has split ${JSON.stringify(options.split)}; the file has ${splits.join(', ')}`,
      { file },
    );
  }
  const idField = options.karpathyIdField ?? chooseKarpathyIdField(chosen.map(({ image }) => image), options.resultImageIds);
  if (idField === undefined) {
    throw new MetricsInputError(`images have none of the id fields ${KARPATHY_ID_FIELDS.join(', ')}`, { file });
  }

  const sets = new Map<string, ReferenceSet>();
  for (const { image, index } of chosen) {
    const jsonPath = `$.images[${index}]`;
    const imageId = checkImageId(image[idField], file, `${jsonPath}.${idField}`);
    if (sets.has(String(imageId))) {
      throw new MetricsInputError(`two images of split ${options.split} have ${idField} ${JSON.stringify(imageId)}`, {
        file,
        imageId,
        jsonPath,
      });
    }
    const sentences = image.sentences;
    if (!Array.isArray(sentences) || sentences.length === 0) {
      throw new MetricsInputError(`expected a non-empty "sentences" array, found ${describe(sentences)}`, {
        file,
        imageId,
        jsonPath: `${jsonPath}.sentences`,
      });
    }
    const captions = sentences.map((sentence: unknown, sentenceIndex) => {
      const sentencePath = `${jsonPath}.sentences[${sentenceIndex}]`;
      if (!isRecord(sentence)) {
        throw new MetricsInputError(`expected a sentence object {"raw", "tokens"}, found ${describe(sentence)}`, {
          file,
          imageId,
          jsonPath: sentencePath,
        });
      }
      const tokens = sentence.tokens;
      if (options.pretokenized && Array.isArray(tokens) && tokens.every((token) => typeof token === 'string')) {
        return checkReferenceCaption(tokens.join(' '), file, imageId, `${sentencePath}.tokens`);
      }
      return checkReferenceCaption(sentence.raw, file, imageId, `${sentencePath}.raw`);
    });
    sets.set(String(imageId), { imageId, captions });
  }
  return sets;
}

/**
 * Parse references: COCO caption annotations or a Karpathy-style dataset.json (which needs `split`). Returns
 * the reference sets keyed by `String(image_id)`, in order of first appearance.
 */
export function parseReferences(json: unknown, file: string, options: ReferenceLoadOptions = {}): Map<string, ReferenceSet> {
  if (isRecord(json) && 'annotations' in json) {
    if (options.split !== undefined) {
      throw new MetricsInputError('--split applies to a Karpathy dataset.json; this is a COCO annotations file', {
        file,
      });
    }
    return parseCocoAnnotations(json, file);
  }
  if (isRecord(json) && Array.isArray(json.images) && json.images.some((image) => isRecord(image) && 'sentences' in image)) {
    return parseKarpathyDataset(json, file, options);
  }
  throw new MetricsInputError(
    `expected COCO caption annotations {"annotations": [{"image_id", "caption"}]} or a Karpathy dataset.json {"images": [{"sentences": [...]}]}, found ${describe(json)}`,
    { file, jsonPath: '$' },
  );
}

/**
 * Pair every result with its references. Every result id must have references and every referenced image a
 * result; the error names the first few ids on each side.
 */
export function pairCaptions(
  results: readonly CandidateCaption[],
  references: ReadonlyMap<string, ReferenceSet>,
  files: { results: string; references: string },
): CaptionItem[] {
  const missingReferences = results.filter((result) => !references.has(String(result.imageId)));
  if (missingReferences.length > 0) {
    const first = missingReferences[0]!;
    throw new MetricsInputError(
      `has no references in ${files.references}${listMore(missingReferences.map((r) => r.imageId))}`,
      { file: files.results, imageId: first.imageId },
    );
  }
  const resultIds = new Set(results.map((result) => String(result.imageId)));
  const missingResults = [...references.values()].filter((set) => !resultIds.has(String(set.imageId)));
  if (missingResults.length > 0) {
    const first = missingResults[0]!;
    throw new MetricsInputError(
      `has references but no caption in ${files.results}${listMore(missingResults.map((r) => r.imageId))}`,
      { file: files.references, imageId: first.imageId },
    );
  }
  return results.map((result) => ({
    imageId: result.imageId,
    candidate: result.caption,
    references: references.get(String(result.imageId))!.captions,
  }));
}

function listMore(ids: readonly ImageId[]): string {
  if (ids.length <= 1) return '';
  const shown = ids.slice(0, 5).map((id) => JSON.stringify(id));
  return ` (${ids.length} images in all: ${shown.join(', ')}${ids.length > 5 ? ', ...' : ''})`;
}

/**
 * Load a results file and a references file and pair them, checking everything on the way. Either file over
 * `maxBytes` (default 64 MiB) is refused before it is read.
 */
export function loadCaptionFiles(
  resultsFile: string,
  referencesFile: string,
  options: Omit<ReferenceLoadOptions, 'resultImageIds'> & FileSizeLimit = {},
): CaptionItem[] {
  const { maxBytes, ...referenceOptions } = options;
  const limit: FileSizeLimit = maxBytes === undefined ? {} : { maxBytes };
  const results = parseCocoResults(readJsonFile(resultsFile, limit), resultsFile);
  const references = parseReferences(readJsonFile(referencesFile, limit), referencesFile, {
    ...referenceOptions,
    resultImageIds: results.map((result) => result.imageId),
  });
  return pairCaptions(results, references, { results: resultsFile, references: referencesFile });
}
