#!/usr/bin/env node
// Markdown tables of UCM runs from their training logs (`<run>/log.jsonl`, greedy val scores after every epoch).
//   node scripts/ucm-tables.mjs runs/ucm [--epoch N]
// --epoch N: the scores after epoch N of every run (an equal training budget); default: each run's best epoch by
// val METEOR (the selection rule). Runs named `[abl-]<variant>-seed<k>` are grouped by variant: mean ± sample standard
// deviation over seeds (other folders are ignored).
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { epoch: { type: 'string' } } });
const dir = positionals[0] ?? 'runs/ucm';
const metrics = ['Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'METEOR', 'ROUGE_L', 'CIDEr', 'Sm'];
const groups = new Map();
for (const name of readdirSync(dir).sort()) {
  const log = path.join(dir, name, 'log.jsonl');
  if (!existsSync(log)) continue;
  const epochs = readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  if (epochs.length === 0) continue;
  let pick;
  if (values.epoch) pick = epochs.find((e) => e.epoch === Number(values.epoch));
  else pick = epochs.reduce((a, b) => (b.val.METEOR > a.val.METEOR ? b : a));
  if (!pick) continue;
  const match = /^(?:abl-)?(.+)-seed\d+$/.exec(name);
  if (!match) continue;
  const variant = match[1];
  const minutes = epochs.filter((e) => e.epoch <= pick.epoch).reduce((a, e) => a + e.seconds, 0) / 60;
  if (!groups.has(variant)) groups.set(variant, []);
  groups.get(variant).push({ run: name, epoch: pick.epoch, minutes, val: pick.val });
}
console.log(`| variant | seeds | epoch | minutes | ${metrics.join(' | ')} |`);
console.log(`|---|---|---|---|${metrics.map(() => '---').join('|')}|`);
for (const [variant, runs] of groups) {
  const cell = (m) => {
    const xs = runs.map((r) => r.val[m]);
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1)) : 0;
    const spread = xs.length > 1 ? ` ± ${sd.toFixed(4)}` : '';
    return `${mean.toFixed(4)}${spread}`;
  };
  console.log(`| ${variant} | ${runs.length} | ${runs.map((r) => r.epoch).join(', ')} | ${runs.map((r) => r.minutes.toFixed(0)).join(', ')} | ${metrics.map(cell).join(' | ')} |`);
}
