// Module resolution hook (node:module register): refuses @tensorflow/* packages.
export async function resolve(specifier, context, nextResolve) {
  if (specifier === '@tensorflow' || specifier.startsWith('@tensorflow/')) {
    throw new Error(`blocked: ${specifier} was imported (from ${context.parentURL ?? 'the command line'}), but this run must not use TensorFlow.js`);
  }
  return nextResolve(specifier, context);
}
