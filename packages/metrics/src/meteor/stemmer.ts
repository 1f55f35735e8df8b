/**
 * The stem module's stemmer: Snowball English (Porter2), from the `porter2` package.
 *
 * Meteor 1.5 ships Snowball's generated Java `englishStemmer`. `porter2` 1.1.0 gives the same stem as Snowball
 * 2.2.0 for every word we compared (about a million: all WordNet 3.0 lemmas and exception forms and their
 * regular inflections); Snowball 3.0 (2025) changed a few English rules, which is why the version is pinned.
 */
import { stem as porter2Stem } from 'porter2';

/** Snowball English stem of a lower-cased word, memoised because caption vocabularies repeat heavily. */
export class SnowballEnglishStemmer {
  private readonly cache = new Map<string, string>();

  stem(word: string): string {
    let stemmed = this.cache.get(word);
    if (stemmed === undefined) {
      stemmed = porter2Stem(word);
      this.cache.set(word, stemmed);
    }
    return stemmed;
  }
}
