import { ShapeError } from '@s2cpnet/core';
import type { LabelMap, RgbImage } from './types';

function describeSize(width: number, height: number): string {
  return `${width}x${height}`;
}

/** Checks that an in-memory image's byte count matches its declared size. */
export function assertRgbImage(component: string, argument: string, image: RgbImage): void {
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0) {
    throw new ShapeError(component, argument, `must have integer width and height >= 0, found ${width} x ${height}`);
  }
  if (data.length !== width * height * 3) {
    throw new ShapeError(
      component,
      argument,
      `must hold ${width * height * 3} bytes (${describeSize(width, height)} RGB), found ${data.length}`,
    );
  }
}

/** Checks a label map's length and, when given, that it matches an image's size. */
export function assertLabelMap(component: string, argument: string, labels: LabelMap, image?: RgbImage): void {
  if (labels.labels.length !== labels.width * labels.height) {
    throw new ShapeError(
      component,
      argument,
      `must hold ${labels.width * labels.height} labels (${describeSize(labels.width, labels.height)}), found ${labels.labels.length}`,
    );
  }
  if (image && (image.width !== labels.width || image.height !== labels.height)) {
    throw new ShapeError(
      component,
      argument,
      `is ${describeSize(labels.width, labels.height)} but the image is ${describeSize(image.width, image.height)}`,
    );
  }
}
