import { ConfigError } from '@s2cpnet/core';

/** Throws a ConfigError naming `component.argument` unless `value` is an integer >= `minimum`. */
export function requireInteger(component: string, argument: string, value: unknown, minimum = 1): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < minimum) {
    throw new ConfigError(`${component}.${argument}`, `expected an integer >= ${minimum}, found ${JSON.stringify(value)}`);
  }
  return value;
}

/** Throws a ConfigError unless `value` is one of `allowed`. */
export function requireOneOf<T extends string>(component: string, argument: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(
      `${component}.${argument}`,
      `expected one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, found ${JSON.stringify(value)}`,
    );
  }
  return value as T;
}

/** Which description of a block to follow: the paper (default) or the authors' released code (spec section 9). */
export type EnhancerVariant = 'paper' | 'reference';

export const ENHANCER_VARIANTS: readonly EnhancerVariant[] = ['paper', 'reference'];
