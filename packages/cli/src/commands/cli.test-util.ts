// Helpers the CLI's command tests share (test-only: *.test-util.ts files are not published).
import { presetConfig } from '@s2cpnet/model';
import { main } from '../main';

/** Runs `s2cpnet ARGS` in-process in `cwd`, collecting its stdout and stderr. */
export async function runCli(args: string[], cwd: string): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), isTTY: false, cwd });
  return { code, out: out.join(''), err: err.join('') };
}

/** The s2cpnet preset at toy sizes (64 px, one block per stage, width 32): trains in seconds on the cpu backend. */
export function tinyConfigJson() {
  const c = presetConfig('s2cpnet');
  return {
    ...c,
    name: 'tiny',
    encoder: { type: 'resnet50' as const, inputSize: 64, grid: 'native' as const, blocksPerStage: [1, 1, 1, 1], baseWidth: 4, freeze: 'none' as const },
    spatialEnhancer: { outputChannels: 32 },
    fusion: { ...c.fusion, dim: 32, heads: 4, units: 1 },
    categoryHead: { type: 'multi-label' as const, dim: 32, numHeads: 4 },
    captionDecoder: { ...c.captionDecoder, dim: 32, numLayers: 1, numHeads: 4 },
  };
}
