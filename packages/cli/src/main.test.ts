import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { main } from './main';
import { initBackend, BACKEND_NAMES } from './backend';
import { S2CPNetError } from '@s2cpnet/core';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    context: { stdout: (t: string) => void out.push(t), stderr: (t: string) => void err.push(t), isTTY: false },
  };
}

describe('s2cpnet command dispatch', () => {
  it('prints usage and exits 2 without a command', async () => {
    const io = capture();
    expect(await main([], io.context)).toBe(2);
    expect(io.out.join('')).toContain('Usage: s2cpnet <command>');
    expect(io.out.join('')).toContain('doctor');
  });

  it('rejects an unknown command and lists the valid ones', async () => {
    const io = capture();
    expect(await main(['trian'], io.context)).toBe(2);
    expect(io.err.join('')).toMatch(/unknown command "trian"; commands: .*doctor/);
  });

  it('prints the version', async () => {
    const io = capture();
    expect(await main(['--version'], io.context)).toBe(0);
    expect(io.out.join('')).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it('rejects an unknown option of a command with a usage error', async () => {
    const io = capture();
    expect(await main(['doctor', '--jsn'], io.context)).toBe(2);
    expect(io.err.join('')).toContain("Unknown option '--jsn'");
  });

  it('rejects an unknown backend, naming the valid ones', async () => {
    const io = capture();
    expect(await main(['doctor', '--backend', 'metal'], io.context)).toBe(3);
    expect(io.err.join('')).toContain('unknown backend "metal" (from --backend); valid backends: tensorflow, webgpu, wasm, cpu');
  });

  it('rejects a malformed --threads value', async () => {
    const io = capture();
    expect(await main(['doctor', '--threads', 'two'], io.context)).toBe(2);
    expect(io.err.join('')).toContain('--threads must be a positive integer');
  });
});

describe('initBackend', () => {
  it('falls back from tensorflow to wasm when tfjs-node is not installed, and says why', async () => {
    const info = await initBackend();
    expect(info.backend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(info.notes.some((n) => n.includes('@tensorflow/tfjs-node-gpu'))).toBe(true);
    expect(info.threads).toBeGreaterThanOrEqual(1);
    expect(info.tfjsVersion).toBe('4.22.0');
  });

  it('honours an explicit backend and S2CPNET_BACKEND', async () => {
    expect((await initBackend({ backend: 'cpu' })).backend).toBe('cpu');
    process.env.S2CPNET_BACKEND = 'wasm';
    try {
      expect((await initBackend()).backend).toBe('wasm');
    } finally {
      delete process.env.S2CPNET_BACKEND;
    }
  });

  it('fails with a BackendError when the forced backend is not installed', async () => {
    const error = await initBackend({ backend: 'tensorflow' }).catch((e: unknown) => e);
    expect(S2CPNetError.isInstance(error)).toBe(true);
    expect(String((error as Error).message)).toContain('could not initialise backend tensorflow');
  });

  it('knows the four backends, fastest first', () => {
    expect([...BACKEND_NAMES]).toEqual(['tensorflow', 'webgpu', 'wasm', 'cpu']);
  });
});

describe('s2cpnet doctor', () => {
  it('--json reports version, backend, threads and a measured matMul speed', async () => {
    const io = capture();
    expect(await main(['doctor', '--json', '--backend', 'wasm'], io.context)).toBe(0);
    const report = JSON.parse(io.out.join(''));
    expect(report.tfjsVersion).toBe('4.22.0');
    expect(report.backend).toBe('wasm');
    expect(report.threads).toBeGreaterThanOrEqual(1);
    expect(report.matmulGflops).toBeGreaterThan(0);
    expect(report.nodeBackendPackages['@tensorflow/tfjs-node-gpu']).toBe(false);
  });
});
