/**
 * An RE2 pattern (Go's regexp/syntax, Perl flags) as the source of a JavaScript unicode RegExp, in one pass
 * left to right, so an escaped backslash or a \Q…\E literal is never read again as syntax: \A and \z,
 * \Q…\E, (?P<name>…), POSIX classes, literal braces, any punctuation escaped, the repeat limit (a count
 * above 1000, or nested counts whose product is, is an error as in Go), and the (?U) flag's swapped
 * greediness.
 * https://github.com/golang/go/blob/master/src/regexp/syntax/parse.go
 */
import { fail } from "./values.ts";

const POSIX_CLASSES: Record<string, string> = {
  alnum: "0-9A-Za-z",
  alpha: "A-Za-z",
  ascii: "\\x00-\\x7F",
  blank: "\\t ",
  cntrl: "\\x00-\\x1F\\x7F",
  digit: "0-9",
  graph: "!-~",
  lower: "a-z",
  print: " -~",
  punct: "!-\\/:-@\\[-`{-~",
  space: "\\t\\n\\v\\f\\r ",
  upper: "A-Z",
  word: "0-9A-Za-z_",
  xdigit: "0-9A-Fa-f",
};

const REPEAT_LIMIT = 1000;
/** Punctuation RE2 lets be escaped and JavaScript's unicode mode does not. */
const LOOSE_ESCAPES = /[!"#%&',:;<=>@_`~-]/;

export function hexEscape(c: string): string {
  return `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`;
}

/** Text matched as is: ASCII punctuation and spaces as hex escapes, letters, digits and non-ASCII as they are. */
function literalText(text: string): string {
  let out = "";
  for (const c of text) out += c.length === 1 && c < "\u0080" && !/[A-Za-z0-9]/.test(c) ? hexEscape(c) : c;
  return out;
}

/** A class from its "[" at `start`: the JavaScript text and the index after its "]". */
function readClass(pattern: string, start: number): { text: string; end: number } {
  let out = "[";
  let i = start + 1;
  if (pattern[i] === "^") out += pattern[i++];
  // A "]" first in a class is a member in RE2, the end of an empty class in JavaScript.
  if (pattern[i] === "]") {
    out += "\\]";
    i++;
  }
  while (i < pattern.length && pattern[i] !== "]") {
    const c = pattern[i] as string;
    if (c === "\\") {
      const next = pattern[i + 1] ?? "";
      out += LOOSE_ESCAPES.test(next) ? hexEscape(next) : `\\${next}`;
      i += 2;
      continue;
    }
    const posix = /^\[:([a-z]+):\]/.exec(pattern.slice(i));
    const members = posix ? POSIX_CLASSES[posix[1] as string] : undefined;
    if (posix && members) {
      out += members;
      i += posix[0].length;
      continue;
    }
    out += c;
    i++;
  }
  if (i >= pattern.length) fail("error parsing regexp: missing closing ]");
  return { text: `${out}]`, end: i + 1 };
}

interface Frame {
  /** The largest product of nested repeat counts in the group so far. */
  worst: number;
  /** That product for the last atom, which a following quantifier repeats. */
  last: number;
}

export function translateRe2(pattern: string, ungreedy: boolean): string {
  let out = "";
  const stack: Frame[] = [{ worst: 1, last: 1 }];
  const frame = () => stack[stack.length - 1] as Frame;
  const atom = (weight: number) => {
    frame().last = weight;
    frame().worst = Math.max(frame().worst, weight);
  };
  /** A quantifier's laziness suffix: (?U) swaps greedy and lazy. */
  const laziness = (at: number): { text: string; skip: number } => {
    const lazy = pattern[at] === "?";
    return { text: lazy !== ungreedy ? "?" : "", skip: lazy ? 1 : 0 };
  };
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i] as string;
    if (c === "\\") {
      const next = pattern[i + 1];
      if (next === undefined) fail("error parsing regexp: trailing backslash at end of expression");
      if (next === "Q") {
        const close = pattern.indexOf("\\E", i + 2);
        const literal = close < 0 ? pattern.slice(i + 2) : pattern.slice(i + 2, close);
        out += literalText(literal);
        if (literal !== "") atom(1);
        i = close < 0 ? pattern.length : close + 2;
        continue;
      }
      if (next === "A") out += "(?<![\\s\\S])";
      else if (next === "z") out += "(?![\\s\\S])";
      else if (LOOSE_ESCAPES.test(next)) out += hexEscape(next);
      else out += `\\${next}`;
      atom(1);
      i += 2;
      continue;
    }
    if (c === "[") {
      const cls = readClass(pattern, i);
      out += cls.text;
      atom(1);
      i = cls.end;
      continue;
    }
    if (c === "(") {
      if (pattern.startsWith("(?P<", i)) {
        out += "(?<";
        i += 4;
      } else if (pattern[i + 1] === "?") {
        out += "(?";
        i += 2;
      } else {
        out += "(";
        i++;
      }
      stack.push({ worst: 1, last: 1 });
      continue;
    }
    if (c === ")") {
      const group = stack.length > 1 ? (stack.pop() as Frame) : { worst: 1, last: 1 };
      out += ")";
      atom(group.worst);
      i++;
      continue;
    }
    if (c === "*" || c === "+" || c === "?") {
      const suffix = laziness(i + 1);
      out += c + suffix.text;
      i += 1 + suffix.skip;
      continue;
    }
    if (c === "{") {
      const repeat = /^\{(\d+)(?:(,)(\d*))?\}/.exec(pattern.slice(i));
      if (!repeat) {
        out += hexEscape(c);
        atom(1);
        i++;
        continue;
      }
      const min = Number(repeat[1]);
      const max = repeat[2] === undefined ? min : repeat[3] === "" ? -1 : Number(repeat[3]);
      if (min > REPEAT_LIMIT || max > REPEAT_LIMIT || (max >= 0 && min > max)) {
        fail(`error parsing regexp: invalid repeat count: \`${repeat[0]}\``);
      }
      // Go's repeatIsValid: the counts of nested repeats multiply, and their product may not pass the limit.
      const count = max === 0 ? 0 : max > 0 ? max : min;
      const weight = count === 0 ? 1 : frame().last * count;
      if (weight > REPEAT_LIMIT) fail(`error parsing regexp: invalid repeat count: \`${repeat[0]}\``);
      atom(weight);
      const suffix = laziness(i + repeat[0].length);
      out += repeat[0] + suffix.text;
      i += repeat[0].length + suffix.skip;
      continue;
    }
    if (c === "}") {
      out += hexEscape(c);
      atom(1);
      i++;
      continue;
    }
    if (c !== "|") atom(1);
    out += c;
    i++;
  }
  return out;
}
