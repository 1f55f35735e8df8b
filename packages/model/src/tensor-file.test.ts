import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CheckpointError } from '@s2cpnet/core';
import { readTensorFile, writeTensorFile } from './tensor-file';

function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 's2c-tensors-'));
  return fn(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

function ramp(n: number, lastDim: number): Float32Array {
  // channel c spans a different range, so a per-tensor scale would be visibly worse than per-channel
  return new Float32Array(n).map((_, i) => Math.sin(i * 0.37) * (1 + (i % lastDim)) + (i % lastDim) * 0.1);
}

describe('tensor files', () => {
  it('round-trips float32 exactly', () =>
    withDir(async (dir) => {
      const values = ramp(60, 5);
      await writeTensorFile(dir, 'w', [{ name: 'a', shape: [12, 5], values }]);
      const back = await readTensorFile(dir, 'w');
      expect(Array.from(back.get('a')!.values)).toEqual(Array.from(values));
    }));

  it('quantises large tensors to uint8 per group of rows of each channel within half a step, and keeps small ones float32', () =>
    withDir(async (dir) => {
      const big = ramp(4096, 16); // 256 rows x 16 channels: 8 groups of 32 rows per channel
      const small = ramp(16, 16);
      await writeTensorFile(dir, 'q', [{ name: 'kernel', shape: [256, 16], values: big }, { name: 'bias', shape: [16], values: small }], { quantize: 'uint8' });
      const manifest = JSON.parse(readFileSync(path.join(dir, 'q.json'), 'utf8'));
      expect(manifest.tensors.map((t: { dtype: string }) => t.dtype)).toEqual(['uint8', 'float32']);
      const groups = 8 * 16;
      expect(statSync(path.join(dir, 'q.bin')).size).toBe(4096 + groups * 8 + 16 * 4);
      const back = await readTensorFile(dir, 'q');
      expect(Array.from(back.get('bias')!.values)).toEqual(Array.from(small));
      const restored = back.get('kernel')!.values;
      // each group's step is its range / 255; the error is at most half a step
      let worst = 0;
      for (let c = 0; c < 16; c++) {
        for (let g = 0; g < 8; g++) {
          const rows = Array.from({ length: 32 }, (_, r) => (g * 32 + r) * 16 + c);
          const values = rows.map((i) => big[i]!);
          const step = (Math.max(...values) - Math.min(...values)) / 255;
          for (const i of rows) worst = Math.max(worst, Math.abs(restored[i]! - big[i]!) / step);
        }
      }
      expect(worst).toBeLessThanOrEqual(0.5 + 1e-3);
      expect(worst).toBeGreaterThan(0); // it really was quantised
    }));

  it('rejects a uint8 entry without its group parameters, naming the file and JSON path', () =>
    withDir(async (dir) => {
      await writeTensorFile(dir, 'q', [{ name: 'kernel', shape: [128, 8], values: ramp(1024, 8) }], { quantize: 'uint8' });
      const file = path.join(dir, 'q.json');
      const manifest = JSON.parse(readFileSync(file, 'utf8'));
      delete manifest.tensors[0].groupSize;
      writeFileSync(file, JSON.stringify(manifest));
      const error = await readTensorFile(dir, 'q').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CheckpointError);
      expect(String((error as Error).message)).toMatch(/q\.json at \$\.tensors\[0\]: a uint8 tensor needs a positive integer "groupSize"/);
    }));
});
