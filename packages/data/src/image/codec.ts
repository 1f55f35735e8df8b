import { promises as fsp } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { InputError } from '@s2cpnet/core';
import type { RgbImage } from '../masks/types';

/**
 * Image bytes in and out. Decoding goes through sharp (libvips), which reads every format the datasets ship in
 * (UCM and Sydney TIFF originals, JPEG, PNG) and converts grey, grey+alpha, RGBA, CMYK and 16-bit files to 8-bit
 * sRGB. Encoding to PNG is done here in a few lines over node:zlib: synchronous, no native call, and the same bytes
 * for the same pixels on every platform.
 */

type SharpFactory = typeof import('sharp');
let sharpLoading: Promise<SharpFactory> | undefined;

/** sharp is loaded on first use, so importing this package costs nothing when no image is decoded. */
function loadSharp(): Promise<SharpFactory> {
  sharpLoading ??= import('sharp').then(
    (module) => ((module as { default?: SharpFactory }).default ?? module) as SharpFactory,
  );
  return sharpLoading;
}

/** Copies 1-4 channel 8-bit pixels into an RGB image (grey is repeated, alpha dropped). */
function toRgb(source: Uint8Array, width: number, height: number, channels: number, file: string): RgbImage {
  const pixels = width * height;
  if (channels === 3) return { width, height, data: new Uint8Array(source.buffer, source.byteOffset, 3 * pixels).slice() };
  if (channels < 1 || channels > 4) {
    throw new InputError(`unsupported channel count ${channels}; expected 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA)`, { file });
  }
  const data = new Uint8Array(3 * pixels);
  const grey = channels <= 2;
  for (let p = 0; p < pixels; p++) {
    const s = p * channels;
    if (grey) {
      data[3 * p] = data[3 * p + 1] = data[3 * p + 2] = source[s]!;
    } else {
      data[3 * p] = source[s]!;
      data[3 * p + 1] = source[s + 1]!;
      data[3 * p + 2] = source[s + 2]!;
    }
  }
  return { width, height, data };
}

async function decodeWithSharp(input: string | Uint8Array, name: string): Promise<RgbImage> {
  const sharp = await loadSharp();
  let result: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    // failOn 'error' also rejects truncated files, which would otherwise decode with a grey band at the bottom.
    // autoOrient applies an EXIF rotation, as every image viewer does.
    result = await sharp(input, { failOn: 'error', autoOrient: true })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (error) {
    const reason = (error instanceof Error ? error.message : String(error)).split('\n')[0];
    throw new InputError(`cannot decode image (${reason}); expected a readable TIFF, JPEG or PNG file`, { file: name, cause: error });
  }
  const { width, height, channels } = result.info;
  return toRgb(result.data, width, height, channels, name);
}

/**
 * Decodes an image file (TIFF, JPEG, PNG; also WebP and GIF) to 8-bit RGB.
 * A missing file, a folder, or undecodable bytes give an `InputError` that names the file.
 *
 * @example
 * ```ts
 * const image = await decodeImageFile('data/ucm/images/1.tif'); // { width: 256, height: 256, data }
 * ```
 */
export async function decodeImageFile(file: string): Promise<RgbImage> {
  let size: number;
  try {
    const stat = await fsp.stat(file);
    if (!stat.isFile()) throw new InputError('expected an image file, found a folder or special file', { file });
    size = stat.size;
  } catch (error) {
    if (error instanceof InputError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? 'image file not found' : `cannot read image file (${code ?? String(error)})`, {
      file,
      cause: error,
    });
  }
  if (size === 0) throw new InputError('image file is empty (0 bytes)', { file });
  return decodeWithSharp(file, file);
}

/** Decodes image bytes held in memory. `name` is used in error messages. */
export function decodeImageBuffer(bytes: Uint8Array, name = '<image bytes>'): Promise<RgbImage> {
  if (bytes.length === 0) return Promise.reject(new InputError('image data is empty (0 bytes)', { file: name }));
  return decodeWithSharp(bytes, name);
}

// ---------------------------------------------------------------- PNG writer

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, payload: Uint8Array): Uint8Array {
  const typed = new Uint8Array(4 + payload.length);
  for (let i = 0; i < 4; i++) typed[i] = type.charCodeAt(i);
  typed.set(payload, 4);
  const out = new Uint8Array(12 + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, payload.length);
  out.set(typed, 4);
  view.setUint32(8 + payload.length, crc32(typed));
  return out;
}

/** Checks that `image` is a well-formed RGB image; `where` names the caller in the error. */
export function checkRgbImage(where: string, image: RgbImage): void {
  const ok =
    image !== null &&
    typeof image === 'object' &&
    Number.isInteger(image.width) &&
    Number.isInteger(image.height) &&
    image.width > 0 &&
    image.height > 0 &&
    image.data instanceof Uint8Array &&
    image.data.length === image.width * image.height * 3;
  if (!ok) {
    const found = image && typeof image === 'object' ? `${image.width}x${image.height} with ${image.data?.length} bytes` : String(image);
    throw new RangeError(`${where}: expected an RGB image with width*height*3 bytes and positive size, found ${found}`);
  }
}

/**
 * Encodes an RGB image as an 8-bit PNG (bytes). Synchronous and deterministic: the same pixels give the same
 * bytes, which keeps cached files and reports reproducible.
 */
export function encodePng(image: RgbImage): Uint8Array {
  checkRgbImage('encodePng', image);
  const { width, height, data } = image;
  const header = new Uint8Array(13);
  const headerView = new DataView(header.buffer);
  headerView.setUint32(0, width);
  headerView.setUint32(4, height);
  header[8] = 8; // bits per channel
  header[9] = 2; // truecolour RGB; compression, filter and interlace bytes stay 0
  // Every row uses the "Up" filter (difference to the row above): smooth aerial images and flat masks turn into
  // small numbers that deflate well, at the cost of one subtraction per byte.
  const stride = width * 3;
  const filtered = new Uint8Array(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    const out = y * (stride + 1);
    const row = y * stride;
    filtered[out] = 2;
    if (y === 0) {
      filtered.set(data.subarray(0, stride), out + 1);
    } else {
      for (let i = 0; i < stride; i++) filtered[out + 1 + i] = (data[row + i]! - data[row - stride + i]!) & 0xff;
    }
  }
  const parts = [
    Uint8Array.from(PNG_SIGNATURE),
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(filtered, { level: 6 })),
    pngChunk('IEND', new Uint8Array(0)),
  ];
  const png = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    png.set(part, offset);
    offset += part.length;
  }
  return png;
}
