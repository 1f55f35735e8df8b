/** Checks every scorer runs on its input before scoring, so a bad item fails with its image id named. */
import { MetricsInputError } from './errors.js';
import type { CaptionItem } from './types.js';

/**
 * The most words a caption may have unless `maxCaptionWords` says otherwise. Real captions have tens of words;
 * the limit is there so that a runaway caption (a model that never stops, a whole document pasted in) fails at
 * once with its image named instead of taking minutes in METEOR and ROUGE_L, whose work grows with the product
 * of the candidate's and a reference's lengths.
 */
export const DEFAULT_MAX_CAPTION_WORDS = 1000;

/** How long a caption the scorers accept. */
export interface CaptionLimits {
  /**
   * Most words (runs of non-space characters, as the scorers split them) in a candidate or reference caption;
   * a longer caption is refused with a MetricsInputError naming the image. Default `DEFAULT_MAX_CAPTION_WORDS`
   * (1000); `Infinity` turns the check off.
   */
  maxCaptionWords?: number;
}

/** Words of a caption: runs of non-whitespace characters, counted up to `limit + 1`. */
function countWords(text: string, limit: number): number {
  let count = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    // ASCII whitespace and the Unicode spaces the tokenizers split on.
    const space = code <= 0x20 || code === 0x85 || code === 0xa0 || code === 0x1680 || (code >= 0x2000 && code <= 0x200b) || code === 0x2028 || code === 0x2029 || code === 0x202f || code === 0x205f || code === 0x3000 || code === 0xfeff;
    if (space) inWord = false;
    else if (!inWord) {
      inWord = true;
      if (++count > limit) return count;
    }
  }
  return count;
}

function resolveLimit(limits: CaptionLimits): number {
  const limit = limits.maxCaptionWords ?? DEFAULT_MAX_CAPTION_WORDS;
  if (!(limit >= 1) || (Number.isFinite(limit) && !Number.isInteger(limit))) {
    throw new MetricsInputError(`maxCaptionWords must be a positive integer or Infinity, found ${describe(limit)}`);
  }
  return limit;
}

/**
 * Throw a MetricsInputError naming the image when a caption has more words than the limit. `what` says which
 * form of the text was counted (for example "after PTB tokenization").
 */
export function assertCaptionLengths(items: readonly CaptionItem[], limits: CaptionLimits = {}, what = ''): void {
  const limit = resolveLimit(limits);
  if (limit === Infinity) return;
  const suffix = what === '' ? '' : ` ${what}`;
  const check = (text: string, name: string, imageId: string | number, jsonPath: string): void => {
    if (countWords(text, limit) > limit) {
      throw new MetricsInputError(
        `${name} has ${countWords(text, Infinity)} words${suffix}, more than the limit of ${limit} (raise it with maxCaptionWords, or --max-caption-words on the command line)`,
        { imageId, jsonPath },
      );
    }
  };
  items.forEach((item, index) => {
    const jsonPath = `$[${index}]`;
    check(item.candidate, 'the candidate caption', item.imageId, jsonPath);
    item.references.forEach((reference, referenceIndex) => check(reference, `reference ${referenceIndex}`, item.imageId, jsonPath));
  });
}

/**
 * Throw a MetricsInputError naming the image when an item is not scoreable: not an object, a bad id, a
 * duplicate, a non-string caption, no references, or a caption over the word limit.
 */
export function assertScoreableItems(items: readonly CaptionItem[], limits: CaptionLimits = {}): void {
  if (!Array.isArray(items)) throw new MetricsInputError(`expected an array of caption items, found ${describe(items)}`);
  if (items.length === 0) throw new MetricsInputError('there are no images to score');
  const seen = new Set<string>();
  items.forEach((item, index) => {
    const jsonPath = `$[${index}]`;
    if (typeof item !== 'object' || item === null) {
      throw new MetricsInputError(`expected a caption item object, found ${describe(item)}`, { jsonPath });
    }
    const imageId = item.imageId;
    if (typeof imageId !== 'string' && typeof imageId !== 'number') {
      throw new MetricsInputError(`imageId must be a string or a number, found ${describe(imageId)}`, { jsonPath });
    }
    const key = String(imageId);
    if (seen.has(key)) throw new MetricsInputError('the image appears twice', { imageId, jsonPath });
    seen.add(key);
    if (typeof item.candidate !== 'string') {
      throw new MetricsInputError(`candidate caption must be a string, found ${describe(item.candidate)}`, {
        imageId,
        jsonPath,
      });
    }
    const references: unknown = item.references;
    if (!Array.isArray(references) || references.length === 0) {
      throw new MetricsInputError('needs at least one reference caption', { imageId, jsonPath });
    }
    references.forEach((reference: unknown, referenceIndex: number) => {
      if (typeof reference !== 'string') {
        throw new MetricsInputError(`reference ${referenceIndex} must be a string, found ${describe(reference)}`, {
          imageId,
          jsonPath,
        });
      }
    });
  });
  assertCaptionLengths(items, limits);
}

/** A short description of a value for error messages: its JSON form when short, else its type. */
export function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  const text = JSON.stringify(value);
  return text.length <= 40 ? `${typeof value} ${text}` : typeof value;
}
