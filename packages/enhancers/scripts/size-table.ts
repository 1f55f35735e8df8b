/**
 * Prints the size table of the enhancers at the paper's sizes (grid 14 x 14, C = 2048 input channels, spatial
 * output 512): parameters from the real layers' `countParams()`, forward GFLOP per image from `multiplyAdds()`
 * (1 multiply-add = 2 FLOP; convolutions only, element-wise work is listed separately in the README).
 *
 *   npx tsx --conditions=@s2cpnet/source scripts/size-table.ts          # print the markdown table
 *   npx tsx --conditions=@s2cpnet/source scripts/size-table.ts --write  # also replace the table in README.md
 *
 * (`npm run size-table -w @s2cpnet/enhancers` does the latter.)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { SemanticEnhancer, SpatialEnhancer } from '../src/index';

const GRID = 14;
const CHANNELS = 2048;

interface Row {
  component: string;
  configuration: string;
  parameters: number;
  gflop: number;
}

function measure(component: string, configuration: string, layer: SemanticEnhancer | SpatialEnhancer): Row {
  layer.ensureBuilt([null, GRID, GRID, CHANNELS]);
  const row = { component, configuration, parameters: layer.countParams(), gflop: (2 * layer.multiplyAdds(GRID, GRID)) / 1e9 };
  for (const { variable } of layer.namedWeights()) variable.dispose();
  return row;
}

async function main(): Promise<void> {
  tf.env().set('PROD', true);
  await tf.setBackend('cpu');
  const rows = [
    measure('SemanticEnhancer', 'paper: C 2048, r 16', new SemanticEnhancer({ channels: CHANNELS })),
    measure('SemanticEnhancer', "reference: + 1x1 2048 -> 2048", new SemanticEnhancer({ channels: CHANNELS, variant: 'reference' })),
    measure('SpatialEnhancer', 'paper: 2048 -> 512, global low-pass', new SpatialEnhancer({ inputChannels: CHANNELS, outputChannels: 512 })),
    measure('SpatialEnhancer', 'reference: 2048 -> 2048, 7x7 low-pass', new SpatialEnhancer({ inputChannels: CHANNELS, variant: 'reference' })),
  ];
  const table = [
    `| component | configuration (grid ${GRID}x${GRID}) | parameters | forward GFLOP / image |`,
    '|---|---|---:|---:|',
    ...rows.map((r) => `| ${r.component} | ${r.configuration} | ${r.parameters.toLocaleString('en-US')} | ${r.gflop.toPrecision(4)} |`),
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
