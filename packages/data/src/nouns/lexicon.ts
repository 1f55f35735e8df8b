/**
 * Domain corrections for the part-of-speech tagger, and the stop-list of nouns that name no target.
 *
 * The tagger (wink-nlp with its English "lite" model) is trained on general English. Aerial captions use a few
 * words it has not seen (cropland) or reads in their general-English sense (a "medium" residential area, waves
 * "slapping" a beach), and UCM-captions carries typos of function words that look like unknown nouns to it.
 * Each override below names a word it gets wrong in such captions and why. They were found by listing the tags it
 * gives every word of the UCM-captions train and val captions; the package's tests report the precision and
 * recall with and without them on a hand-labelled set.
 */

/** A word-level correction applied after tagging. */
export interface TagOverride {
  /** Lower-cased token it applies to. */
  word: string;
  /** Whether the token is a common noun. */
  noun: boolean;
  /** Only when the next token is one of these (e.g. "swimming" before "pool"). Any next token when absent. */
  before?: readonly string[];
  /** Why the tagger needs help here. */
  reason: string;
}

export const DEFAULT_TAG_OVERRIDES: readonly TagOverride[] = [
  { word: 'cropland', noun: true, reason: 'land-cover noun missing from the tagger lexicon (tagged as a proper noun)' },
  { word: 'farmland', noun: true, reason: 'land-cover noun; tagged as a proper noun at the start of a sentence' },
  { word: 'formland', noun: true, reason: 'UCM typo of "farmland" kept in the tokens; unknown to the tagger' },
  { word: 'grassland', noun: true, reason: 'land-cover noun missing from the tagger lexicon' },
  { word: 'wasteland', noun: true, reason: 'land-cover noun missing from the tagger lexicon' },
  { word: 'foam', noun: true, reason: 'sea foam ("throw up white foam"), read as a verb after "throw up"' },
  { word: 'foams', noun: true, reason: 'sea foam ("throw up white foams"), read as a verb after "throw up"' },
  { word: 'swimming', noun: true, before: ['pool', 'pools'], reason: 'gerund naming the purpose in "swimming pool", read as an adjective' },
  { word: 'medium', noun: false, reason: 'size adjective in "medium residential area", read as the noun "medium"' },
  { word: 'orange', noun: false, reason: 'colour adjective ("orange roofs"), read as the fruit' },
  { word: 'emerald', noun: false, reason: 'colour modifier ("emerald green plants"), read as the gem' },
  { word: 'round', noun: false, reason: 'shape adjective ("a white round storage tank"), read as a noun' },
  { word: 'crystal', noun: false, before: ['clear'], reason: 'intensifier in "crystal clear waters", read as a noun' },
  { word: 'slapping', noun: false, reason: 'verb in "waves slapping the beach", read as a noun' },
  { word: 'flourish', noun: false, reason: 'verb in "plants flourish", read as a noun after a plural noun' },
  { word: 'flurish', noun: false, reason: 'UCM typo of the verb "flourish"' },
  { word: 'dotted', noun: false, reason: 'verb in "dotted with trees", read as a noun' },
  { word: 'others', noun: false, reason: 'pronoun use ("each others", "the others")' },
  { word: 'arround', noun: false, reason: 'UCM typo of the preposition "around"' },
  { word: 'beaide', noun: false, reason: 'UCM typo of the preposition "beside"' },
  { word: 'besid', noun: false, reason: 'UCM typo of the preposition "beside"' },
  { word: 'parrallel', noun: false, reason: 'UCM typo of "parallel" (an adverb there)' },
  { word: 'differenet', noun: false, reason: 'UCM typo of the adjective "different"' },
  { word: 'spase', noun: false, reason: 'UCM typo of the adjective "sparse"' },
  { word: 'smalle', noun: false, reason: 'UCM typo of the adjective "small"' },
  { word: 'withe', noun: false, reason: 'UCM typo of the preposition "with"' },
  { word: 'whth', noun: false, reason: 'UCM typo of the preposition "with"' },
  { word: 'wothe', noun: false, reason: 'UCM typo of "with the"' },
  { word: 'othe', noun: false, reason: 'UCM typo of "other"/"the"' },
  { word: 'fo', noun: false, reason: 'UCM typo of the preposition "of"' },
  { word: 'wach', noun: false, reason: 'UCM typo of "each"' },
  { word: 'ars', noun: false, reason: 'UCM typo of the verb "are"' },
];

