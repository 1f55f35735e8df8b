// Preload with `node --import ./no-tensorflow.mjs ...`: from then on every import of a `@tensorflow/*` module fails,
// so a run that succeeds shows that nothing it loaded needs TensorFlow.js.
import { register } from 'node:module';

register(new URL('./no-tensorflow-hooks.mjs', import.meta.url));
