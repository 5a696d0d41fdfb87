/**
 * strings.any_prefix_match / any_suffix_match / count, indexof_n, glob.quote_meta and numbers.range_step
 * as OPA's v1/topdown/strings.go, glob.go and numbers.go (indices count runes, as OPA's do).
 */
import type { Builtin } from "./types.ts";
import { fail, intOperand, stringOperand } from "./values.ts";

/** A string, or an array/set of strings (sets reach a host built-in as arrays). */
function stringsOf(value: unknown, position: number): string[] {
  if (typeof value === "string") return [value];
  if (!Array.isArray(value)) fail(`operand ${position} must be one of {string, set, array}`);
  return value.map((entry) => stringOperand(entry, position));
}

function anyMatch(test: (text: string, affix: string) => boolean): Builtin {
  return (search, base) => {
    const texts = stringsOf(search, 1);
    const affixes = stringsOf(base, 2);
    return texts.some((text) => affixes.some((affix) => test(text, affix)));
  };
}

function count(search: unknown, substring: unknown): number {
  const text = stringOperand(search, 1);
  const part = stringOperand(substring, 2);
  if (part === "") return [...text].length + 1;
  let n = 0;
  for (let at = text.indexOf(part); at >= 0; at = text.indexOf(part, at + part.length)) n++;
  return n;
}

function indexOfN(haystack: unknown, needle: unknown): number[] {
  const base = [...stringOperand(haystack, 1)];
  const search = [...stringOperand(needle, 2)];
  if (search.length === 0) fail("empty search character");
  const out: number[] = [];
  for (let i = 0; i + search.length <= base.length; i++) {
    if (search.every((r, j) => base[i + j] === r)) out.push(i);
  }
  return out;
}

function rangeStep(a: unknown, b: unknown, step: unknown): number[] {
  const from = intOperand(a, 1);
  const to = intOperand(b, 2);
  const by = intOperand(step, 3);
  if (by <= 0) fail("numbers.range_step: step must be a positive number above zero");
  const out: number[] = [];
  if (from <= to) for (let n = from; n <= to; n += by) out.push(n);
  else for (let n = from; n >= to; n -= by) out.push(n);
  return out;
}

export const stringBuiltins: Record<string, Builtin> = {
  "strings.any_prefix_match": anyMatch((text, prefix) => text.startsWith(prefix)),
  "strings.any_suffix_match": anyMatch((text, suffix) => text.endsWith(suffix)),
  "strings.count": count,
  indexof_n: indexOfN,
  "glob.quote_meta": (value) => stringOperand(value, 1).replace(/[*?\\[\]{}]/g, "\\$&"),
  "numbers.range_step": rangeStep,
};
