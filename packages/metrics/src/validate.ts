/** Checks every scorer runs on its input before scoring, so a bad item fails with its image id named. */
import { MetricsInputError } from './errors.js';
import type { CaptionItem } from './types.js';

/** Throw a MetricsInputError naming the image when an item is not scoreable. */
export function assertScoreableItems(items: readonly CaptionItem[]): void {
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
