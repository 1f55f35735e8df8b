import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ConfigError, writeFileAtomic } from '@s2cpnet/core';

/** A feature map of one image: float32 values and their shape (e.g. [7, 7, 2048]). */
export interface CachedFeature {
  shape: number[];
  data: Float32Array;
}

const MAGIC = 0x43463253; // "S2FC" read as a little-endian uint32
const VERSION = 1;

/** Makes a backbone id safe as one folder name; a hash suffix keeps distinct ids distinct after cleaning. */
function folderName(backboneId: string): string {
  const cleaned = backboneId.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80);
  if (cleaned === backboneId && cleaned.length > 0 && cleaned !== '.' && cleaned !== '..') return cleaned;
  return `${cleaned || 'backbone'}-${createHash('sha256').update(backboneId).digest('hex').slice(0, 10)}`;
}

function encode(imageId: string, feature: CachedFeature): Uint8Array {
  const idBytes = new TextEncoder().encode(imageId);
  const idPadded = Math.ceil(idBytes.length / 4) * 4;
  const headerBytes = 12 + idPadded + 4 + 4 * feature.shape.length;
  const out = new Uint8Array(headerBytes + 4 * feature.data.length);
  const view = new DataView(out.buffer);
  let o = 0;
  view.setUint32(o, MAGIC, true); o += 4;
  view.setUint32(o, VERSION, true); o += 4;
  view.setUint32(o, idBytes.length, true); o += 4;
  out.set(idBytes, o); o += idPadded;
  view.setUint32(o, feature.shape.length, true); o += 4;
  for (const dim of feature.shape) { view.setUint32(o, dim, true); o += 4; }
  for (let i = 0; i < feature.data.length; i++) { view.setFloat32(o, feature.data[i]!, true); o += 4; }
  return out;
}

/** Parses a cache file; undefined when it is not a complete entry for `imageId`. */
function decode(bytes: Uint8Array, imageId: string): CachedFeature | undefined {
  if (bytes.length < 16) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 0;
  if (view.getUint32(o, true) !== MAGIC || view.getUint32(o + 4, true) !== VERSION) return undefined;
  o += 8;
  const idLength = view.getUint32(o, true); o += 4;
  if (o + idLength > bytes.length) return undefined;
  if (new TextDecoder().decode(bytes.subarray(o, o + idLength)) !== imageId) return undefined;
  o += Math.ceil(idLength / 4) * 4;
  if (o + 4 > bytes.length) return undefined;
  const rank = view.getUint32(o, true); o += 4;
  if (rank > 8 || o + 4 * rank > bytes.length) return undefined;
  const shape: number[] = [];
  for (let i = 0; i < rank; i++) { shape.push(view.getUint32(o, true)); o += 4; }
  const count = shape.reduce((a, b) => a * b, 1);
  if (bytes.length - o !== 4 * count) return undefined;
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) { data[i] = view.getFloat32(o, true); o += 4; }
  return { shape, data };
}

function checkFeature(feature: CachedFeature, where: string): void {
  const count = Array.isArray(feature?.shape) ? feature.shape.reduce((a, b) => a * b, 1) : NaN;
  if (
    !Array.isArray(feature?.shape) ||
    !feature.shape.every((d) => Number.isInteger(d) && d > 0) ||
    !(feature.data instanceof Float32Array) ||
    feature.data.length !== count
  ) {
    throw new RangeError(
      `${where}: expected a feature {shape: positive integers, data: Float32Array of their product}, found shape ${JSON.stringify(feature?.shape)} with ${feature?.data?.length} values`,
    );
  }
}

/**
 * An on-disk store of backbone features for frozen-encoder training: each image's feature map is computed once and
 * read back in later epochs. One little-endian float32 file per (image, backbone): `<dir>/<backbone id>/<sha-256 of
 * the image id>.f32`, with a small header (magic, version, image id, shape). Files are written atomically; a
 * truncated or foreign file counts as missing and is recomputed.
 *
 * @example
 * ```ts
 * const cache = new FeatureCache({ dir: 'prepared/features' });
 * const feature = await cache.getOrCompute('1.jpg', 'resnet50-imagenet-224', () => backboneFeatures(pixels));
 * ```
 */
export class FeatureCache {
  readonly dir: string;
  /** Hits and computed entries since construction. */
  readonly stats = { hits: 0, computed: 0 };
  private readonly inFlight = new Map<string, Promise<CachedFeature>>();

  constructor(options: { dir: string }) {
    if (typeof options?.dir !== 'string' || options.dir.length === 0) {
      throw new ConfigError('$.dir', `FeatureCache needs a folder path, found ${JSON.stringify(options?.dir)}`);
    }
    this.dir = path.resolve(options.dir);
  }

  fileFor(imageId: string, backboneId: string): string {
    if (typeof backboneId !== 'string' || backboneId.length === 0) {
      throw new ConfigError('$.backboneId', 'expected a non-empty backbone id (it keeps features of different backbones apart)');
    }
    const hash = createHash('sha256').update(imageId).digest('hex');
    return path.join(this.dir, folderName(backboneId), `${hash}.f32`);
  }

  /** The cached feature, or undefined when there is none (or the file is incomplete). */
  async get(imageId: string, backboneId: string): Promise<CachedFeature | undefined> {
    let bytes: Uint8Array;
    try {
      bytes = await fsp.readFile(this.fileFor(imageId, backboneId));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    return decode(bytes, imageId);
  }

  async put(imageId: string, backboneId: string, feature: CachedFeature): Promise<void> {
    checkFeature(feature, 'FeatureCache.put');
    await writeFileAtomic(this.fileFor(imageId, backboneId), encode(imageId, feature));
  }

  /** Reads the feature, or computes, stores and returns it. Concurrent calls for one entry compute once. */
  getOrCompute(
    imageId: string,
    backboneId: string,
    compute: () => CachedFeature | Promise<CachedFeature>,
  ): Promise<CachedFeature> {
    const file = this.fileFor(imageId, backboneId);
    let pending = this.inFlight.get(file);
    if (!pending) {
      pending = (async () => {
        const cached = await this.get(imageId, backboneId);
        if (cached) {
          this.stats.hits++;
          return cached;
        }
        const feature = await compute();
        await this.put(imageId, backboneId, feature);
        this.stats.computed++;
        return feature;
      })().finally(() => this.inFlight.delete(file));
      this.inFlight.set(file, pending);
    }
    return pending;
  }
}
