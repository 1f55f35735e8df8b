import { promises as fsp } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { ConfigError, InputError } from '@s2cpnet/core';
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

/**
 * Default cap on decoded pixels (width x height) per image: 64 megapixels, e.g. 8000x8000. Decoding such an image
 * takes about 200 MB (3 bytes per pixel) plus one copy; a bigger scene is refused from its header, before any
 * pixel is decoded, with a message naming the file, its size and the cap. Caption datasets are 224-1024 px.
 * Change it per call (`maxPixels`), with the commands' `--max-pixels N`, or with `S2CPNET_MAX_IMAGE_PIXELS`.
 */
export const DEFAULT_MAX_IMAGE_PIXELS = 64_000_000;

/** Reads a pixel count: an integer (`2500000`) or megapixels with an `M` suffix (`100M`, `2.5M`). */
export function parsePixelCount(text: string, name = '--max-pixels'): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([mM]?)\s*$/.exec(text);
  const value = match ? Math.round(Number(match[1]) * (match[2] ? 1e6 : 1)) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new ConfigError(name, `expected a pixel count such as 64000000 or 64M, found ${JSON.stringify(text)}`);
  }
  return value;
}

/** The cap in force: `option` when given, else `S2CPNET_MAX_IMAGE_PIXELS`, else `DEFAULT_MAX_IMAGE_PIXELS`. */
export function maxImagePixels(option?: number, env: NodeJS.ProcessEnv = process.env): number {
  if (option !== undefined) {
    if (!Number.isSafeInteger(option) || option < 1) throw new ConfigError('maxPixels', `expected a positive integer, found ${option}`);
    return option;
  }
  const fromEnv = env.S2CPNET_MAX_IMAGE_PIXELS;
  return fromEnv ? parsePixelCount(fromEnv, 'S2CPNET_MAX_IMAGE_PIXELS') : DEFAULT_MAX_IMAGE_PIXELS;
}

function megapixels(pixels: number): string {
  const mp = pixels / 1e6;
  return mp >= 1 ? mp.toFixed(1) : String(Number(mp.toPrecision(3)));
}

/**
 * A short message for a file-system error code, e.g. `describeFsError('EACCES', 'image file')` ->
 * `permission denied: cannot read the image file (EACCES); check its permissions`. `action` is the verb
 * (`read`, `create`, `write`).
 */
