import { parseArgs } from 'node:util';
import { PRESETS, PRESET_NAMES, buildS2CPNet, presetConfig } from '@s2cpnet/model';
import type { Command } from '../command';
import { ExitCode } from '../command';
import { initBackend } from '../backend';

/** Vocabulary and class counts the parameter column assumes (UCM-sized). */
const COUNT_VOCAB = 300;
const COUNT_CLASSES = 90;

/** The flags `s2cpnet presets` accepts (its `--help` lists each one). */
export const PRESETS_OPTIONS = {
  json: { type: 'boolean', default: false },
  params: { type: 'boolean', default: false },
  'no-params': { type: 'boolean', default: false },
} as const;

export const presetsCommand: Command = {
  name: 'presets',
  summary: 'List the model presets (the paper ablations and lite) with their parts (and parameter counts with --params)',
  usage: `s2cpnet presets [options]

Options:
  --params                  also count each preset's parameters (${COUNT_VOCAB}-word vocabulary, ${COUNT_CLASSES} noun classes):
                            builds all ${PRESET_NAMES.length} models, about a minute on 2 cores (default off)
  --no-params               do not count parameters (the default; kept for older scripts)
  --json                    print {countedWith, presets: [{name, switches..., parameters, config}]} on stdout;
                            parameters and countedWith are null without --params (default off: a table)`,
  async run(argv, context) {
    const { values } = parseArgs({ args: argv, strict: true, options: PRESETS_OPTIONS });
    // Building ten models takes about a minute: only when the counts are asked for.
    const count = values.params && !values['no-params'];
    if (count) await initBackend({ ...context.backend });
    const rows = PRESET_NAMES.map((name) => {
      const p = PRESETS[name];
      let parameters: number | null = null;
      if (count) {
        const model = buildS2CPNet(presetConfig(name), { vocabSize: COUNT_VOCAB, numClasses: COUNT_CLASSES });
        parameters = model.countParams();
        model.dispose();
      }
      return { name, ...p, parameters, config: presetConfig(name) };
    });
    if (values.json) {
      context.stdout(`${JSON.stringify({ countedWith: count ? { vocabSize: COUNT_VOCAB, numClasses: COUNT_CLASSES } : null, presets: rows }, null, 2)}\n`);
      return ExitCode.ok;
    }
    const header = ['preset', 'masks', 'SSFE', 'fusion', 'nouns', 'decoder', 'backbone', ...(count ? ['params (M)'] : [])];
    const table = rows.map((r) => [
      r.name,
      r.masks ? 'yes' : '-',
      r.semanticEnhancer && r.spatialEnhancer ? 'both' : r.semanticEnhancer ? 'semantic' : r.spatialEnhancer ? 'spatial' : '-',
      r.fusion,
      r.categoryTask ? 'yes' : '-',
      r.captionDecoder,
      backboneLabel(r.config.encoder),
      ...(count ? [(r.parameters! / 1e6).toFixed(2)] : []),
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
    context.stdout(`${line(header)}\n${table.map(line).join('\n')}\n`);
    context.stdout(count ? `(parameters counted with a ${COUNT_VOCAB}-word vocabulary and ${COUNT_CLASSES} noun classes)\n` : '(parameter counts: s2cpnet presets --params)\n');
    return ExitCode.ok;
  },
};

function backboneLabel(encoder: { type: string; [key: string]: unknown }): string {
  const frozen = encoder.freeze === 'all' ? ', frozen' : '';
  if (encoder.type === 'mobilenet-v1') return `MobileNetV1 ${String(encoder.width)}${frozen}`;
  if (encoder.type === 'resnet50') return `ResNet50${frozen}`;
  return `${encoder.type}${frozen}`;
}
