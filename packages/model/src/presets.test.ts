import { describe, expect, it } from 'vitest';
import { PRESETS, PRESET_NAMES, PAPER_UCM_TEST_SCORES, isPresetName } from './presets';

describe('ablation presets (spec section 8)', () => {
  it('lists the nine paper variants plus lite', () => {
    expect(PRESET_NAMES).toHaveLength(10);
    expect(Object.keys(PRESETS).sort()).toEqual([...PRESET_NAMES].sort());
  });

  it('matches the spec table row by row', () => {
    const row = (n: keyof typeof PRESETS) => {
      const p = PRESETS[n];
      return [p.masks, p.semanticEnhancer, p.spatialEnhancer, p.fusion, p.categoryTask, p.captionDecoder];
    };
    expect(row('baseline1')).toEqual([false, false, false, 'single-view', false, 'plain']);
    expect(row('baseline2')).toEqual([false, false, false, 'single-view', false, 'gated']);
    expect(row('model2a')).toEqual([true, false, false, 'add', false, 'gated']);
    expect(row('model2b')).toEqual([true, false, false, 'concat', false, 'gated']);
    expect(row('model2')).toEqual([true, false, false, 'cvff', false, 'gated']);
    expect(row('model3')).toEqual([true, false, false, 'cvff', true, 'gated']);
    expect(row('model4a')).toEqual([true, true, false, 'cvff', true, 'gated']);
    expect(row('model4b')).toEqual([true, false, true, 'cvff', true, 'gated']);
    expect(row('s2cpnet')).toEqual([true, true, true, 'cvff', true, 'gated']);
  });

  it('only mask-reading presets use a two-view fusion', () => {
    for (const name of PRESET_NAMES) {
      const p = PRESETS[name];
      expect(p.masks).toBe(p.fusion !== 'single-view');
      if (p.spatialEnhancer) expect(p.masks).toBe(true);
    }
  });

  it('keeps the paper scores the spec quotes', () => {
    expect(PAPER_UCM_TEST_SCORES.s2cpnet?.CIDEr).toBe(3.5482);
    expect(PAPER_UCM_TEST_SCORES.baseline1?.Bleu_4).toBe(0.6942);
  });

  it('recognises preset names', () => {
    expect(isPresetName('s2cpnet')).toBe(true);
    expect(isPresetName('S2CPNet')).toBe(false);
  });
});
