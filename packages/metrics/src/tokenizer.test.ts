import { describe, expect, it } from 'vitest';

import { goldenInputs, GOLDEN_DIR, readGoldenJson } from './testing/golden.js';
import { PUNCTUATION_FILTER, ptbTokenizeLowercased, tokenizeCaption } from './tokenizer.js';

interface TokenizerCase {
  id: string;
  feature: string;
  raw: string;
  ptb_tokens_lowercased: string[];
  tokenized: string;
}

describe.skipIf(GOLDEN_DIR === undefined)('PTB tokenizer against the golden cases', () => {
  const file = GOLDEN_DIR === undefined ? undefined : readGoldenJson<{ cases: TokenizerCase[]; punctuation_filter: string[] }>(
    'ptb_tokenizer_cases.json',
  );

  it('uses the toolkit punctuation filter', () => {
    expect([...PUNCTUATION_FILTER]).toEqual(file!.punctuation_filter);
  });

  it.each(file?.cases ?? [])('$id ($feature)', (entry) => {
    expect(ptbTokenizeLowercased(entry.raw)).toEqual(entry.ptb_tokens_lowercased);
    expect(tokenizeCaption(entry.raw)).toBe(entry.tokenized);
  });

  it('turns every raw caption of inputs.json into the tokenized text the scorers received', () => {
    const mismatches: string[] = [];
    for (const entry of goldenInputs().cases) {
      const pairs: [string, string][] = [
        [entry.candidate_raw, entry.candidate],
        ...entry.references_raw.map((raw, index): [string, string] => [raw, entry.references[index]!]),
      ];
      for (const [raw, expected] of pairs) {
        if (tokenizeCaption(raw) !== expected) mismatches.push(`${entry.image_id}: ${raw}`);
      }
    }
    expect(mismatches).toEqual([]);
  });
});

describe('PTB tokenizer behaviour', () => {
  it('keeps the -lrb-/-rrb- quirk and drops -LRB- only in upper case', () => {
    expect(tokenizeCaption('a pond (small)')).toBe('a pond -lrb- small -rrb-');
  });

  it('splits clitics and keeps numbers and hyphenated words whole', () => {
    expect(tokenizeCaption("It can't be 12,000 tree-lined roads.")).toBe("it ca n't be 12,000 tree-lined roads");
    expect(tokenizeCaption('the ships\' decks')).toBe('the ships decks');
  });

  it('normalises curly quotes and dashes like PTB, then filters them', () => {
    expect(ptbTokenizeLowercased('\u201cbusy\u201d road \u2013 wide')).toEqual(['``', 'busy', "''", 'road', '--', 'wide']);
    expect(tokenizeCaption('the ship\u2019s deck')).toBe("the ship 's deck");
  });

  it('splits punctuation glued between words but not inside numbers', () => {
    expect(tokenizeCaption('trees,road;river 3,5 and 12:30')).toBe('trees road river 3,5 and 12:30');
  });

  it('splits the words PTB splits, and is not fooled by object property names', () => {
    expect(tokenizeCaption('the constructor "toString" cannot gonna')).toBe('the constructor tostring can not gon na');
  });

  it('gives the empty string for empty or punctuation-only captions', () => {
    expect(tokenizeCaption('')).toBe('');
    expect(tokenizeCaption(' ?! ... ')).toBe('');
  });
});
