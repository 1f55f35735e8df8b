import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SeededRng, type CaptionDecoder } from '@s2cpnet/core';
import { expectNoLeaks, perturbWeights, randomTensor, testBackends, useBackend } from '@s2cpnet/core/testing';
import { TransformerCaptionDecoder, type CaptionDecoderState } from '../decoder';
import { TableDecoder, tableMemory } from '../testing/table-decoder';
import { beamSearch, greedyDecode, lengthPenaltyFactor, type DecodedCaption } from './index';

const PAD = 0;
const START = 1;
const END = 2;
const A = 3;
const B = 4;
const C = 5;
const tiny = 1e-6;
const uniform = [1, 1, 1, 1, 1, 1];

/** Greedy takes A (0.5) then C (0.35) then <end> (0.5): p = 0.0875. B then <end> has p = 0.36. */
const greedyTrap = [
  uniform,
  [tiny, tiny, 0.05, 0.5, 0.4, 0.05], // after <start>
  uniform,
  [tiny, tiny, 0.1, 0.25, 0.3, 0.35], // after A
  [tiny, tiny, 0.9, 0.04, 0.03, 0.03], // after B
  [tiny, tiny, 0.5, 0.2, 0.2, 0.1], // after C
];

function randomTable(vocab: number, seed: number): number[][] {
  const rng = new SeededRng(seed);
  return Array.from({ length: vocab }, () => Array.from({ length: vocab }, () => 0.05 + rng.next()));
}

/** Every caption of at most `maxLength` tokens under a Markov table, best score first (exhaustive search). */
function bruteForce(decoder: TableDecoder, table: number, maxLength: number, alpha: number): { tokens: number[]; logProb: number; score: number } {
  let best = { tokens: [] as number[], logProb: -Infinity, score: -Infinity };
  const visit = (prefix: number[], last: number, logProb: number) => {
    const consider = (tokens: number[], lp: number, length: number) => {
      const score = lp / lengthPenaltyFactor(length, alpha);
      if (score > best.score) best = { tokens, logProb: lp, score };
    };
    if (prefix.length === maxLength) return consider(prefix, logProb, maxLength);
    for (let next = 0; next < decoder.vocabSize; next++) {
      const lp = logProb + decoder.logProb(table, last, next);
      if (next === END) consider(prefix, lp, prefix.length + 1);
      else visit([...prefix, next], next, lp);
    }
  };
  visit([], START, 0);
  return best;
}

function expectSameCaptions(actual: DecodedCaption[], expected: DecodedCaption[]): void {
  expect(actual.map((c) => c.tokens)).toEqual(expected.map((c) => c.tokens));
  expect(actual.map((c) => c.finished)).toEqual(expected.map((c) => c.finished));
  actual.forEach((c, i) => {
    expect(c.logProb).toBeCloseTo(expected[i]!.logProb, 5);
    expect(c.attention.length).toBe(expected[i]!.attention.length);
    c.attention.forEach((row, w) => expect(Array.from(row)).toEqual(Array.from(expected[i]!.attention[w]!)));
  });
}

/** Wraps a decoder to record how it is driven. */
function instrument<State>(inner: CaptionDecoder<State>) {
  const log = { forward: 0, step: 0, reorder: 0, stateRows: [] as number[], memoryItems: [] as number[] };
  const decoder: CaptionDecoder<State> = {
    vocabSize: inner.vocabSize,
    memoryWidth: inner.memoryWidth,
    forward: (...args) => {
      log.forward++;
      return inner.forward(...args);
    },
    initState: (memory) => inner.initState(memory),
    step: (tokens, state, options) => {
      log.step++;
      return inner.step(tokens, state, options);
    },
    reorderState: (state, indices) => {
      log.reorder++;
      const next = inner.reorderState(state, indices);
      const s = next as unknown as Partial<CaptionDecoderState>;
      if (s.rows !== undefined) log.stateRows.push(s.rows);
      if (s.memoryItems !== undefined) log.memoryItems.push(s.memoryItems);
      return next;
    },
    disposeState: (state) => inner.disposeState(state),
  };
  return { decoder, log };
}

