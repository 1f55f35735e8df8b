import { describe, expect, it } from 'vitest';
import { runCli } from './cli.test-util';
import { TRAIN_OPTIONS } from './train';
import { PREPARE_OPTIONS } from './prepare';
import { SCORE_OPTIONS } from './score';
import { EVALUATE_OPTIONS } from './evaluate';
import { PRESETS_OPTIONS } from './presets';
import { EXPORT_OPTIONS } from './export';
import { BENCH_OPTIONS } from './bench';
import { DOCTOR_OPTIONS } from './doctor';
import { DEMO_OPTIONS } from './demo';
import { CAPTION_SCENE_OPTIONS } from './caption-scene';
import { QUEUE_OPTIONS } from './queue';
import { WORKER_OPTIONS } from './worker';

// Every `--help` lists every option its parser accepts, and says the default of each option that takes a value.
// (`caption` has its own owner and test.)

const PARSERS: Record<string, Record<string, { type: 'string' | 'boolean'; default?: unknown }>> = {
  train: TRAIN_OPTIONS,
  prepare: PREPARE_OPTIONS,
  score: SCORE_OPTIONS,
  evaluate: EVALUATE_OPTIONS,
  presets: PRESETS_OPTIONS,
  export: EXPORT_OPTIONS,
  bench: BENCH_OPTIONS,
  doctor: DOCTOR_OPTIONS,
  demo: DEMO_OPTIONS,
  'caption-scene': CAPTION_SCENE_OPTIONS,
  queue: QUEUE_OPTIONS,
  worker: WORKER_OPTIONS,
};

/** The help text of one option: its line and the indented lines that continue it, up to the next option. */
function entryOf(help: string, flag: string): string | null {
  const lines = help.split('\n');
  const start = lines.findIndex((line) => new RegExp(`^\\s+(?:-\\w, )?--${flag}(?![\\w-])`).test(line) || new RegExp(`^\\s+--[\\w-]+, --${flag}(?![\\w-])`).test(line));
  if (start < 0) return null;
  const entry = [lines[start]!];
  for (const line of lines.slice(start + 1)) {
    if (!/^\s{6,}\S/.test(line) || /^\s+--/.test(line)) break;
    entry.push(line);
  }
  return entry.join('\n');
}

describe('--help of every command', () => {
  it.each(Object.keys(PARSERS))('%s --help lists every option with its default', async (name) => {
    const { code, out } = await runCli([name, '--help'], process.cwd());
    expect(code).toBe(0);
    expect(out).toMatch(/Options( \(default in brackets\))?:/);
    for (const [flag, spec] of Object.entries(PARSERS[name]!)) {
      const entry = entryOf(out, flag);
      expect(entry, `${name} --help: --${flag}`).not.toBeNull();
      // An option that takes a value says its default, or that it is required (in words, or in brackets where the
      // help says "default in brackets").
      const said = /Options \(default in brackets\):/.test(out) ? /\[[^\]]+\]/ : /default|required/;
      if (spec.type === 'string') expect(entry, `${name} --help: the default of --${flag}`).toMatch(said);
    }
  });
});
