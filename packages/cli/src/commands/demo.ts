import type { Command } from '../command';
import { ExitCode } from '../command';

/** Placeholder until the assembly package lands (issue: assembly, training, captioning and the embedded demo). */
export const demoCommand: Command = {
  name: 'demo',
  summary: 'Generate a synthetic aerial set, train a small S²CPNet, evaluate and write demo-output/report.html',
  usage: 's2cpnet demo [--out DIR] [--seed N]',
  async run(_argv, context) {
    context.stderr(
      's2cpnet demo: not available yet. It needs @s2cpnet/model (assembly, training and captioning), which is not built yet.\n' +
        'What exists today: s2cpnet doctor, s2cpnet score, s2cpnet prepare.\n',
    );
    return ExitCode.failure;
  },
};
