export * from './linear';
export * from './layer-norm';
export * from './feed-forward';
export * from './attention';
export * from './embedding';
export * from './positional';
export * from './conv';
