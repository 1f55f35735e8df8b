/**
 * Meteor's dot-run rules in one pass against Meteor's own passes (which take as many passes over the line as the
 * longest run of dots has dots), on random text built from the pieces those rules react to.
 */
import { describe, expect, it } from 'vitest';

import { markDotRuns, markDotRunsByPasses, meteorNormalizeLine, meteorWords, restoreDotRuns, restoreDotRunsByPasses } from './normalizer.js';

function randomText(next: () => number, pieces: readonly string[], length: number): string {
  return Array.from({ length }, () => pieces[Math.floor(next() * pieces.length)]!).join('');
}

describe("Meteor's dot runs", () => {
  let state = 99;
  const next = (): number => {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    return state / 2 ** 32;
  };

  it('marking in one pass equals marking by passes on lines without a literal DOTMULTI', () => {
    for (let trial = 0; trial < 2000; trial++) {
      const line = ` ${randomText(next, ['.', '.', '.', ' ', 'a', 'D', 'DOT', 'MULTI', ',', "'"], 1 + Math.floor(next() * 30))} `;
      if (line.includes('DOTMULTI')) continue;
      const marked = line.replace(/\.(\.+)/g, ' DOTMULTI$1');
      expect(markDotRuns(marked), JSON.stringify(line)).toBe(markDotRunsByPasses(marked));
      // Also at the very end of a line (Meteor pads lines with spaces, but the rule does not depend on it).
      expect(markDotRuns(marked.trimEnd())).toBe(markDotRunsByPasses(marked.trimEnd()));
    }
  });

  it('restoring in one pass equals restoring by passes on any text', () => {
    for (let trial = 0; trial < 2000; trial++) {
      const text = randomText(next, ['DOT', 'DOT', 'DOTMULTI', 'MULTI', 'D', 'O', 'T', '.', ' ', 'x'], 1 + Math.floor(next() * 20));
      expect(restoreDotRuns(text), JSON.stringify(text)).toBe(restoreDotRunsByPasses(text));
    }
  });

  it('normalises whole lines as Meteor does, dotted initialisms and literal markers included', () => {
    // Expected values from the passes-only implementation this replaced (and Meteor's, which it transcribes).
    expect(meteorNormalizeLine('roads... and more.... dots . . ..')).toBe('roads ... and more .... dots . . ..');
    expect(meteorNormalizeLine('...a...b.c..')).toBe('... a ... b.c ..');
    expect(meteorNormalizeLine('D.O.T.M.U.L.T.I. is a word')).toBe('. is a word');
    expect(meteorNormalizeLine('DOTMULTI.. and ...')).toBe('. .. and ...');
    expect(meteorNormalizeLine('DOTMULTI.DOTMULTI.x ..')).toBe('.. ..x ..');
  });

  it('a run of 200,000 dots is one word, found in one pass', () => {
    expect(meteorWords('.'.repeat(200_000))).toEqual(['.'.repeat(200_000)]);
    expect(meteorWords(`a ${'.'.repeat(100_000)} b ${'.'.repeat(50_000)}`)).toEqual(['a', '.'.repeat(100_000), 'b', '.'.repeat(50_000)]);
  });
});
