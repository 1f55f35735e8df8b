/** A segmentation: one segment id per pixel, row-major. Id 0 is background (no potential target). */
export interface LabelMap {
  width: number;
  height: number;
  /** `width * height` segment ids, row-major; 0 = background. */
  labels: Int32Array;
}

/** An 8-bit RGB image held in memory. */
export interface RgbImage {
  width: number;
  height: number;
  /** RGB interleaved, 3 bytes per pixel, row-major (`width * height * 3` bytes). */
  data: Uint8Array;
}
