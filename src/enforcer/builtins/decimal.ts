/**
 * Exact order of two JSON number texts, as OPA's ast.Compare orders Numbers: by decimal value, not by the
 * nearest doubles. The cost follows the texts' length, not the size of an exponent such as 1e999999999.
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
