/**
 * Test-only: a `CaptionDecoder` whose next-word distribution is a fixed transition table over the previous word
 * (a Markov chain), so the best caption can be worked out by hand or by enumeration. Its "attention" is a one-hot
 * over N memory tokens at `length mod N`, which lets tests check that per-word attention follows the hypotheses.
 * Each image may use its own table: image b uses `tables[memory[b,0,0]]`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CaptionDecoder, CaptionDecoderOutput, DecodeStepOutput } from '@s2cpnet/core';

export interface TableState {
  /** [rows] the table index of each row. */
  table: tf.Tensor1D;
  length: number;
  rows: number;
}

export class TableDecoder implements CaptionDecoder<TableState> {
  readonly vocabSize: number;
  readonly memoryWidth = 1;
  readonly memoryTokens: number;
  stepCalls = 0;
  forwardCalls = 0;
  liveStates = 0;
  private readonly logTables: Float32Array;

  /** `tables[i][from][to]`: probability of word `to` after word `from` (rows are normalised here). */
  constructor(tables: number[][][], memoryTokens = 4) {
    this.vocabSize = tables[0]!.length;
    this.memoryTokens = memoryTokens;
    const v = this.vocabSize;
    this.logTables = new Float32Array(tables.length * v * v);
    tables.forEach((table, i) =>
      table.forEach((row, from) => {
        const total = row.reduce((a, b) => a + b, 0);
        row.forEach((p, to) => (this.logTables[(i * v + from) * v + to] = Math.log(p / total)));
      }),
    );
  }

  /** Log-probability of `to` after `from` in table `i`. */
  logProb(i: number, from: number, to: number): number {
    return this.logTables[(i * this.vocabSize + from) * this.vocabSize + to]!;
  }

  forward(): CaptionDecoderOutput {
    this.forwardCalls++;
    throw new Error('TableDecoder.forward: decoding must use the cached step path');
  }

  initState(memory: tf.Tensor3D): TableState {
    this.liveStates++;
    const table = tf.tidy(() => tf.cast(tf.reshape(tf.slice(memory, [0, 0, 0], [-1, 1, 1]), [-1]), 'int32') as tf.Tensor1D);
    return { table, length: 0, rows: memory.shape[0] };
  }

  step(tokens: tf.Tensor1D, state: TableState, options: { returnAttention?: boolean } = {}): DecodeStepOutput<TableState> {
    this.stepCalls++;
    const v = this.vocabSize;
    const logits = tf.tidy(() => {
      const flat = tf.tensor1d(this.logTables);
      const rowIndex = tf.add(tf.mul(state.table, tf.scalar(v, 'int32')), tokens);
      return tf.reshape(tf.gather(tf.reshape(flat, [-1, v]), rowIndex), [state.rows, v]) as tf.Tensor2D;
    });
    const next = { ...state, length: state.length + 1 };
    if (!options.returnAttention) return { logits, state: next };
    const attention = tf.tidy(() => tf.tile(tf.oneHot(tf.tensor1d([state.length % this.memoryTokens], 'int32'), this.memoryTokens), [state.rows, 1]) as tf.Tensor2D);
    return { logits, state: next, attention };
  }

  reorderState(state: TableState, indices: tf.Tensor1D): TableState {
    const table = tf.gather(state.table, indices) as tf.Tensor1D;
    state.table.dispose();
    return { table, length: state.length, rows: indices.shape[0] };
  }

  disposeState(state: TableState): void {
    this.liveStates--;
    state.table.dispose();
  }
}

/** Memory [B,1,1] selecting table `tables[b]` for image b. */
export function tableMemory(tableIndices: number[]): tf.Tensor3D {
  return tf.tensor3d(tableIndices, [tableIndices.length, 1, 1]);
}
