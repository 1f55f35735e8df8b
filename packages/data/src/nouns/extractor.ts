import winkNLP, { type ItsFunction, type WinkMethods } from 'wink-nlp';
import model from 'wink-eng-lite-web-model';
import { tokenizeCaption } from '../dataset/tokenize';
import { DEFAULT_TAG_OVERRIDES, layoutUse, type TagOverride } from './lexicon';

/** Name and version of the tagger, recorded with saved noun labels. */
export const NOUN_TAGGER = 'wink-nlp 2.4.0 + wink-eng-lite-web-model 1.8.1';

let sharedTagger: WinkMethods | undefined;

/** The tagger is built once per process: loading the model takes a few hundred milliseconds. */
function tagger(): WinkMethods {
  // Only sentence splitting and POS tagging: negation, sentiment and entity recognition are not needed.
  sharedTagger ??= winkNLP(model, ['sbd', 'pos']);
  return sharedTagger;
}

export interface NounExtractorOptions {
  /** Word-level corrections applied after tagging; default `DEFAULT_TAG_OVERRIDES`. `[]` for the bare tagger. */
  overrides?: readonly TagOverride[];
  /** Map plurals to singular with the tagger's lemmatiser ("airplanes" -> "airplane"). Default false. */
  mergePlurals?: boolean;
  /**
   * Leave layout words used as layout ("arranged in lines", "divided into rectangles", "a line of trees") out of
   * `nounsOf` (see `layoutUse`): they are nouns, but not targets. Default false (`tag` reports them either way).
   */
  layoutRules?: boolean;
}

/** One caption token with the extractor's decision. */
export interface TaggedToken {
  /** The token as written (lower-cased). */
  token: string;
  /** The noun as a class name: the token, or its singular with `mergePlurals`. */
  noun: string | null;
  /** Universal POS tag of the token's head piece (the last word piece of "t-junction"), after overrides. */
  tag: string;
  /** For a noun used as a layout word ("in lines"), why (see `layoutUse`); otherwise absent. */
  layout?: string;
}

/**
 * Finds the common nouns (singular and plural) of a caption with a part-of-speech tagger (wink-nlp), corrected by
 * a small domain lexicon (`DEFAULT_TAG_OVERRIDES`). Works on the dataset's tokens, so "t-junction" stays one noun
 * (it is a noun when its last piece is). Proper nouns, pronouns and numerals are not common nouns.
 *
 * @example
 * ```ts
 * const nouns = new NounExtractor().nounsOf(['two', 'airplanes', 'at', 'the', 'airport']); // ['airplanes', 'airport']
 * ```
 */
export class NounExtractor {
  readonly mergePlurals: boolean;
  readonly layoutRules: boolean;
  readonly overrides: readonly TagOverride[];
  private readonly byWord: Map<string, TagOverride[]>;

  constructor(options: NounExtractorOptions = {}) {
    this.overrides = options.overrides ?? DEFAULT_TAG_OVERRIDES;
    this.mergePlurals = options.mergePlurals ?? false;
    this.layoutRules = options.layoutRules ?? false;
    this.byWord = new Map();
    for (const override of this.overrides) {
      const list = this.byWord.get(override.word) ?? [];
      list.push(override);
      this.byWord.set(override.word, list);
    }
  }

  /** Tags each token (lower-cased tokens as in a `Caption`; a raw string is tokenised first). */
  tag(caption: readonly string[] | string): TaggedToken[] {
    const tokens = typeof caption === 'string' ? tokenizeCaption(caption) : caption.map((t) => t.toLowerCase());
    if (tokens.length === 0) return [];
    const text = tokens.join(' ');
    // Character span of each caption token in `text`.
    const starts: number[] = [];
    let cursor = 0;
    for (const token of tokens) {
      starts.push(cursor);
      cursor += token.length + 1;
    }
    const doc = tagger().readDoc(text);
    const its = tagger().its;
    const values = doc.tokens().out() as string[];
    const tags = doc.tokens().out(its.pos) as string[];
    // The typings declare lemma with the addon-taking signature of a token helper; it is one at run time.
    const lemmas = this.mergePlurals ? (doc.tokens().out(its.lemma as unknown as ItsFunction<string>) as string[]) : undefined;
    const headTag: string[] = tokens.map(() => 'X');
    const headLemma: string[] = [...tokens];
    // Walk the tagger's pieces in order; the last word-like piece inside a caption token is its head.
    let position = 0;
    let tokenIndex = 0;
    for (let i = 0; i < values.length; i++) {
      const value = values[i]!;
      const found = text.indexOf(value, position);
      if (found < 0) continue; // the tagger normalised this piece; it cannot be placed, and is skipped
      position = found + value.length;
      while (tokenIndex + 1 < tokens.length && found >= starts[tokenIndex + 1]!) tokenIndex++;
      if (/[\p{L}\p{N}]/u.test(value)) {
        headTag[tokenIndex] = tags[i]!;
        if (lemmas) headLemma[tokenIndex] = lemmas[i]!;
      }
    }
    return tokens.map((token, index) => {
      const override = this.byWord.get(token)?.find((o) => !o.before || o.before.includes(tokens[index + 1] ?? ''));
      const tag = headTag[index]!;
      const isNoun = override ? override.noun : tag === 'NOUN';
      let noun: string | null = isNoun ? token : null;
      // Only plurals are merged (the lemmatiser would also turn "swimming" into "swim"); hyphenated compounds
      // keep their surface form.
      const lemma = headLemma[index]!.toLowerCase();
      if (noun && this.mergePlurals && token.endsWith('s') && !token.includes('-') && lemma !== token && lemma.length > 0) noun = lemma;
      const layout = noun ? layoutUse(tokens, index) : null;
      return { token, noun, tag: override ? (override.noun ? 'NOUN' : `${tag}*`) : tag, ...(layout ? { layout } : {}) };
    });
  }

  /**
   * The distinct common nouns of a caption, in order of first appearance. Tokens in `exclude` (checked as written,
   * before plurals are merged, so "lots" stays out even though its singular "lot" is a class) are left out, and with
   * `layoutRules` so are layout words used as layout.
   */
  nounsOf(caption: readonly string[] | string, exclude?: ReadonlySet<string>): string[] {
    const nouns: string[] = [];
    for (const { token, noun, layout } of this.tag(caption)) {
      if (this.layoutRules && layout) continue;
      if (noun !== null && !exclude?.has(token) && !nouns.includes(noun)) nouns.push(noun);
    }
    return nouns;
  }
}

let defaultExtractor: NounExtractor | undefined;

/** The distinct common nouns of a caption with the default extractor. */
export function extractNouns(caption: readonly string[] | string): string[] {
  defaultExtractor ??= new NounExtractor();
  return defaultExtractor.nounsOf(caption);
}
