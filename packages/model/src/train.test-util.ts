// Test-only helper shared by the training tests (*.test-util.ts files are not published).
import { S2CPNetError } from '@s2cpnet/core';
import { train, type TrainOptions } from './train';

/** Runs `train` expecting it to fail with a toolkit error, and returns that error (a success disposes its model). */
export async function trainFailure(options: TrainOptions): Promise<S2CPNetError> {
  const error = await train(options).then(
    (r) => {
      r.model.dispose();
      return new Error('train did not fail');
    },
    (e: unknown) => e,
  );
  if (!S2CPNetError.isInstance(error)) throw error;
  return error;
}