for (const backend of testBackends()) {
  describe(`decoding on ${backend}`, () => {
    beforeAll(() => useBackend(backend));

    describe('on a fixed transition table', () => {
      it('greedy falls into the trap and beam search finds the more likely caption', () => {
        const table = new TableDecoder([greedyTrap]);
        const memory = tableMemory([0]);
        const [greedy] = expectNoLeaks(() => greedyDecode(table, memory, { startId: START, endId: END }));
        expect(greedy!.tokens).toEqual([A, C]);
        expect(greedy!.logProb).toBeCloseTo(Math.log(0.5 * 0.35 * 0.5), 4); // rows are renormalised around the 1e-6 entries
        const [beam] = expectNoLeaks(() => beamSearch(table, memory, { beamSize: 2, startId: START, endId: END }));
        expect(beam!.tokens).toEqual([B]);
        expect(beam!.finished).toBe(true);
        expect(beam!.logProb).toBeCloseTo(Math.log(0.4 * 0.9), 4);
        expect(beam!.logProb).toBeGreaterThan(greedy!.logProb);
        expect(table.forwardCalls).toBe(0);
        expect(table.liveStates).toBe(0);
        memory.dispose();
      });

      it('minLength keeps <end> out until that many words are written', () => {
        const table = new TableDecoder([randomTable(6, 21)]);
        const memory = tableMemory([0]);
        const [free] = beamSearch(table, memory, { beamSize: 3, startId: START, endId: END, maxLength: 8 });
        const [long] = expectNoLeaks(() => beamSearch(table, memory, { beamSize: 3, startId: START, endId: END, maxLength: 8, minLength: 8 }));
        expect(long!.tokens).toHaveLength(8);
        expect(long!.tokens).not.toContain(END);
        expect(long!.finished).toBe(false);
        expect(free!.score).toBeGreaterThanOrEqual(long!.score);
        expect(() => beamSearch(table, memory, { beamSize: 3, startId: START, endId: END, maxLength: 8, minLength: -1 })).toThrow(/minLength/);
        memory.dispose();
      });

      it('suppressIds keeps those words out of greedy and beam captions, with the model log-probabilities', () => {
        const table = new TableDecoder([greedyTrap]);
        const memory = tableMemory([0]);
        // Without A, greedy takes B (0.4) and then <end> (0.9); with B also gone it takes C.
        const [greedy] = expectNoLeaks(() => greedyDecode(table, memory, { startId: START, endId: END, suppressIds: [A] }));
        expect(greedy!.tokens).toEqual([B]);
        expect(greedy!.logProb).toBeCloseTo(Math.log(0.4 * 0.9), 4);
        // Unsuppressed, beam search finds [B]; without B it must find something else, scored with the model's own
        // log-probabilities along its path.
        const [beam] = expectNoLeaks(() => beamSearch(table, memory, { beamSize: 3, startId: START, endId: END, suppressIds: [B] }));
        expect(beam!.tokens.length).toBeGreaterThan(0);
        expect(beam!.tokens).not.toContain(B);
        expect(beam!.finished).toBe(true);
        const path = [START, ...beam!.tokens, END];
        const pathLogProb = path.slice(1).reduce((sum, next, i) => sum + table.logProb(0, path[i]!, next), 0);
        expect(beam!.logProb).toBeCloseTo(pathLogProb, 4);
        const [beam1] = beamSearch(table, memory, { beamSize: 1, startId: START, endId: END, suppressIds: [A] });
        expect(beam1!.tokens).toEqual(greedy!.tokens);
        expect(() => greedyDecode(table, memory, { startId: START, endId: END, suppressIds: [END] })).toThrow(/cannot suppress endId/);
        expect(() => beamSearch(table, memory, { startId: START, endId: END, suppressIds: [99] })).toThrow(/suppressIds/);
        memory.dispose();
      });

      it('beam size 1 equals greedy', () => {
        const table = new TableDecoder([greedyTrap, randomTable(6, 3)]);
        const memory = tableMemory([0, 1, 1]);
        const greedy = greedyDecode(table, memory, { startId: START, endId: END, maxLength: 6 });
        const beam = beamSearch(table, memory, { beamSize: 1, startId: START, endId: END, maxLength: 6 });
        expectSameCaptions(beam, greedy);
        memory.dispose();
      });

      it.each([0, 1.5, -0.5])('with a wide beam finds the exhaustive optimum (length penalty %s)', (alpha) => {
        const tables = [randomTable(5, 11), randomTable(5, 12)];
        const table = new TableDecoder(tables);
        const memory = tableMemory([0, 1]);
        const maxLength = 3;
        const results = expectNoLeaks(() => beamSearch(table, memory, { beamSize: 80, startId: START, endId: END, maxLength, lengthPenalty: alpha }));
        results.forEach((result, image) => {
          const best = bruteForce(table, image, maxLength, alpha);
          expect(result.tokens).toEqual(best.tokens);
          expect(result.logProb).toBeCloseTo(best.logProb, 5);
          expect(result.score).toBeCloseTo(best.score, 5);
        });
        memory.dispose();
      });

      it('a positive length penalty prefers a longer caption', () => {
        const table = new TableDecoder([greedyTrap]);
        const memory = tableMemory([0]);
        const [plain] = beamSearch(table, memory, { beamSize: 3, startId: START, endId: END });
        const [long] = beamSearch(table, memory, { beamSize: 3, startId: START, endId: END, lengthPenalty: 10 });
        expect(long!.tokens.length).toBeGreaterThan(plain!.tokens.length);
        expect(long!.score).toBeCloseTo(long!.logProb / ((5 + long!.tokens.length + (long!.finished ? 1 : 0)) / 6) ** 10, 8);
        expect(long!.score).toBeGreaterThan(plain!.logProb / ((5 + plain!.tokens.length + 1) / 6) ** 10);
        memory.dispose();
      });

      it('gives each word the attention of the step that generated it, and cuts at maxLength', () => {
        // A table that never ends: every caption is cut at maxLength.
        const never = Array.from({ length: 6 }, () => [1, 1, tiny, 1, 2, 1]);
        const table = new TableDecoder([never], 3);
        const memory = tableMemory([0, 0]);
        for (const result of [...beamSearch(table, memory, { beamSize: 2, startId: START, endId: END, maxLength: 5 }), ...greedyDecode(table, memory, { startId: START, endId: END, maxLength: 5 })]) {
          expect(result.finished).toBe(false);
          expect(result.tokens).toEqual([B, B, B, B, B]);
          expect(result.attention.map((row) => Array.from(row).indexOf(1))).toEqual([0, 1, 2, 0, 1]);
        }
        const [noAttention] = greedyDecode(table, memory, { startId: START, endId: END, maxLength: 2, returnAttention: false });
        expect(noAttention!.attention).toEqual([]);
        expect(table.stepCalls).toBe(5 + 5 + 2);
        memory.dispose();
      });
    });

    describe('with a TransformerCaptionDecoder', () => {
      let decoder: TransformerCaptionDecoder;
      let memory: tf.Tensor3D;
      beforeAll(() => {
        decoder = new TransformerCaptionDecoder({ vocabSize: 12, memoryWidth: 6, dim: 8, numLayers: 2, numHeads: 2, ffnDim: 12, maxLength: 10, dropout: 0.1, seed: 4 });
        decoder.ensureBuilt([null, 6]);
        perturbWeights(decoder, 9, 0.5);
        memory = randomTensor([3, 5, 6], 2) as tf.Tensor3D;
      });
      afterAll(() => {
        memory.dispose();
        decoder.dispose();
      });

      it('beam size 1 equals greedy', () => {
        const greedy = greedyDecode(decoder, memory, { startId: START, endId: END, maxLength: 8 });
        const beam = beamSearch(decoder, memory, { beamSize: 1, startId: START, endId: END, maxLength: 8 });
        expectSameCaptions(beam, greedy);
      });

      it('decodes a batch exactly as it decodes each image alone', () => {
        const together = beamSearch(decoder, memory, { beamSize: 3, startId: START, endId: END, maxLength: 8 });
        const alone = [0, 1, 2].flatMap((i) => {
          const one = tf.slice(memory, [i, 0, 0], [1, -1, -1]) as tf.Tensor3D;
          const result = beamSearch(decoder, one, { beamSize: 3, startId: START, endId: END, maxLength: 8 });
          one.dispose();
          return result;
        });
        expectSameCaptions(together, alone);
        // Beam search scores at least as well as greedy on every image (both on logProb, no length penalty).
        const greedy = greedyDecode(decoder, memory, { startId: START, endId: END, maxLength: 8 });
        together.forEach((c, i) => expect(c.score).toBeGreaterThanOrEqual(greedy[i]!.score - 1e-9));
      });

      it('runs on the cached step path only, keeps the memory shared across beams, and leaks nothing', () => {
        const { decoder: watched, log } = instrument(decoder);
        const results = expectNoLeaks(() => beamSearch(watched, memory, { beamSize: 3, startId: START, endId: END, maxLength: 6 }));
        expect(log.forward).toBe(0);
        expect(log.step).toBeLessThanOrEqual(6);
        expect(log.step).toBeGreaterThan(0);
        expect(new Set(log.stateRows)).toEqual(new Set([9]));
        expect(new Set(log.memoryItems)).toEqual(new Set([3]));
        for (const r of results) {
          expect(r.tokens.length).toBeLessThanOrEqual(6);
          expect(r.attention.length).toBe(r.tokens.length);
          for (const row of r.attention) {
            expect(row.length).toBe(5);
            expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
          }
        }
        expectNoLeaks(() => greedyDecode(decoder, memory, { startId: START, endId: END, maxLength: 6 }));
      });

      it('rejects bad options with the argument named', () => {
        expect(() => greedyDecode(decoder, memory, { startId: 12, endId: END, maxLength: 8 })).toThrow(/startId.*0\.\.11, found 12/);
        expect(() => beamSearch(decoder, memory, { startId: START, endId: END, beamSize: 0, maxLength: 8 })).toThrow(/beamSize.*positive integer/);
        expect(() => beamSearch(decoder, memory, { startId: START, endId: END, maxLength: 0 })).toThrow(/maxLength.*positive integer/);
        const wide = tf.zeros([1, 5, 7]) as tf.Tensor3D;
        expect(() => beamSearch(decoder, wide, { startId: START, endId: END, maxLength: 8 })).toThrow(/memory.*width 6/);
        wide.dispose();
        expect(() => greedyDecode(decoder, memory, { startId: START, endId: END, maxLength: 11 })).toThrow(/maxLength.*11 tokens would exceed maxLength 10/);
      });
    });
  });
}
