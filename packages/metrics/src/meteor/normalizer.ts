/**
 * Meteor 1.5's `-norm` tokenizer for English (`edu.cmu.meteor.util.Normalizer.normalizeLine` with punctuation
 * kept), followed by the lower-casing `-norm` implies.
 *
 * The COCO toolkit hands Meteor text its PTB step has already tokenized, and Meteor tokenizes again: it splits
 * hyphens between letters or digits (`cross-shaped` -> `cross shaped`), turns `'s` into `' s` and `n't` into
 * `n 't`, and keeps `2.5`, `12,000` and `-lrb-` whole. The rules below follow the Java regular expressions one by
 * one. Java's `\s`, `\p{Digit}` and `\p{Lower}` are ASCII-only, so they are spelled out rather than written with
 * JavaScript's (Unicode-aware) `\s`.
 */
import { ENGLISH_NONBREAKING_PREFIXES } from './resources/nonbreaking-prefixes.js';

// Letters Meteor treats as alphabetic: Latin-1/Latin Extended-A parts and Cyrillic blocks.
const ALPHA = 'A-Za-z\u0160\u017d\u0161\u017e\u0178\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u017e\u0400-\u04ff\u0500-\u0527\ua640-\ua66e\ua67e-\ua697\u1d00-\u1d7f';
const ALNUM = `0-9${ALPHA}`;
const JAVA_SPACE = ' \\t\\n\\x0B\\f\\r';

const SEPARATE_OTHER = new RegExp(`([^${ALNUM}${JAVA_SPACE}.'\`,\\-\u2018\u2019])`, 'g');
const MULTI_DOT = /\.(\.+)/g;
const MULTI_DOT_NEXT = /DOTMULTI\.([^.])/g;
const COMMA_NOT_DIGITS = /([^0-9]),([^0-9])/g;
const COMMA_AFTER_DIGIT = /([0-9]),([^0-9])/g;
const COMMA_BEFORE_DIGIT = /([^0-9]),([0-9])/g;
const SINGLE_QUOTES = /[`\u2018\u2019]/g;
const DOUBLE_QUOTES = /[\u201c\u201d]|''/g;
const DASH_BETWEEN_WORDS = new RegExp(`([${ALNUM}.])-([${ALNUM}])`, 'g');
const APOSTROPHE_BETWEEN_NON_LETTERS = new RegExp(`([^${ALPHA}])'([^${ALPHA}])`, 'g');
const APOSTROPHE_BEFORE_LETTER = new RegExp(`([^${ALPHA}0-9])'([${ALPHA}])`, 'g');
const APOSTROPHE_AFTER_LETTER = new RegExp(`([${ALPHA}])'([^${ALPHA}])`, 'g');
const APOSTROPHE_INSIDE_WORD = new RegExp(`([${ALPHA}])'([${ALPHA}])`, 'g');
const DECADE_APOSTROPHE = /([0-9])'(s)/g;
const ANY_LETTER = new RegExp(`[${ALPHA}]`);
const STARTS_LOWERCASE = /^[a-z]/;
const STARTS_DIGIT = /^[0-9]/;
/** Java's StringTokenizer default delimiters. */
const TOKEN_DELIMITERS = /[ \t\n\r\f]+/;
/** The Unicode spaces Meteor folds into one space at the end (ASCII space and the typographic spaces). */
const WHITE_RUNS = /[ \u00a0\u1680\u2000-\u200b\u202f\u205f\u3000\ufeff]+/g;

/** Java's `String.trim()`: strip every character up to U+0020 from both ends. */
export function javaTrim(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && text.charCodeAt(start) <= 0x20) start++;
  while (end > start && text.charCodeAt(end - 1) <= 0x20) end--;
  return text.slice(start, end);
}

/** Split on Java StringTokenizer's default delimiters, without empty tokens. */
export function javaTokenize(text: string): string[] {
  return text.split(TOKEN_DELIMITERS).filter((token) => token !== '');
}

/**
 * Meteor's marking of dot runs, verbatim: each pass turns one dot of every run after `DOTMULTI` into `DOT`, so it
 * takes as many passes over the line as the longest run has dots (quadratic: a caption of 200,000 dots took
 * minutes).
 */
export function markDotRunsByPasses(working: string): string {
  while (working.includes('DOTMULTI.')) {
    working = working.replace(MULTI_DOT_NEXT, 'DOTDOTMULTI $1');
    working = working.replaceAll('DOTMULTI.', 'DOTDOTMULTI');
  }
  return working;
}

const MARKED_DOT_RUN = /DOTMULTI(\.+)/g;

