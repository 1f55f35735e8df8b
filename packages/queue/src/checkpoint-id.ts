/**
 * The content id of a checkpoint, so that results of two checkpoints are never mixed up: two folders with the same
 * files have the same id wherever they lie, and any change to a file that decides a caption changes it.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { CheckpointError } from '@s2cpnet/core';

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  } catch (error) {
    throw new CheckpointError(`${file}: cannot read it to compute the checkpoint id (${(error as Error).message})`, { cause: error });
  }
  return hash.digest('hex');
}

/**
 * The checkpoint id: the sha256 of the lines `<role> <sha256 of the file>` for checkpoint.json (config, vocabulary
 * size, mask settings) and the files it names that decide a caption: the vocabulary, the noun classes, and the
 * weights (`<weights>.json` and `<weights>.bin`). Training state and optimizer files are left out (they change no
 * caption). `dir` is a checkpoint folder as `loadCheckpoint` resolved it (`captioner.checkpoint.dir`).
 */
export async function checkpointId(dir: string): Promise<string> {
  const description = path.join(dir, 'checkpoint.json');
  let json: { files?: Record<string, unknown> };
  try {
    json = JSON.parse(await fsp.readFile(description, 'utf8'));
  } catch (error) {
    throw new CheckpointError(`${description}: cannot read it to compute the checkpoint id (${(error as Error).message})`, { cause: error });
  }
  const files = json.files ?? { vocabulary: 'vocabulary.json', nouns: 'nouns.json', weights: 'weights' };
  const named = (key: string, suffix = '') => {
    const name = files[key];
    if (typeof name !== 'string' || name === '') throw new CheckpointError(`${description}: $.files.${key}: expected a file name, found ${JSON.stringify(name)}`);
    return path.join(dir, `${name}${suffix}`);
  };
  const parts: [string, string][] = [
    ['checkpoint.json', description],
    ['vocabulary', named('vocabulary')],
    ['nouns', named('nouns')],
    ['weights.json', named('weights', '.json')],
    ['weights.bin', named('weights', '.bin')],
  ];
  const lines: string[] = [];
  for (const [role, file] of parts) lines.push(`${role} ${await sha256File(file)}\n`);
  return createHash('sha256').update(lines.join('')).digest('hex');
}

/** Decoding settings that change a caption; part of the key results are stored under. */
export interface CaptionSettings {
  beam: number;
  maxLength: number;
  lengthPenalty: number;
  /** Mask working size, or null for a model without the mask view. */
  maskSize: number | null;
}

/**
 * The id results are stored under: the checkpoint id and the decoding settings, e.g.
 * `3f2a...e1:beam3-len25-lp0-mask224`.
 */
export function captionerId(checkpoint: string, settings: CaptionSettings): string {
  return `${checkpoint}:beam${settings.beam}-len${settings.maxLength}-lp${settings.lengthPenalty}-mask${settings.maskSize ?? 'none'}`;
}
