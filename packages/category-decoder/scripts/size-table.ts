/**
 * Prints the category heads' size table at the paper's sizes (README "Size and cost"), from `countParams()` of
 * heads actually built and from the MAC formulas in src/size.ts (1 MAC = 2 FLOP).
 *
 *   npx tsx --conditions=@s2cpnet/source scripts/size-table.ts            # print the table
 *   npx tsx --conditions=@s2cpnet/source scripts/size-table.ts --write    # also refresh it in README.md
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import {
  MultiLabelCategoryDecoder,
  NextNounCategoryDecoder,
  multiLabelForwardMacs,
  multiLabelParameterCount,
  nextNounForwardMacs,
  nextNounParameterCount,
  type MultiLabelSizes,
  type NextNounSizes,
} from '../src/index';

const PAPER = { memoryTokens: 196, memoryWidth: 1024, numClasses: 100, vocabSize: 300 };

type Row =
  | { label: string; kind: 'multi-label'; sizes: MultiLabelSizes }
  | { label: string; kind: 'next-noun'; sizes: NextNounSizes };

const rows: Row[] = [
  { label: 'multi-label, per-class classifier (default)', kind: 'multi-label', sizes: { numClasses: PAPER.numClasses, memoryWidth: PAPER.memoryWidth } },
  { label: 'multi-label, shared Linear(dDec -> 1)', kind: 'multi-label', sizes: { numClasses: PAPER.numClasses, memoryWidth: PAPER.memoryWidth, classifier: 'shared' } },
  { label: 'next-noun (1 layer, 12 nouns + <end>)', kind: 'next-noun', sizes: { vocabSize: PAPER.vocabSize, memoryWidth: PAPER.memoryWidth } },
  {
    label: "next-noun at the released code's sizes (dDec 1024, FFN 4096)",
    kind: 'next-noun',
    sizes: { vocabSize: PAPER.vocabSize, memoryWidth: PAPER.memoryWidth, dim: 1024, ffnDim: 4096 },
  },
];

async function main(): Promise<void> {
  tf.env().set('PROD', true);
  await tf.setBackend('cpu');
  const lines = [
    `Paper sizes: N = ${PAPER.memoryTokens} memory tokens (14x14 grid) of width ${PAPER.memoryWidth}, K = ${PAPER.numClasses} noun classes, caption vocabulary V = ${PAPER.vocabSize} (next-noun); dDec 512, 8 heads, FFN 2048 unless stated. GFLOP = 2 x MAC, matrix products only, per image (next-noun: teacher-forced over 13 steps).`,
    '',
    '| head | parameters | forward GFLOP per image |',
    '|---|---:|---:|',
  ];
  for (const row of rows) {
    const head = row.kind === 'multi-label' ? new MultiLabelCategoryDecoder({ ...row.sizes, seed: 0 }) : new NextNounCategoryDecoder({ ...row.sizes, seed: 0 });
    head.ensureBuilt([null, PAPER.memoryWidth]);
    const counted = head.countParams();
    head.namedWeights().forEach((w) => w.variable.dispose());
    const formula = row.kind === 'multi-label' ? multiLabelParameterCount(row.sizes) : nextNounParameterCount(row.sizes);
    if (counted !== formula) throw new Error(`${row.label}: countParams ${counted} differs from the formula ${formula}`);
    const macs = row.kind === 'multi-label' ? multiLabelForwardMacs(row.sizes, PAPER.memoryTokens) : nextNounForwardMacs(row.sizes, PAPER.memoryTokens);
    lines.push(`| ${row.label} | ${counted.toLocaleString('en-US')} | ${((2 * macs) / 1e9).toFixed(3)} |`);
  }
  const table = lines.join('\n');
  console.log(table);
  if (process.argv.includes('--write')) {
    const readme = fileURLToPath(new URL('../README.md', import.meta.url));
    const text = readFileSync(readme, 'utf8');
    const start = '<!-- size-table:start -->';
    const end = '<!-- size-table:end -->';
    const from = text.indexOf(start);
    const to = text.indexOf(end);
    if (from < 0 || to < from) throw new Error(`README.md has no ${start} ... ${end} block`);
    writeFileSync(readme, `${text.slice(0, from + start.length)}\n${table}\n${text.slice(to)}`);
    console.error(`updated ${readme}`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
