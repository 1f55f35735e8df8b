import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { BACKEND_NAMES, ensureBackend, initBackend } from './backend';

describe('@s2cpnet/core/backend', () => {
  it('initBackend forces a backend; an unknown name lists the valid ones', async () => {
    const info = await initBackend({ backend: 'cpu' });
    expect(info.backend).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    await expect(initBackend({ backend: 'metal' })).rejects.toThrow(new RegExp(`valid backends: ${BACKEND_NAMES.join(', ')}`));
  });

  it('ensureBackend keeps the backend a program already set, and sets one when asked', async () => {
    await initBackend({ backend: 'cpu' });
    expect(await ensureBackend()).toEqual({ backend: 'cpu', initialized: false });
    expect(await ensureBackend({ backend: 'cpu' })).toEqual({ backend: 'cpu', initialized: true });
  });
});
