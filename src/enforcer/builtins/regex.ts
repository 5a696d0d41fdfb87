/**
 * regex.find_n, regex.replace and regex.template_match as OPA's v1/topdown/regex.go and
 * regex_template.go, on JavaScript's RegExp: RE2 syntax is translated where JavaScript spells it
 * differently (see re2-syntax.ts; leading flags here), and Go's rules for empty matches
 * (FindAllString, ReplaceAllString, Expand) are followed exactly.
 */
import { translateRe2 } from "./re2-syntax.ts";
import type { Builtin } from "./types.ts";
import { fail, intOperand, stringOperand } from "./values.ts";

const cache = new Map<string, RegExp>();
const CACHE_LIMIT = 256;

function escapeLiteral(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/-]/g, "\\$&");
}

/** An RE2 pattern as a JavaScript RegExp (global, unicode), or an error as Go's regexp.Compile. */
export function compile(pattern: string): RegExp {
  const cached = cache.get(pattern);
  if (cached) return cached;
  let source = pattern;
  let flags = "gu";
  let ungreedy = false;
  const leading = /^\(\?([imsU]+)\)/.exec(source);
  if (leading) {
    for (const letter of leading[1] as string) {
      if (letter === "U") ungreedy = true;
      else if (!flags.includes(letter)) flags += letter;
    }
    source = source.slice(leading[0].length);
  }
  source = translateRe2(source, ungreedy);
  let compiled: RegExp;
  try {
    compiled = new RegExp(source, flags);
  } catch (error) {
    fail(`error parsing regexp: ${(error as Error).message}`);
  }
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(pattern, compiled);
  return compiled;
}

function widthAt(text: string, position: number): number {
  const code = text.codePointAt(position);
  return code !== undefined && code > 0xffff ? 2 : 1;
}

/** The match at or after `from`, as [start, end, groups]. */
function execAt(re: RegExp, text: string, from: number): RegExpExecArray | null {
  re.lastIndex = from;
  return re.exec(text);
}

/** Go's FindAllString(text, n): an empty match right after a match is not one. */
export function findAll(re: RegExp, text: string, limit: number): string[] {
  const n = limit < 0 ? text.length + 1 : limit;
  const out: string[] = [];
  let position = 0;
  let previousEnd = -1;
  while (out.length < n && position <= text.length) {
    const match = execAt(re, text, position);
    if (!match) break;
    const start = match.index;
    const end = start + match[0].length;
    let accept = true;
    if (end === position) {
      if (start === previousEnd) accept = false;
      position += position < text.length ? widthAt(text, position) : 1;
    } else {
      position = end;
    }
    previousEnd = end;
    if (accept) out.push(match[0]);
  }
  return out;
}

/** Go's Regexp.Expand of a replacement template for one match. */
function expand(template: string, match: RegExpExecArray): string {
  let out = "";
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (c !== "$") {
      out += c;
      continue;
    }
    const rest = template.slice(i + 1);
    if (rest.startsWith("$")) {
      out += "$";
      i++;
      continue;
    }
    const braced = /^\{([A-Za-z0-9_]+)\}/.exec(rest);
    const bare = /^[A-Za-z0-9_]+/.exec(rest);
    const name = braced ? braced[1] : bare?.[0];
    if (!name) {
      out += "$";
      continue;
    }
    i += braced ? (braced[0] as string).length : name.length;
    const value = /^\d+$/.test(name) ? match[Number(name)] : match.groups?.[name];
    out += value ?? "";
  }
  return out;
}

/** Go's ReplaceAllString: no replacement for an empty match right after a match. */
function replaceAll(re: RegExp, text: string, template: string): string {
  let out = "";
  let lastEnd = 0;
  let position = 0;
  while (position <= text.length) {
    const match = execAt(re, text, position);
    if (!match) break;
    const start = match.index;
    const end = start + match[0].length;
    out += text.slice(lastEnd, start);
    if (end > lastEnd || start === 0) out += expand(template, match);
    lastEnd = end;
    const width = position < text.length ? widthAt(text, position) : 1;
    if (position + width > end) position += width;
    else if (position + 1 > end) position++;
    else position = end;
  }
  return out + text.slice(lastEnd);
}

/** OPA's delimiterIndices: the [start, end) of each top-level delimited section. */
function delimited(template: string, open: string, close: string): number[] {
  let level = 0;
  let index = 0;
  const out: number[] = [];
  for (let i = 0; i < template.length; i++) {
    if (template[i] === open) {
      level++;
      if (level === 1) index = i;
    } else if (template[i] === close) {
      level--;
      if (level === 0) out.push(index, i + 1);
      else if (level < 0) fail(`unbalanced braces in ${JSON.stringify(template)}`);
    }
  }
  if (level !== 0) fail(`unbalanced braces in ${JSON.stringify(template)}`);
  return out;
}

function templateMatch(template: unknown, value: unknown, start: unknown, end: unknown): boolean {
  const text = stringOperand(template, 1);
  const subject = stringOperand(value, 2);
  const open = stringOperand(start, 3);
  const close = stringOperand(end, 4);
  if (Buffer.byteLength(open) !== 1) fail("start delimiter has to be exactly one character long");
  if (Buffer.byteLength(close) !== 1) fail("end delimiter has to be exactly one character long");
  const indices = delimited(text, open, close);
  let source = "^";
  let last = 0;
  for (let i = 0; i < indices.length; i += 2) {
    const from = indices[i] as number;
    const to = indices[i + 1] as number;
    const inner = text.slice(from + 1, to - 1);
    compile(`^${inner}$`);
    source += `${escapeLiteral(text.slice(last, from))}(${inner})`;
    last = to;
  }
  source += `${escapeLiteral(text.slice(last))}$`;
  const re = compile(source);
  re.lastIndex = 0;
  return re.test(subject);
}

export const regexBuiltins: Record<string, Builtin> = {
  "regex.find_n": (pattern, value, n) => {
    const re = compile(stringOperand(pattern, 1));
    return findAll(re, stringOperand(value, 2), intOperand(n, 3));
  },
  "regex.replace": (value, pattern, replacement) =>
    replaceAll(compile(stringOperand(pattern, 2)), stringOperand(value, 1), stringOperand(replacement, 3)),
  "regex.template_match": templateMatch,
};
