/**
 * Prints the caption decoders' size table at the paper's sizes (README "Size and cost"), from `countParams()` of
 * decoders actually built and from the MAC formulas in src/size.ts (1 MAC = 2 FLOP).
 *
 *   npx tsx --conditions=@s2cpnet/source scripts/size-table.ts            # print the table
 *   npx tsx --conditions=@s2cpnet/source scripts/size-table.ts --write    # also refresh it in README.md
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import {
  TransformerCaptionDecoder,
  captionDecoderForwardMacs,
  captionDecoderParameterCount,
  captionDecoderStepMacs,
  type CaptionDecoderLayerType,
  type CaptionDecoderSizes,
} from '../src/index';

const PAPER = { memoryTokens: 196, memoryWidth: 1024, vocabSize: 300, tokens: 22, captionsPerImage: 5, decodedWords: 25 };

interface Row {
  label: string;
  layerType: CaptionDecoderLayerType;
  sizes: CaptionDecoderSizes;
}

const rows: Row[] = [
  { label: 'gated (paper, Eq. 6)', layerType: 'gated', sizes: { vocabSize: PAPER.vocabSize, memoryWidth: PAPER.memoryWidth } },
  { label: 'plain (Baseline1)', layerType: 'plain', sizes: { vocabSize: PAPER.vocabSize, memoryWidth: PAPER.memoryWidth } },
  { label: 'gated-reference', layerType: 'gated-reference', sizes: { vocabSize: PAPER.vocabSize, memoryWidth: PAPER.memoryWidth } },
  {
    label: 'gated-reference at the released code\'s sizes (1 layer, dDec 1024, FFN 4096)',
    layerType: 'gated-reference',
    sizes: { vocabSize: PAPER.vocabSize, memoryWidth: PAPER.memoryWidth, dim: 1024, numLayers: 1, ffnDim: 4096 },
  },
];

const gflop = (macs: number) => ((2 * macs) / 1e9).toFixed(3);
const mflop = (macs: number) => ((2 * macs) / 1e6).toFixed(1);

async function main(): Promise<void> {
  tf.env().set('PROD', true);
  await tf.setBackend('cpu');
  const lines = [
    `Paper sizes: N = ${PAPER.memoryTokens} memory tokens (14x14 grid) of width ${PAPER.memoryWidth}, V = ${PAPER.vocabSize} (UCM), T = ${PAPER.tokens} input tokens, 8 heads, 32 positions; dDec 512, 3 layers, FFN 2048 unless stated. GFLOP = 2 x MAC, matrix products only.`,
    '',
    '| decoder | parameters | forward GFLOP, 1 caption | forward GFLOP, 1 image x 5 captions (memory shared) | MFLOP per decoded word, cached (mean of 25) | MFLOP per decoded word, no cache (mean of 25) |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const row of rows) {
    const decoder = new TransformerCaptionDecoder({ ...row.sizes, layerType: row.layerType, seed: 0 });
    decoder.ensureBuilt([null, PAPER.memoryWidth]);
    const counted = decoder.countParams();
    decoder.namedWeights().forEach((w) => w.variable.dispose());
    const formula = captionDecoderParameterCount({ ...row.sizes, layerType: row.layerType });
    if (counted !== formula) throw new Error(`${row.label}: countParams ${counted} differs from the formula ${formula}`);
    const sizes = { ...row.sizes, layerType: row.layerType };
    const single = captionDecoderForwardMacs(sizes, { memoryTokens: PAPER.memoryTokens, tokens: PAPER.tokens });
    const five = captionDecoderForwardMacs(sizes, { memoryTokens: PAPER.memoryTokens, tokens: PAPER.tokens, captionsPerImage: PAPER.captionsPerImage });
    let cached = 0;
    let uncached = 0;
    for (let t = 0; t < PAPER.decodedWords; t++) {
      cached += captionDecoderStepMacs(sizes, PAPER.memoryTokens, t, true);
      uncached += captionDecoderStepMacs(sizes, PAPER.memoryTokens, t, false);
    }
    lines.push(
      `| ${row.label} | ${counted.toLocaleString('en-US')} | ${gflop(single)} | ${gflop(five)} | ${mflop(cached / PAPER.decodedWords)} | ${mflop(uncached / PAPER.decodedWords)} |`,
    );
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
