import { DEFAULT_MASK } from "../enforcer/decision-log.ts";

/** What a masked value is shown as, wherever it turns up. */
export const MASKED = "[masked]";

/** Shorter fragments of a masked value are left: they would erase ordinary words from the report. */
const MIN_FRAGMENT_LENGTH = 8;

export interface MaskedInput {
  /** The input with every masked pointer erased, and the erased values masked wherever else they appear. */
  input: unknown;
  /** The values erased, as text, and their fragments (a bearer token without "Bearer ", a cookie's value). */
  secrets: string[];
}

/**
 * A recorded input, masked: the credential headers (authorization, cookie, proxy-authorization) and each
 * `--mask` pointer are erased, whatever the source. OPA's console decision logs have no mask of their own,
 * and other producers may send `Authorization`, so keys are matched without regard to case.
 */
export class InputMask {
  private readonly paths: string[][];

  constructor(pointers: readonly string[] = []) {
    this.paths = [...DEFAULT_MASK, ...pointers].map((pointer) =>
      pointer
        .split("/")
        .slice(2)
        .map((segment) => segment.replaceAll("~1", "/").replaceAll("~0", "~").toLowerCase()),
    );
  }

  apply(input: unknown): MaskedInput {
    const erased: unknown[] = [];
    let current = input;
    for (const path of this.paths) current = eraseAt(current, path, erased);
    // A masked value may also sit elsewhere in the input (a token in the path or the query string).
    const secrets = secretsOf(erased);
    return { input: redact(current, secrets), secrets };
  }
}

/** A copy of `node` without what `path` names (keys compared lower-cased); the erased values go to `erased`. */
function eraseAt(node: unknown, path: string[], erased: unknown[]): unknown {
  if (path.length === 0 || typeof node !== "object" || node === null) return node;
  const [head, ...rest] = path as [string, ...string[]];
  const entries = Object.entries(node);
  if (!entries.some(([key]) => key.toLowerCase() === head)) return node;
  const copy: Record<string, unknown> = Array.isArray(node) ? ([] as never) : Object.create(null);
  for (const [key, value] of entries) {
    if (key.toLowerCase() !== head) copy[key] = value;
    else if (rest.length === 0) erased.push(value);
    else copy[key] = eraseAt(value, rest, erased);
  }
  return copy;
}

/** Every string (and number) inside the erased values, whole and split into its words, longest first. */
function secretsOf(erased: unknown[]): string[] {
  const found = new Set<string>();
  const add = (text: string) => {
    if (text.length >= 4) found.add(text);
    for (const word of text.split(/[\s,;=]+/)) {
      if (word.length < MIN_FRAGMENT_LENGTH) continue;
      found.add(word);
      // A Basic credential is base64 of user:password; a policy can decode it as easily as copy it.
      if (/^[A-Za-z0-9+/]+={0,2}$/.test(word)) {
        const decoded = Buffer.from(word, "base64").toString("utf8");
        if (/^[\x20-\x7e]+$/.test(decoded) && decoded.length >= MIN_FRAGMENT_LENGTH) {
          found.add(decoded);
          for (const part of decoded.split(":")) if (part.length >= MIN_FRAGMENT_LENGTH) found.add(part);
        }
      }
    }
  };
  const walk = (value: unknown) => {
    if (typeof value === "string") add(value);
    else if (typeof value === "number") add(String(value));
    else if (typeof value === "object" && value !== null) {
      for (const inner of Object.values(value)) walk(inner);
    }
  };
  for (const value of erased) walk(value);
  return [...found].sort((a, b) => b.length - a.length);
}

/** `value` with every occurrence of a secret, in any string or object key, replaced by MASKED. */
export function redact<T>(value: T, secrets: readonly string[]): T {
  if (secrets.length === 0) return value;
  const text = (s: string) => secrets.reduce((out, secret) => out.replaceAll(secret, MASKED), s);
  const walk = (node: unknown): unknown => {
    if (typeof node === "string") return text(node);
    if (typeof node !== "object" || node === null) return node;
    if (Array.isArray(node)) return node.map(walk);
    const copy: Record<string, unknown> = Object.create(null);
    for (const [key, inner] of Object.entries(node)) copy[text(key)] = walk(inner);
    return copy;
  };
  return walk(value) as T;
}
