import type * as tf from '@tensorflow/tfjs-core';
import { ShapeError } from './errors';

/** One expected dimension: a fixed size, `null` for any size, or a name that must agree across calls. */
export type DimSpec = number | null;

function describe(shape: readonly (number | null)[]): string {
  return `[${shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

/**
 * Asserts a tensor's shape. Names the component and the argument in the error, e.g.
 * `CVFF: argument 'imageTokens' expected shape [?, 196, 512], found [2, 49, 512]`.
 */
export function assertShape(
  component: string,
  argument: string,
  value: tf.Tensor | readonly number[],
  expected: readonly DimSpec[],
): void {
  const shape = Array.isArray(value) ? (value as readonly number[]) : (value as tf.Tensor).shape;
  const ok = shape.length === expected.length && expected.every((d, i) => d === null || d === shape[i]);
  if (!ok) {
    throw new ShapeError(component, argument, `expected shape ${describe(expected)}, found ${describe(shape)}`);
  }
}

export function assertRank(component: string, argument: string, value: tf.Tensor, rank: number): void {
  if (value.rank !== rank) {
    throw new ShapeError(component, argument, `expected rank ${rank}, found rank ${value.rank} (shape ${describe(value.shape)})`);
  }
}

export function assertDtype(component: string, argument: string, value: tf.Tensor, dtype: tf.DataType): void {
  if (value.dtype !== dtype) {
    throw new ShapeError(component, argument, `expected dtype ${dtype}, found ${value.dtype}`);
  }
}

/** Asserts that two tensors agree on the listed axes (e.g. batch size of image and mask views). */
export function assertSameDims(
  component: string,
  names: [string, string],
  a: tf.Tensor,
  b: tf.Tensor,
  axes: readonly number[],
): void {
  for (const axis of axes) {
    if (a.shape[axis] !== b.shape[axis]) {
      throw new ShapeError(
        component,
        names[1],
        `must match '${names[0]}' on axis ${axis}: ${names[0]} ${describe(a.shape)} vs ${names[1]} ${describe(b.shape)}`,
      );
    }
  }
}
