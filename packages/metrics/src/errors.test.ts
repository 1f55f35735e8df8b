import { describe, expect, it } from 'vitest';

import { MetricsInputError } from './errors.js';

describe('MetricsInputError', () => {
  it("carries the toolkit's error marker and the INPUT code, so core's S2CPNetError.isInstance accepts it", () => {
    const error = new MetricsInputError('caption must be a string', { file: 'preds.json', imageId: 3, jsonPath: '$[2].caption' });
    expect((error as unknown as Record<symbol, unknown>)[Symbol.for('s2cpnet.error')]).toBe(true);
    expect(error.code).toBe('INPUT');
    expect(error.message).toBe('preds.json: $[2].caption: image_id 3: caption must be a string');
    expect(MetricsInputError.isInstance(error)).toBe(true);
    expect(MetricsInputError.isInstance(new Error('x'))).toBe(false);
  });
});
