/**
 * Caption tokenisation shared by every source format, so that a Karpathy file (which ships tokens) and an
 * NWPU or COCO file (raw text only) give the same vocabulary for the same sentence.
 */

// Anything that is not a letter, digit, apostrophe or hyphen separates words ("ground." -> "ground",
// "roads,with" -> "roads", "with"); apostrophes and hyphens inside a word keep it whole ("t-junction").
const SEPARATOR = /[^\p{L}\p{N}'\u2019-]+/u;
const EDGE_JOINERS = /^['\u2019-]+|['\u2019-]+$/gu;

/** Splits a caption into lower-cased word tokens; punctuation is dropped. */
export function tokenizeCaption(text: string): string[] {
  const tokens: string[] = [];
  for (const piece of text.toLowerCase().split(SEPARATOR)) {
    const word = piece.replace(EDGE_JOINERS, '');
    if (word.length > 0) tokens.push(word);
  }
  return tokens;
}

/**
 * Normalises tokens given by a caption file: lower-cased, punctuation stripped, empty tokens dropped
 * (UCM's tokens include `""` and `"ground."`). Original typos are kept on purpose: they are what the file says.
 */
export function normalizeTokens(tokens: readonly string[]): string[] {
  return tokens.flatMap((token) => tokenizeCaption(token));
}
