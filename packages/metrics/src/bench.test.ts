import { describe, expect, it } from 'vitest';

import { runMetricsBenchmark, syntheticCaptionCorpus } from './bench.js';

describe('metrics benchmark', () => {
  it('builds the same synthetic corpus for the same seed and a different one for another seed', () => {
    const first = syntheticCaptionCorpus(50, 5, 3);
    expect(syntheticCaptionCorpus(50, 5, 3)).toEqual(first);
    expect(syntheticCaptionCorpus(50, 5, 4)).not.toEqual(first);
    expect(first.every((item) => item.references.length === 5)).toBe(true);
  });

  it('times every metric and returns real scores', () => {
    const result = runMetricsBenchmark({ images: 300 });
    expect(result.images).toBe(300);
    expect(Object.keys(result.msPerMetric).sort()).toEqual(['Bleu', 'CIDEr', 'METEOR', 'ROUGE_L', 'tokenize']);
    expect(result.totalMs).toBeGreaterThan(0);
    expect(result.cpuMs).toBeGreaterThan(0);
    expect(result.corpus.Bleu_4!).toBeGreaterThan(0.2);
    expect(result.corpus.METEOR!).toBeGreaterThan(0.2);
    expect(result.corpus.CIDEr!).toBeGreaterThan(0.5);
  });
});
