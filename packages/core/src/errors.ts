/**
 * Error classes shared by every @s2cpnet package.
 *
 * Each error carries a marker under `Symbol.for('s2cpnet.error')`, so `S2CPNetError.isInstance(e)` works even when
 * two copies of this package are installed (where `instanceof` would fail).
 */
const MARKER = Symbol.for('s2cpnet.error');

export type S2CPNetErrorCode =
  | 'CONFIG'
  | 'SHAPE'
  | 'INPUT'
  | 'CHECKPOINT'
  | 'BACKEND'
  | 'NOT_SUPPORTED'
  | 'DOWNLOAD'
  | 'INTERRUPTED';

export class S2CPNetError extends Error {
  readonly [MARKER] = true;
  readonly code: S2CPNetErrorCode;

  constructor(code: S2CPNetErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'S2CPNetError';
  }

  static isInstance(value: unknown): value is S2CPNetError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[MARKER] === true;
  }
}

/** A configuration document is invalid. `jsonPath` points at the offending value, e.g. `$.fusion.type`. */
export class ConfigError extends S2CPNetError {
  readonly jsonPath: string;
  constructor(jsonPath: string, message: string, options?: { cause?: unknown; file?: string }) {
    super('CONFIG', `${options?.file ? `${options.file}: ` : ''}${jsonPath}: ${message}`, options);
    this.name = 'ConfigError';
    this.jsonPath = jsonPath;
  }
}

/** A tensor given to a component has the wrong rank, size or dtype. */
export class ShapeError extends S2CPNetError {
  readonly component: string;
  readonly argument: string;
  constructor(component: string, argument: string, message: string) {
    super('SHAPE', `${component}: argument '${argument}' ${message}`);
    this.name = 'ShapeError';
    this.component = component;
    this.argument = argument;
  }
}

/** A user-supplied file or value is missing, unreadable or malformed. `file` names it when there is one. */
export class InputError extends S2CPNetError {
  readonly file?: string;
  readonly jsonPath?: string;
  constructor(message: string, options?: { file?: string; jsonPath?: string; cause?: unknown }) {
    const where = [options?.file, options?.jsonPath].filter(Boolean).join(' at ');
    super('INPUT', where ? `${where}: ${message}` : message, options);
    this.name = 'InputError';
    this.file = options?.file;
    this.jsonPath = options?.jsonPath;
  }
}

/** A checkpoint is missing, incomplete, or does not fit the model it is loaded into. */
export class CheckpointError extends S2CPNetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CHECKPOINT', message, options);
    this.name = 'CheckpointError';
  }
}

/** A TensorFlow.js backend could not be chosen or initialised. */
export class BackendError extends S2CPNetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BACKEND', message, options);
    this.name = 'BackendError';
  }
}

/** A download failed, or its checksum did not match. */
export class DownloadError extends S2CPNetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DOWNLOAD', message, options);
    this.name = 'DownloadError';
  }
}

/** Work was interrupted (Ctrl-C) after its state was saved. */
export class InterruptedError extends S2CPNetError {
  constructor(message: string) {
    super('INTERRUPTED', message);
    this.name = 'InterruptedError';
  }
}

/** Builds the error for an unknown discriminant `type`, listing the valid names. */
export function unknownTypeError(jsonPath: string, kind: string, found: unknown, valid: readonly string[]): ConfigError {
  return new ConfigError(
    jsonPath,
    `unknown ${kind} type ${JSON.stringify(found)}; expected one of: ${valid.map((v) => JSON.stringify(v)).join(', ')}`,
  );
}
