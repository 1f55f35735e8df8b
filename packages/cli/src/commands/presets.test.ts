import { describe, expect, it, vi } from 'vitest';
import * as model from '@s2cpnet/model';
import { runCli } from './cli.test-util';

// `s2cpnet presets` is instant by default: it builds no model unless the parameter counts are asked for.

const built = vi.hoisted(() => ({ count: 0 }));
vi.mock('@s2cpnet/model', async (importOriginal) => {
  const original = await importOriginal<typeof import('@s2cpnet/model')>();
  return {
    ...original,
    buildS2CPNet: (...args: Parameters<typeof original.buildS2CPNet>) => {
      built.count += 1;
      return original.buildS2CPNet(...args);
    },
  };
});

describe('s2cpnet presets', () => {
  it('--json lists every preset with its switches and config, building no model', async () => {
    const { code, out } = await runCli(['presets', '--json'], process.cwd());
    expect(code).toBe(0);
    const json = JSON.parse(out) as { countedWith: unknown; presets: { name: string; masks: boolean; parameters: number | null; config: model.S2CPNetConfig }[] };
    expect(json.presets.map((p) => p.name)).toEqual([...model.PRESET_NAMES]);
    expect(json.presets.find((p) => p.name === 'lite')!.config.encoder.type).toBe('mobilenet-v1');
    expect(json.presets.every((p) => p.parameters === null)).toBe(true);
    expect(json.countedWith).toBeNull();
    expect(built.count).toBe(0);
  });

  it('the table says how to get parameter counts, building no model', async () => {
    const { code, out } = await runCli(['presets'], process.cwd());
    expect(code).toBe(0);
    expect(out).toMatch(/^preset\s+masks\s+SSFE/);
    expect(out).toMatch(/lite .*MobileNetV1 0\.75, frozen/);
    expect(out).toMatch(/s2cpnet presets --params/);
    expect(built.count).toBe(0);
  });
});
