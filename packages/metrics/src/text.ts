/**
 * Small helpers that reproduce the exact string and number behaviour of the reference implementations
 * (Python's `str.split`, Java's `String.hashCode`, NumPy's `mean`), so our scores match theirs to the last bits.
 */

/** Characters Python's `str.split()` (no argument) treats as whitespace. */
const PYTHON_WHITESPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

/** `s.split()` in Python: split on runs of Unicode whitespace, no empty strings. */
export function splitPythonWhitespace(text: string): string[] {
  const parts = text.split(PYTHON_WHITESPACE);
  // A leading or trailing separator leaves one empty string at either end.
  if (parts.length > 0 && parts[0] === '') parts.shift();
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/** Java's `String.hashCode()`: the Meteor aligner compares words by this 32-bit hash, not by string equality. */
export function javaStringHash(text: string): number {
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (Math.imul(hash, 31) + text.charCodeAt(i)) | 0;
  return hash;
}

/**
 * NumPy's summation of a float64 array (`np.add.reduce`), which is a pairwise sum with an 8-way unrolled
 * inner loop. Using the same order keeps corpus means identical to `np.mean` bit for bit.
 */
export function numpySum(values: ArrayLike<number>, start = 0, count = values.length - start): number {
  if (count < 8) {
    let sum = 0;
    for (let i = 0; i < count; i++) sum += values[start + i]!;
    return sum;
  }
  if (count <= 128) {
    const r = [0, 0, 0, 0, 0, 0, 0, 0];
    for (let j = 0; j < 8; j++) r[j] = values[start + j]!;
    let i = 8;
    for (; i < count - (count % 8); i += 8) {
      for (let j = 0; j < 8; j++) r[j]! += values[start + i + j]!;
    }
    let sum = r[0]! + r[1]! + (r[2]! + r[3]!) + (r[4]! + r[5]! + (r[6]! + r[7]!));
    for (; i < count; i++) sum += values[start + i]!;
    return sum;
  }
  let half = Math.floor(count / 2);
  half -= half % 8;
  return numpySum(values, start, half) + numpySum(values, start + half, count - half);
}

/** `np.mean` of a 1-D float64 array; NaN for an empty array as NumPy gives. */
export function numpyMean(values: ArrayLike<number>): number {
  if (values.length === 0) return Number.NaN;
  return numpySum(values) / values.length;
}
