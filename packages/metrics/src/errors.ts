/**
 * Errors thrown by @s2cpnet/metrics.
 *
 * The metrics package stands beside `@s2cpnet/core` and must not depend on it, so it carries its own
 * error class. It sets the same stable marker (`Symbol.for('s2cpnet.error')`) and an `INPUT` code, which is
 * what `S2CPNetError.isInstance` in core looks for, so callers that catch toolkit errors treat it alike.
 */

const S2CPNET_ERROR_MARKER = Symbol.for('s2cpnet.error');

/** Where a bad value was found, so the message can point at it. */
export interface MetricsInputLocation {
  /** The file the value came from, when it came from a file. */
  file?: string;
  /** The image id the value belongs to. */
  imageId?: string | number;
  /** A JSON path such as `$[3].caption`. */
  jsonPath?: string;
}

/** Bad input to a scorer or to the file loaders: missing ids, duplicates, non-string captions, bad JSON. */
export class MetricsInputError extends Error {
  readonly code = 'INPUT' as const;
  readonly file: string | undefined;
  readonly imageId: string | number | undefined;
  readonly jsonPath: string | undefined;
  readonly [S2CPNET_ERROR_MARKER] = true;

  constructor(message: string, location: MetricsInputLocation = {}, options?: { cause?: unknown }) {
    super(formatMessage(message, location), options);
    this.name = 'MetricsInputError';
    this.file = location.file;
    this.imageId = location.imageId;
    this.jsonPath = location.jsonPath;
  }

  /** True for any MetricsInputError, also one created by another copy of this package. */
  static isInstance(value: unknown): value is MetricsInputError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[S2CPNET_ERROR_MARKER] === true &&
      (value as { name?: unknown }).name === 'MetricsInputError'
    );
  }
}

function formatMessage(message: string, location: MetricsInputLocation): string {
  const where: string[] = [];
  if (location.file !== undefined) where.push(location.file);
  if (location.jsonPath !== undefined) where.push(location.jsonPath);
  if (location.imageId !== undefined) where.push(`image_id ${JSON.stringify(location.imageId)}`);
  return where.length > 0 ? `${where.join(': ')}: ${message}` : message;
}
