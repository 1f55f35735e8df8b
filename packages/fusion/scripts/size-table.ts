/**
 * Prints the size table of every built-in fusion strategy at the paper's sizes (grid 14 x 14 = 196 tokens, image
 * tokens C1 = 2048, mask tokens C2 = 512, d = 512, so the CVFF memory is 1024 wide; 8 heads, 3 units, FFN 4d):
 * parameters from the real layers' `countParams()`, forward GFLOP per sample from `multiplyAdds()` (1 multiply-add =
 * 2 FLOP; matrix products and convolutions; element-wise work is not counted, see the README).
 *
 *   npx tsx --conditions=@s2cpnet/source scripts/size-table.ts          # print the markdown table
 *   npx tsx --conditions=@s2cpnet/source scripts/size-table.ts --write  # also replace the table in README.md
 *
 * (`npm run size-table -w @s2cpnet/fusion` does the latter.)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { S2Layer } from '@s2cpnet/core';
import { createFusion, defaultFusions, type FusionConfig, type FusionLayer } from '../src/index';

const PAPER = { imageChannels: 2048, maskChannels: 512, dim: 512, grid: 14 };

interface Row {
  label: string;
  memoryWidth: number;
  parameters: number;
  trainable: number;
  gflop: number;
}

function measure(config: FusionConfig, label: string = `\`${config.type}\``): Row {
  const fusion = createFusion(config) as FusionLayer & S2Layer & { multiplyAdds(): number };
  fusion.ensureBuilt([null, PAPER.grid * PAPER.grid, PAPER.imageChannels]);
  const trainable = fusion.trainableWeights.reduce((n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
  const row = {
    label,
    memoryWidth: fusion.memoryWidth,
    parameters: fusion.countParams(),
    trainable,
    gflop: (2 * fusion.multiplyAdds()) / 1e9,
  };
  for (const { variable } of fusion.namedWeights()) variable.dispose();
  return row;
}

async function main(): Promise<void> {
  tf.env().set('PROD', true);
  await tf.setBackend('cpu');
  const rows = (Object.keys(defaultFusions) as FusionConfig['type'][]).map((type) => measure({ type, ...PAPER }));
  // The reference code's spatial enhancer keeps 2048 channels, so its CVFF sees 2048-wide mask tokens.
  rows.push(measure({ type: 'cvff-reference', ...PAPER, maskChannels: 2048 }, '`cvff-reference`, C2 = 2048'));
  const table = [
    '| strategy | memory width | parameters | of which trainable | forward GFLOP / sample |',
    '|---|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.label} | ${r.memoryWidth} | ${r.parameters.toLocaleString('en-US')} | ${r.trainable.toLocaleString('en-US')} | ${r.gflop.toPrecision(4)} |`,
    ),
  ].join('\n');
  console.log(table);
  if (process.argv.includes('--write')) {
    const readme = fileURLToPath(new URL('../README.md', import.meta.url));
    const text = readFileSync(readme, 'utf8');
    const pattern = /(<!-- size-table:start -->\n)[\s\S]*?(<!-- size-table:end -->)/;
    if (!pattern.test(text)) throw new Error(`${readme}: no <!-- size-table:start --> ... <!-- size-table:end --> block`);
    writeFileSync(readme, text.replace(pattern, `$1${table}\n$2`));
    console.error(`updated ${readme}`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
