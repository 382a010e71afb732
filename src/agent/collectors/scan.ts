/**
 * Parsing kernel text without making a string or an array per field: the collectors run every
 * second, and what they allocate is what the garbage collector takes back every second. A line is a
 * [start, end) span of the file's text; a field is found by scanning its characters.
 */

/** Calls `fn(start, end)` for each line of `text` (the newline excluded; empty lines too). */
export function forEachLine(text: string, fn: (start: number, end: number) => void): void {
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    fn(start, end);
    start = end + 1;
  }
}

const isSpace = (c: number): boolean => c === 32 || c === 9;

/**
 * The whitespace-separated fields of text[start, end): their spans into `starts`/`ends` (grown by
 * the caller's reuse: at most their length), and their count.
 */
export function fieldSpans(text: string, start: number, end: number, starts: Int32Array, ends: Int32Array): number {
  let n = 0;
  let i = start;
  while (i < end && n < starts.length) {
    while (i < end && isSpace(text.charCodeAt(i))) i++;
    if (i >= end) break;
    starts[n] = i;
    while (i < end && !isSpace(text.charCodeAt(i))) i++;
    ends[n++] = i;
  }
  return n;
}

/** The number written in text[start, end): plain decimal integers without a string; anything else through Number(). */
export function numberAt(text: string, start: number, end: number): number {
  let v = 0;
  for (let i = start; i < end; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9 || v > 2 ** 53 / 10) return Number(text.slice(start, end));
    v = v * 10 + d;
  }
  return end > start ? v : NaN;
}

/** Whether text[start, end) is `word`. */
export function spanIs(text: string, start: number, end: number, word: string): boolean {
  return end - start === word.length && text.startsWith(word, start);
}
