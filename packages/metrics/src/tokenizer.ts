/**
 * The caption tokenizer of the COCO caption evaluation toolkit, in TypeScript.
 *
 * The toolkit runs Stanford PTBTokenizer 3.4.1 (`-preserveLines -lowerCase`) over every caption and then drops
 * the tokens of its punctuation list. This module reproduces that pipeline for the text found in captions:
 * quotes become `` and '', clitics split off (`isn't` -> `is n't`, `ship's` -> `ship 's`), brackets become
 * -LRB-/-RRB-/..., numbers with inner `.` or `,` and hyphenated words stay whole, then everything is lower-cased
 * and the filter applied. The filter compares case-sensitively after lower-casing, which is why `-lrb-` and
 * `-rrb-` survive in the toolkit's output; we keep that quirk because every published score includes it.
 */

/** Tokens the toolkit removes after PTB tokenization (exact, case-sensitive comparison). */
export const PUNCTUATION_FILTER: readonly string[] = [
  "''",
  "'",
  '``',
  '`',
  '-LRB-',
  '-RRB-',
  '-LCB-',
  '-RCB-',
  '.',
  '?',
  '!',
  ',',
  ':',
  '-',
  '--',
  '...',
  ';',
];

const FILTER_SET = new Set(PUNCTUATION_FILTER);

const BRACKET_TOKENS: ReadonlyMap<string, string> = new Map([
  ['(', '-LRB-'],
  [')', '-RRB-'],
  ['[', '-LSB-'],
  [']', '-RSB-'],
  ['{', '-LCB-'],
  ['}', '-RCB-'],
]);

