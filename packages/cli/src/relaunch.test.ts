import { describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), 'testing', 'fixtures', 'relaunch-entry.ts');

/** Whether a process runs (a zombie waiting for a reaper counts as gone). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

async function waitUntil(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

/** Starts the parent that relaunches itself; resolves once the worker has said its pid. */
async function start(mode: string): Promise<{ parent: ChildProcess; worker: number; output: () => string }> {
  const parent = spawn(process.execPath, ['--conditions=@s2cpnet/source', '--import', 'tsx', ENTRY, mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, S2CPNET_RELAUNCHED: '' },
  });
  let text = '';
  parent.stdout!.on('data', (d: Buffer) => void (text += d.toString()));
  const found = await waitUntil(() => /worker (\d+)/.test(text), 60_000);
  if (!found) throw new Error(`no worker started: ${text}`);
  return { parent, worker: Number(/worker (\d+)/.exec(text)![1]), output: () => text };
}

describe('relaunchWithWasmThreads', () => {
  it('the worker stops when its parent is killed with SIGKILL (no orphan left training)', async () => {
    const { parent, worker } = await start('plain');
    expect(running(worker)).toBe(true);
    parent.kill('SIGKILL');
    const gone = await waitUntil(() => !running(worker), 5000);
    if (!gone) process.kill(worker, 'SIGKILL');
    expect(gone).toBe(true);
  });

  it('a worker that handles SIGTERM (as train does) gets it when the parent is killed, and stops cleanly', async () => {
    const { parent, worker, output } = await start('graceful');
    parent.kill('SIGKILL');
    const gone = await waitUntil(() => !running(worker), 5000);
    if (!gone) process.kill(worker, 'SIGKILL');
    expect(gone).toBe(true);
    expect(output()).toContain('worker: SIGTERM, stopping');
  });

  it('still passes SIGTERM on to the worker and exits with its code', async () => {
    const { parent, worker, output } = await start('graceful');
    const exited = new Promise<number | null>((resolve) => parent.on('exit', (code) => resolve(code)));
    parent.kill('SIGTERM');
    expect(await exited).toBe(130);
    expect(output()).toContain('worker: SIGTERM, stopping');
    expect(await waitUntil(() => !running(worker), 5000)).toBe(true);
  });
});
