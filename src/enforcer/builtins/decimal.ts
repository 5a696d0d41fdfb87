/**
 * Exact order of two JSON number texts, as OPA's ast.Compare orders Numbers: by decimal value, not by the
 * nearest doubles. The cost follows the texts' length, not the size of an exponent such as 1e999999999.
 * And the texts of a JSON object's numbers, which JSON.parse does not keep.
 */

interface Decimal {
  sign: number;
  /** Significant digits, no leading or trailing zeros; the value is 0.digits × 10^magnitude. */
  digits: string;
  magnitude: bigint;
}

const NUMBER = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

function readDecimal(text: string): Decimal {
  const match = NUMBER.exec(text);
  if (!match) throw new Error(`not a number: ${text}`);
  const whole = match[2] as string;
  const fraction = match[3] ?? "";
  const all = whole + fraction;
  const leading = all.length - all.replace(/^0+/, "").length;
  const digits = all.slice(leading).replace(/0+$/, "");
  if (digits === "") return { sign: 0, digits: "", magnitude: 0n };
  const magnitude = BigInt(match[4] ?? "0") + BigInt(whole.length - leading);
  return { sign: match[1] === "-" ? -1 : 1, digits, magnitude };
}

/** -1, 0 or 1 as the number written `a` is below, equal to or above the number written `b`. */
export function compareDecimalTexts(a: string, b: string): number {
  const x = readDecimal(a);
  const y = readDecimal(b);
  if (x.sign !== y.sign) return x.sign < y.sign ? -1 : 1;
  if (x.sign === 0) return 0;
  let order = 0;
  if (x.magnitude !== y.magnitude) order = x.magnitude < y.magnitude ? -1 : 1;
  else {
    const width = Math.max(x.digits.length, y.digits.length);
    const left = x.digits.padEnd(width, "0");
    const right = y.digits.padEnd(width, "0");
    order = left === right ? 0 : left < right ? -1 : 1;
  }
  return order * x.sign;
}

const JSON_NUMBER = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const WHITESPACE = /[ \t\n\r]*/y;

/** The index after the JSON string that starts at `at`. */
function stringEnd(text: string, at: number): number {
  let i = at + 1;
  while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
  return i + 1;
}

/** The index after the JSON value that starts at `at` (the text is valid JSON). */
function valueEnd(text: string, at: number): number {
  if (text[at] === '"') return stringEnd(text, at);
  if (text[at] !== "{" && text[at] !== "[") {
    let i = at;
    while (i < text.length && !/[\s,\]}]/.test(text[i] as string)) i++;
    return i;
  }
  let depth = 0;
  let i = at;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === '"') {
      i = stringEnd(text, i);
      continue;
    }
    if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") depth--;
    i++;
    if (depth === 0) return i;
  }
  return i;
}

/**
 * The JSON text of each number that is a member of the top-level object of `text`, which JSON.parse has
 * accepted; where a key repeats, the last member wins, as it does for JSON.parse and Go's json.Unmarshal.
 */
export function topLevelNumberTexts(text: string): Map<string, string> {
  const texts = new Map<string, string>();
  const skip = (at: number) => {
    WHITESPACE.lastIndex = at;
    WHITESPACE.exec(text);
    return WHITESPACE.lastIndex;
  };
  let i = skip(0);
  if (text[i] !== "{") return texts;
  i = skip(i + 1);
  while (text[i] === '"') {
    const keyEnd = stringEnd(text, i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    i = skip(skip(keyEnd) + 1);
    JSON_NUMBER.lastIndex = i;
    const number = JSON_NUMBER.exec(text);
    if (number) texts.set(key, number[0]);
    else texts.delete(key);
    i = skip(valueEnd(text, i));
    if (text[i] === ",") i = skip(i + 1);
  }
  return texts;
}