/** Clitics PTB splits off the end of a word, longest first so `n't` wins over `'t`. */
const CLITIC_SUFFIX = /^(.*[^'])(n't|'s|'re|'ve|'ll|'d|'m)$/i;
/** A chunk that is itself a clitic (`'s` written apart) stays one token. */
const STANDALONE_CLITIC = /^(?:'(?:s|re|ve|ll|d|m)|n't)$/i;
/** Words PTB splits into two although they carry no apostrophe. */
const SPLIT_WORDS: ReadonlyMap<string, number> = new Map([
  ['cannot', 3],
  ['gonna', 3],
  ['gotta', 3],
  ['wanna', 3],
  ['gimme', 3],
  ['lemme', 3],
]);
/** Initialisms such as `u.s.` keep their final period, as PTB keeps them whole. */
const INITIALISM = /^(?:[A-Za-z]\.){2,}$/;
/** Any whitespace, including the Unicode spaces Java's tokenizer also splits on. */
const WHITESPACE = /[\s\u0085\u200b]+/;

/**
 * Characters normalised before splitting: curly quotes become the ASCII forms PTB emits (`` '' ` '), and
 * en/em dashes become `--` as PTB's ptb3Dashes option does.
 */
function normaliseCharacters(text: string): string {
  return text
    .replace(/[\u201c\u201e]/g, ' `` ')
    .replace(/\u201d/g, " '' ")
    .replace(/\u2018/g, '`')
    .replace(/\u2019/g, "'")
    .replace(/[\u2013\u2014]/g, ' -- ');
}

/** A chunk of only ASCII letters and digits is one token (unless it is a word PTB splits, like `cannot`). */
const PLAIN_WORD = /^[A-Za-z0-9]+$/;

/** Split one whitespace-free chunk into PTB tokens (original case kept). */
function tokenizeChunk(chunk: string, out: string[]): void {
  if (PLAIN_WORD.test(chunk) && !SPLIT_WORDS.has(chunk.toLowerCase())) {
    out.push(chunk);
    return;
  }
  const front: string[] = [];
  const back: string[] = [];
  let rest = chunk;

  // Peel punctuation off both ends until the core word is reached.
  for (let guard = 0; rest.length > 0 && guard < 1000; guard++) {
    if (STANDALONE_CLITIC.test(rest) || /^-+$/.test(rest) || rest === '``' || rest === "''") break;
    const first = rest[0]!;
    if (first === '"') {
      front.push('``');
      rest = rest.slice(1);
      continue;
    }
    if (rest.startsWith('``')) {
      front.push('``');
      rest = rest.slice(2);
      continue;
    }
    if (first === "'" || first === '`') {
      front.push(first);
      rest = rest.slice(1);
      continue;
    }
    if (first === '(' || first === '[' || first === '{') {
      front.push(BRACKET_TOKENS.get(first)!);
      rest = rest.slice(1);
      continue;
    }
    if (first === '$' || first === '#' || first === '\u00a3' || first === '\u20ac') {
      if (rest.length > 1) {
        front.push(first);
        rest = rest.slice(1);
        continue;
      }
      break;
    }
    if (rest.endsWith('...')) {
      back.push('...');
      rest = rest.slice(0, -3);
      continue;
    }
    if (rest.endsWith("''") && rest.length > 2) {
      back.push("''");
      rest = rest.slice(0, -2);
      continue;
    }
    const last = rest[rest.length - 1]!;
    if (last === '"') {
      back.push("''");
      rest = rest.slice(0, -1);
      continue;
    }
    if (last === "'" && rest.length > 1) {
      back.push("'");
      rest = rest.slice(0, -1);
      continue;
    }
    if (last === ')' || last === ']' || last === '}') {
      back.push(BRACKET_TOKENS.get(last)!);
      rest = rest.slice(0, -1);
      continue;
    }
    if (last === '%' && rest.length > 1) {
      back.push('%');
      rest = rest.slice(0, -1);
      continue;
    }
    if (',;:!?'.includes(last) && rest.length > 1) {
      back.push(last);
      rest = rest.slice(0, -1);
      continue;
    }
    if (last === '.' && rest.length > 1) {
      if (INITIALISM.test(rest)) break;
      back.push('.');
      rest = rest.slice(0, -1);
      continue;
    }
    break;
  }

  out.push(...front);
  if (rest.length > 0) splitCore(rest, out);
  for (let i = back.length - 1; i >= 0; i--) out.push(back[i]!);
}

/** Split inside the core of a chunk: brackets, quotes and separators between words, then clitics. */
function splitCore(core: string, out: string[]): void {
  if (/^-+$/.test(core) || STANDALONE_CLITIC.test(core) || core === '``' || core === "''") {
    out.push(core);
    return;
  }
  // Brackets, double quotes and `;!?` are always separate tokens; commas and colons only outside numbers.
  const pieces = core.split(/([()[\]{}";!?]|\.\.\.|(?<!\d),|,(?!\d)|(?<!\d):|:(?!\d))/);
  let previous = '';
  for (const piece of pieces) {
    if (piece === '') continue;
    const bracket = BRACKET_TOKENS.get(piece);
    if (bracket !== undefined) {
      out.push(bracket);
    } else if (piece === '"') {
      out.push(previous === '' || BRACKET_TOKENS.has(previous) ? '``' : "''");
    } else if (piece.length === 1 && ';!?,:'.includes(piece)) {
      out.push(piece);
    } else if (piece === '...') {
      out.push(piece);
    } else {
      splitClitics(piece, out);
    }
    previous = piece;
  }
}

function splitClitics(word: string, out: string[]): void {
  const lower = word.toLowerCase();
  const splitAt = SPLIT_WORDS.get(lower);
  if (splitAt !== undefined) {
    out.push(word.slice(0, splitAt), word.slice(splitAt));
    return;
  }
  const clitic = CLITIC_SUFFIX.exec(word);
  if (clitic !== null && /[A-Za-z0-9\u00c0-\u024f]$/.test(clitic[1]!)) {
    out.push(clitic[1]!, clitic[2]!);
    return;
  }
  out.push(word);
}

/** PTB tokens of one caption, lower-cased, before the punctuation filter. */
export function ptbTokenizeLowercased(caption: string): string[] {
  const tokens: string[] = [];
  // The toolkit writes one caption per line, so line breaks inside a caption are spaces.
  const chunks = normaliseCharacters(caption.replace(/[\r\n]+/g, ' ')).split(WHITESPACE);
  for (const chunk of chunks) {
    if (chunk !== '') tokenizeChunk(chunk, tokens);
  }
  return tokens.map((token) => token.toLowerCase());
}

/**
 * Tokenize one caption exactly as the COCO caption toolkit does: PTB tokens, lower-cased, punctuation filter
 * applied, joined by single spaces. An empty or punctuation-only caption gives the empty string.
 *
 * @example
 * tokenizeCaption('The ship\'s deck (wooden) isn\'t empty.'); // "the ship 's deck -lrb- wooden -rrb- is n't empty"
 */
export function tokenizeCaption(caption: string): string {
  return ptbTokenizeLowercased(caption)
    .filter((token) => !FILTER_SET.has(token))
    .join(' ');
}
