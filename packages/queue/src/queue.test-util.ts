// Helpers the queue tests share (test-only: *.test-util.ts files are not published).
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { benchmarkImage, encodePng } from '@s2cpnet/data';
import { saveTinyCheckpoint as saveTiny } from '../../model/src/tiny-checkpoint.test-util';

export { tinyConfig } from '../../model/src/tiny-checkpoint.test-util';

/** Saves a tiny random checkpoint (needs a tfjs backend set up); another `seed` gives other weights. */
export function saveTinyCheckpoint(dir: string, seed = 1): Promise<void> {
  return saveTiny(dir, { seed });
}

/** Writes `count` distinct 64 px PNG scenes named img-00.png ... into `dir`; returns their paths. */
export function writeTinyImages(dir: string, count: number, size = 64): string[] {
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < count; i++) {
    const file = path.join(dir, `img-${String(i).padStart(2, '0')}.png`);
    writeFileSync(file, encodePng(benchmarkImage(size, 100 + i)));
    files.push(file);
  }
  return files;
}