/**
 * Nouns that name no target in the image (spec section 1: "one", "size", "kinds", "lots", "side", "part", ...):
 * quantities and measures, relative positions, and words about the picture itself. Singular and plural listed.
 * "number" is here because "a number of buildings" (a quantity) is far more common in captions than a painted
 * number on a runway.
 */
export const DEFAULT_NOUN_STOP_LIST: readonly string[] = [
  // quantities, measures, kinds
  'one', 'ones', 'lots', 'piece', 'pieces', 'part', 'parts', 'number', 'numbers', 'amount', 'amounts',
  'bit', 'bits', 'bunch', 'couple', 'pair', 'pairs', 'group', 'groups', 'plenty', 'variety', 'kind', 'kinds',
  'sort', 'sorts', 'type', 'types', 'size', 'sizes', 'shape', 'shapes', 'color', 'colors', 'colour', 'colours',
  'row', 'rows', 'deal', 'mess',
  // relative positions and directions
  'side', 'sides', 'middle', 'center', 'centre', 'corner', 'corners', 'edge', 'edges', 'top', 'bottom', 'front',
  'back', 'left', 'right', 'direction', 'directions', 'position', 'positions', 'place', 'places', 'way', 'ways',
  // generic words and words about the picture
  'thing', 'things', 'other', 'others', 'image', 'images', 'picture', 'pictures', 'photo', 'photos', 'scene',
  'scenes', 'view', 'views',
];

/**
 * Nouns that often describe how targets are laid out rather than a target ("cars parked in lines", "farmland divided
 * into rectangles", "a line of trees"), and are a target in other places ("white mark lines on the runway", "a square
 * with a fountain"). With the layout rules on (`NounExtractor({ layoutRules: true })`, noun rules v2), an occurrence
 * is left out of the target nouns when `layoutUse` finds it in a layout phrase.
 */
export const LAYOUT_WORDS: ReadonlySet<string> = new Set([
  'line', 'lines', 'rectangle', 'rectangles', 'square', 'squares', 'grid', 'grids', 'column', 'columns',
  'strip', 'strips', 'circle', 'circles', 'ring', 'rings', 'cluster', 'clusters', 'array', 'arrays', 'pattern', 'patterns',
]);

/** Words that may stand between "in"/"into" and a layout word ("arranged in two neat lines"). */
const LAYOUT_MODIFIERS: ReadonlySet<string> = new Set([
  // Not "the": "a fountain in the square" names a place.
  'a', 'an', 'two', 'three', 'four', 'five', 'several', 'many', 'some', 'multiple', 'neat', 'straight', 'parallel',
  'regular', 'orderly', 'long', 'short', 'tidy', 'even', 'uniform', 'little', 'small', 'large', 'big',
]);

/**
 * Why the layout word at `index` is used as a layout word, or null when it names a thing. Rules, checked in order:
 * 1. it follows "in" or "into", with at most two modifiers between ("arranged in lines", "divided into rectangles",
 *    "parked in two neat lines");
 * 2. "of" follows it ("a line of trees", "a cluster of buildings": a quantity, like the stop-listed "row of");
 * 3. it is the verb "line up" / "lined" ("buildings line up along the road").
 */
export function layoutUse(tokens: readonly string[], index: number): string | null {
  const word = tokens[index]!;
  if (!LAYOUT_WORDS.has(word)) return null;
  for (let back = 1, skipped = 0; index - back >= 0 && skipped <= 2; back++) {
    const previous = tokens[index - back]!;
    if (previous === 'in' || previous === 'into') return `"${previous} … ${word}": how targets are laid out`;
    if (!LAYOUT_MODIFIERS.has(previous)) break;
    skipped++;
  }
  if (tokens[index + 1] === 'of') return `"${word} of": a quantity`;
  if ((word === 'line' || word === 'lines') && tokens[index + 1] === 'up') return `"${word} up": a verb`;
  return null;
}
