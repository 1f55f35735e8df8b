// The webgpu group (S2CPNET_TEST_BACKENDS=webgpu): the demo end to end (generate, prepare, train one epoch,
// evaluate, report) on webgpu and on wasm, in two processes of the built CLI, must agree.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const bin = path.resolve(__dirname, '../../dist/bin.js');
const work = mkdtempSync(path.join(os.tmpdir(), 's2cpnet-webgpu-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function demo(backend: 'webgpu' | 'wasm') {
  const out = path.join(work, backend);
  const { stdout } = await run(process.execPath, [bin, 'demo', '--backend', backend, '--out', out, '--images', '60', '--epochs', '1', '--json'], {
    env: { ...process.env, S2CPNET_THREADS: '1' },
    maxBuffer: 64 * 1024 * 1024,
  });
  const epochs = readFileSync(path.join(out, 'run', 'log.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { trainLoss: number; val: Record<string, number> });
  const scores = JSON.parse(readFileSync(path.join(out, 'scores.json'), 'utf8')) as { backend: string; corpus: Record<string, number> };
  const predictions = JSON.parse(readFileSync(path.join(out, 'predictions_test.json'), 'utf8')) as { image_id: string; caption: string }[];
  return { stdout, epochs, scores, predictions };
}

describe('s2cpnet --backend webgpu demo', () => {
  it('finishes, and its training loss, scores and captions match the wasm run', async () => {
    expect(existsSync(bin), `${bin} missing: build the CLI first (npx nx run-many -t build --projects=tag:publish)`).toBe(true);
    const gpu = await demo('webgpu');
    const cpu = await demo('wasm');
    expect(gpu.scores.backend).toBe('webgpu');
    expect(cpu.scores.backend).toBe('wasm');
    expect(gpu.epochs).toHaveLength(1);
    const [g, c] = [gpu.epochs[0]!, cpu.epochs[0]!];
    expect(Number.isFinite(g.trainLoss)).toBe(true);
    expect(Math.abs(g.trainLoss - c.trainLoss) / c.trainLoss).toBeLessThan(1e-3);
    expect(Math.abs(g.val['CIDEr']! - c.val['CIDEr']!)).toBeLessThan(0.02);
    for (const metric of ['Bleu_1', 'METEOR', 'ROUGE_L', 'CIDEr']) {
      expect(Math.abs(gpu.scores.corpus[metric]! - cpu.scores.corpus[metric]!), metric).toBeLessThan(0.02);
    }
    expect(gpu.predictions.map((p) => p.image_id)).toEqual(cpu.predictions.map((p) => p.image_id));
    const same = gpu.predictions.filter((p, i) => p.caption === cpu.predictions[i]!.caption).length;
    expect(same / cpu.predictions.length).toBeGreaterThanOrEqual(0.8);
  }, 600_000);
});
