// Helpers the CLI's command tests share (test-only: *.test-util.ts files are not published).
import { tinyConfig } from '../../../model/src/tiny-checkpoint.test-util';
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
  return tinyConfig();
}
