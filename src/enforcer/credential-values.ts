/** What a masked value is shown as, wherever it turns up. */
export const MASKED = "[masked]";

/**
 * The shortest secret masked. A credential shorter than this (a one-letter password) would, replaced
 * everywhere, shred ordinary words and paths into noise while hiding next to nothing: it is left.
 */
export const MIN_SECRET_LENGTH = 4;

/** Words of a value of unknown shape (a `--mask`ed custom header) shorter than this are not masked alone. */
const MIN_FRAGMENT_LENGTH = 8;

/**
 * Every secret an erased credential value carries, longest first: the whole value; for
 * `Authorization: Bearer <token>` the token; for `Basic <base64>` the base64, the decoded
 * `user:password` and the password alone (a policy can decode it as easily as copy it); for a cookie
 * header each cookie's value. Other words of at least MIN_FRAGMENT_LENGTH characters are masked too, and
 * each secret's percent-encoded forms.
 */
export function secretsOf(erased: readonly unknown[]): string[] {
  const found = new Set<string>();
  const keep = (text: string, floor = MIN_SECRET_LENGTH) => {
    if (text.length >= floor) found.add(text);
  };
  const decodeBasic = (encoded: string) => {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) return;
    const decoded = Buffer.from(encoded, "base64").toString("utf8");
    if (!/^[\x20-\x7e]+$/.test(decoded)) return;
    keep(decoded);
    const colon = decoded.indexOf(":");
    if (colon >= 0) keep(decoded.slice(colon + 1));
  };
  const add = (text: string) => {
    keep(text);
    const trimmed = text.trim();
    const scheme = /^([A-Za-z][A-Za-z0-9._~+-]*)\s+(\S+)$/.exec(trimmed);
    if (scheme) {
      const [, name, credentials] = scheme as unknown as [string, string, string];
      keep(credentials);
      if (name.toLowerCase() === "basic") decodeBasic(credentials);
    }
    for (const pair of text.split(";")) {
      const equals = pair.indexOf("=");
      if (equals > 0 && !scheme) keep(pair.slice(equals + 1).trim());
    }
    for (const word of text.split(/[\s,;=]+/)) {
      if (word.length < MIN_FRAGMENT_LENGTH) continue;
      found.add(word);
      decodeBasic(word);
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
  // A secret copied into the path or query string arrives percent-encoded (a `+`, `/` or `=` of a token):
  // each encoding is masked too, with upper- and lower-case hex.
  for (const secret of [...found]) {
    const encoded = encodeURIComponent(secret);
    if (encoded === secret) continue;
    found.add(encoded);
    found.add(encoded.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase()));
  }
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
    // A number impact keeps as its logged text (JSON.rawJSON) is a number, not an object to copy.
    if ((JSON as unknown as { isRawJSON?: (value: unknown) => boolean }).isRawJSON?.(node)) return node;
    const copy: Record<string, unknown> = Object.create(null);
    for (const [key, inner] of Object.entries(node)) copy[text(key)] = walk(inner);
    return copy;
  };
  return walk(value) as T;
}