/**
 * The same in one pass: `DOTMULTI` and n dots become n x `DOT`, `DOTMULTI` and a space (none at the end of the
 * line). Exact when every `DOTMULTI` in the line is one `MULTI_DOT` inserted, that is when the text had none.
 */
export function markDotRuns(working: string): string {
  return working.replace(MARKED_DOT_RUN, (_run: string, dots: string, offset: number) => {
    const atEnd = offset + 'DOTMULTI'.length + dots.length === working.length;
    return `${'DOT'.repeat(dots.length)}DOTMULTI${atEnd ? '' : ' '}`;
  });
}

/** Meteor's restoring of the marked runs, verbatim: one `DOT` per pass becomes a dot again (quadratic too). */
export function restoreDotRunsByPasses(working: string): string {
  while (working.includes('DOTDOTMULTI')) working = working.replaceAll('DOTDOTMULTI', 'DOTMULTI.');
  return working.replaceAll('DOTMULTI', '.');
}

const MARKED_BLOCK = /(?:DOT)*DOTMULTI/g;

/** The same in one pass: n x `DOT` then `DOTMULTI` become n + 1 dots. */
export function restoreDotRuns(working: string): string {
  return working.replace(MARKED_BLOCK, (block: string) => '.'.repeat((block.length - 'DOTMULTI'.length) / 3 + 1));
}

/** Meteor's English `-norm` normalisation of one line, before lower-casing. */
export function meteorNormalizeLine(line: string): string {
  // A line that itself contains DOTMULTI takes Meteor's passes; every other line the one-pass equivalents.
  const literalMarker = line.includes('DOTMULTI');
  let working = ` ${line} `;
  working = working.replace(SEPARATE_OTHER, ' $1 ');

  working = working.replace(MULTI_DOT, ' DOTMULTI$1');
  working = literalMarker ? markDotRunsByPasses(working) : markDotRuns(working);

  working = working.replace(COMMA_NOT_DIGITS, '$1 , $2');
  working = working.replace(COMMA_AFTER_DIGIT, '$1 , $2');
  working = working.replace(COMMA_BEFORE_DIGIT, '$1 , $2');

  working = working.replace(SINGLE_QUOTES, "'");
  working = working.replace(DOUBLE_QUOTES, ' " ');

  working = working.replaceAll('\u2013', '-');
  working = working.replaceAll('--', '-');

  // Meteor removes dashes between words so that partial matches get credit.
  working = working.replace(DASH_BETWEEN_WORDS, '$1 $2');

  // English splits contractions to the right.
  working = working.replace(APOSTROPHE_BETWEEN_NON_LETTERS, "$1 ' $2");
  working = working.replace(APOSTROPHE_BEFORE_LETTER, "$1 ' $2");
  working = working.replace(APOSTROPHE_AFTER_LETTER, "$1 ' $2");
  working = working.replace(APOSTROPHE_INSIDE_WORD, "$1 '$2");
  working = working.replace(DECADE_APOSTROPHE, "$1 '$2");

  // Rebuild the line, splitting a final period off unless the word is a non-breaking prefix.
  const words = javaTokenize(working);
  let rebuilt = '';
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word.length > 1 && word.endsWith('.')) {
      const prefix = word.slice(0, -1);
      const type = ENGLISH_NONBREAKING_PREFIXES.get(prefix);
      const next = i < words.length - 1 ? words[i + 1]! : undefined;
      if (prefix.includes('.') && ANY_LETTER.test(prefix)) {
        // Dotted initialisms lose their dots (U.S. -> US) to match undotted text.
        rebuilt += word.replaceAll('.', '');
      } else if (type === 'any' || (next !== undefined && STARTS_LOWERCASE.test(next))) {
        rebuilt += word;
      } else if (type === 'numeric' && next !== undefined && STARTS_DIGIT.test(next)) {
        rebuilt += word;
      } else {
        rebuilt += `${prefix} .`;
      }
    } else {
      rebuilt += word;
    }
    rebuilt += ' ';
  }
  working = rebuilt;

  working = literalMarker ? restoreDotRunsByPasses(working) : restoreDotRuns(working);

  return javaTrim(working.replace(WHITE_RUNS, ' '));
}

/** Text made only of ASCII letters, digits and spaces/tabs passes through every rule unchanged. */
const PLAIN_TEXT = /^[A-Za-z0-9 \t]*$/;

/** The words Meteor aligns for one line under `-l en -norm`: normalised, lower-cased, split on whitespace. */
export function meteorWords(line: string): string[] {
  // Fast path for the common case (PTB-tokenized captions): no rule can fire, only the whitespace split.
  if (PLAIN_TEXT.test(line)) return javaTokenize(line.toLowerCase());
  return javaTokenize(meteorNormalizeLine(line).toLowerCase());
}