export function describeFsError(code: string | undefined, what: string, action = 'read'): string {
  switch (code) {
    case 'ENOENT':
      return `${what} not found`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied: cannot ${action} the ${what} (${code}); check its permissions and owner`;
    case 'EISDIR':
      return `expected the ${what}, found a folder`;
    case 'ENOTDIR':
      return `cannot ${action} the ${what}: a part of the path is a file, not a folder (ENOTDIR)`;
    case 'EROFS':
      return `cannot ${action} the ${what}: read-only file system (EROFS)`;
    case 'EEXIST':
      return `cannot ${action} the ${what}: a file is in the way (EEXIST)`;
    case 'ELOOP':
      return `cannot ${action} the ${what}: too many levels of symbolic links (ELOOP)`;
    case 'ENOSPC':
      return `cannot ${action} the ${what}: no space left on the device (ENOSPC)`;
    case 'ENAMETOOLONG':
      return `cannot ${action} the ${what}: the path is too long (ENAMETOOLONG)`;
    default:
      return `cannot ${action} the ${what} (${code ?? 'unknown error'})`;
  }
}

function decodeFailure(error: unknown, name: string): InputError {
  const reason = (error instanceof Error ? error.message : String(error)).split('\n')[0];
  return new InputError(`cannot decode image (${reason}); expected a readable TIFF, JPEG or PNG file`, { file: name, cause: error });
}

type SharpInstance = ReturnType<SharpFactory>;

/** Opens `input` with sharp and checks its size from the header (no pixel is decoded). */
async function openWithSharp(input: string | Uint8Array, name: string, maxPixels: number): Promise<{ image: SharpInstance; width: number; height: number }> {
  const sharp = await loadSharp();
  // The header is read without libvips' limit (which would only say "exceeds pixel limit"), to name the size.
  let width: number | undefined;
  let height: number | undefined;
  try {
    ({ width, height } = await sharp(input, { failOn: 'error', limitInputPixels: false }).metadata());
  } catch (error) {
    throw decodeFailure(error, name);
  }
  if (!width || !height) throw new InputError('cannot decode image (no width and height in its header); expected a readable TIFF, JPEG or PNG file', { file: name });
  if (width * height > maxPixels) {
    throw new InputError(
      `image is ${width}x${height} pixels (${megapixels(width * height)} megapixels), more than the limit of ` +
        `${megapixels(maxPixels)} megapixels; shrink it first (e.g. vips resize, or ImageMagick -resize), or raise ` +
        'the limit with --max-pixels N or S2CPNET_MAX_IMAGE_PIXELS=N',
      { file: name },
    );
  }
  // failOn 'error' also rejects truncated files, which would otherwise decode with a grey band at the bottom.
  // autoOrient applies an EXIF rotation, as every image viewer does. limitInputPixels is libvips' own guard.
  const image = sharp(input, { failOn: 'error', autoOrient: true, limitInputPixels: maxPixels });
  return { image, width, height };
}

async function decodeWithSharp(input: string | Uint8Array, name: string, maxPixels: number): Promise<RgbImage> {
  const { image } = await openWithSharp(input, name, maxPixels);
  let result: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    result = await image
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw decodeFailure(error, name);
  }
  const { width, height, channels } = result.info;
  return toRgb(result.data, width, height, channels, name);
}

/** Options of `decodeImageFile` and `probeImageFile`. */
export interface DecodeImageOptions {
  /** Largest width x height accepted (default `maxImagePixels()`: `S2CPNET_MAX_IMAGE_PIXELS` or 64 megapixels). */
  maxPixels?: number;
}

/** Checks that `file` is a regular, non-empty file this process may read; errors name the file and the reason. */
async function checkReadableFile(file: string): Promise<void> {
  let size: number;
  try {
    const stat = await fsp.stat(file);
    if (!stat.isFile()) throw new InputError('expected an image file, found a folder or special file', { file });
    size = stat.size;
    // stat needs no read permission: opening does, and says EACCES where sharp would say "unsupported format".
    await (await fsp.open(file, 'r')).close();
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw new InputError(describeFsError((error as NodeJS.ErrnoException).code, 'image file'), { file, cause: error });
  }
  if (size === 0) throw new InputError('image file is empty (0 bytes)', { file });
}

/**
 * Reads an image file's width and height from its header, with the same checks as `decodeImageFile` (readable,
 * decodable header, within the pixel cap) but without decoding pixels: cheap enough to check every input first.
 */
export async function probeImageFile(file: string, options: DecodeImageOptions = {}): Promise<{ width: number; height: number }> {
  const maxPixels = maxImagePixels(options.maxPixels);
  await checkReadableFile(file);
  const { width, height } = await openWithSharp(file, file, maxPixels);
  return { width, height };
}

/**
 * Decodes an image file (TIFF, JPEG, PNG; also WebP and GIF) to 8-bit RGB.
 * A missing, unreadable (permission) or empty file, a folder, undecodable bytes, or an image over the pixel cap
 * (`maxPixels`, default 64 megapixels, checked from the header before decoding) give an `InputError` that names
 * the file.
 *
 * @example
 * ```ts
 * const image = await decodeImageFile('data/ucm/images/1.tif'); // { width: 256, height: 256, data }
 * ```
 */
export async function decodeImageFile(file: string, options: DecodeImageOptions = {}): Promise<RgbImage> {
  const maxPixels = maxImagePixels(options.maxPixels);
  await checkReadableFile(file);
  return decodeWithSharp(file, file, maxPixels);
}

/** Decodes image bytes held in memory. `name` is used in error messages. */
export function decodeImageBuffer(bytes: Uint8Array, name = '<image bytes>', options: DecodeImageOptions = {}): Promise<RgbImage> {
  if (bytes.length === 0) return Promise.reject(new InputError('image data is empty (0 bytes)', { file: name }));
  try {
    return decodeWithSharp(bytes, name, maxImagePixels(options.maxPixels));
  } catch (error) {
    return Promise.reject(error);
  }
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
