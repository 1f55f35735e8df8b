// Control for the hook: this import must fail when no-tensorflow.mjs is preloaded.
await import('@tensorflow/tfjs-core');
console.log('imported @tensorflow/tfjs-core');
