/** C0 and C1 controls, DEL, and the marks that reorder or break a line (bidi overrides, line separators). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text from outside (an OPA's answer, a recorded request's path) for one line of a terminal or a log.
 * Control characters could move the cursor, recolour or rewrite what is shown (ANSI escapes, carriage
 * returns, bidi overrides), so they are shown as \u escapes; the text is capped at `max` characters.
 */
export function printable(value: unknown, max = 1_000): string {
  const text = String(value ?? "").replace(
    UNPRINTABLE,
    (char) => `\\u${(char.codePointAt(0) ?? 0).toString(16).padStart(4, "0")}`,
  );
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
