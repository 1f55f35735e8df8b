import { parseArgs } from 'node:util';
import { PRESETS, PRESET_NAMES, buildS2CPNet, presetConfig } from '@s2cpnet/model';
import type { Command } from '../command';
import { ExitCode } from '../command';
import { initBackend } from '../backend';

/** Vocabulary and class counts the parameter column assumes (UCM-sized). */
const COUNT_VOCAB = 300;
const COUNT_CLASSES = 90;

export const presetsCommand: Command = {
  name: 'presets',
  summary: 'List the model presets (the paper ablations and lite) with their parts and parameter counts',
  usage: 's2cpnet presets [--json] [--no-params]',
  async run(argv, context) {
    const { values } = parseArgs({ args: argv, strict: true, options: { json: { type: 'boolean', default: false }, 'no-params': { type: 'boolean', default: false } } });
    if (!values['no-params']) await initBackend({ ...context.backend });
    const rows = PRESET_NAMES.map((name) => {
      const p = PRESETS[name];
      let parameters: number | null = null;
      if (!values['no-params']) {
        const model = buildS2CPNet(presetConfig(name), { vocabSize: COUNT_VOCAB, numClasses: COUNT_CLASSES });
        parameters = model.countParams();
        model.dispose();
      }
      return { name, ...p, parameters, config: presetConfig(name) };
    });
    if (values.json) {
      context.stdout(`${JSON.stringify({ countedWith: { vocabSize: COUNT_VOCAB, numClasses: COUNT_CLASSES }, presets: rows }, null, 2)}\n`);
      return ExitCode.ok;
    }
    const header = ['preset', 'masks', 'SSFE', 'fusion', 'nouns', 'decoder', 'params (M)'];
    const table = rows.map((r) => [
      r.name,
      r.masks ? 'yes' : '-',
      r.semanticEnhancer && r.spatialEnhancer ? 'both' : r.semanticEnhancer ? 'semantic' : r.spatialEnhancer ? 'spatial' : '-',
      r.fusion,
      r.categoryTask ? 'yes' : '-',
      r.captionDecoder,
      r.parameters === null ? '' : (r.parameters / 1e6).toFixed(2),
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
    context.stdout(`${line(header)}\n${table.map(line).join('\n')}\n`);
    if (!values['no-params']) context.stdout(`(parameters counted with a ${COUNT_VOCAB}-word vocabulary and ${COUNT_CLASSES} noun classes)\n`);
    return ExitCode.ok;
  },
};
