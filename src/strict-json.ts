/**
 * JSON read the way Go reads it into a struct, or refused: OCI manifests (OPA, oras and distribution decode
 * them), a bundle's .manifest and .signatures.json (OPA decodes them into its Manifest and SignaturesConfig).
 * Go's encoding/json which matches an object key to a struct field case-insensitively (ASCII case, plus
 * U+017F ſ for "s" and U+212A K for "k": unicode.SimpleFold) and keeps the last key that matches;
 * JSON.parse keeps only the last exact duplicate. So `"layers"` followed by `"Layers"` is one manifest to
 * JavaScript and another to OPA. Anything that two such readers could read differently is refused here:
 * duplicate keys (exact or case-folded), a known field in other case, lone surrogates (Go turns them into
 * U+FFFD, JavaScript keeps them), invalid UTF-8, and (with `integersOnly`) numbers that are not integer
 * literals (Go's int64 refuses 2.0 and 1e3; JavaScript reads them as integers). What is accepted comes back
 * as null-prototype objects.
 * https://pkg.go.dev/encoding/json#Unmarshal
 */

const MAX_DEPTH = 32;
const INTEGER = /^-?(0|[1-9][0-9]*)$/;
/** In a /u pattern a surrogate pair is one code point, so only an unpaired half matches. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** A key as Go compares it to a field name: the only non-ASCII runes that fold onto ASCII are ſ and K. */
function foldKey(key: string): string {
  return key.replaceAll("ſ", "s").toLowerCase();
}

/** How a kind of document is read: the struct fields Go binds, and whether its numbers are all integers. */
export interface StrictJsonShape {
  fields: readonly string[];
  /** Refuse numbers that are not integer literals (where Go reads every number into an int). */
  integersOnly: boolean;
  /** The deepest nesting read (default 32); a bundle manifest's metadata may nest as deep as OPA reads. */
  maxDepth?: number;
}

/** Why a document was refused: one phrase, for the caller to put in its one line. */
export class AmbiguousJson extends Error {}

/**
 * Parses `bytes` as JSON only when every reader reads it the same way; throws AmbiguousJson naming the first
 * thing that could be read two ways, or SyntaxError when it is not JSON.
 */
export function parseStrictJson(bytes: Uint8Array, shape: StrictJsonShape): unknown {
  let text: string;
  try {
    // A byte-order mark is kept (and then fails JSON.parse), as Go refuses it too.
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new AmbiguousJson("it is not valid UTF-8");
  }
  // JSON.parse first: the key scan below may then rely on the text being well-formed JSON.
  JSON.parse(text);
  checkKeys(text, shape);
  return JSON.parse(text, revive);
}

function revive(_key: string, value: unknown): unknown {
  if (typeof value === "string" && LONE_SURROGATE.test(value)) {
    throw new AmbiguousJson(`the string ${JSON.stringify(value.slice(0, 80))} holds a lone surrogate`);
  }
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const object: Record<string, unknown> = Object.create(null);
    for (const name of Object.keys(value)) object[name] = (value as Record<string, unknown>)[name];
    return object;
  }
  return value;
}

/**
 * Walks well-formed JSON text and checks the keys of every object: none repeated, exactly or once case is
 * folded, and none that Go would bind to a known field it does not spell exactly. With `integersOnly`,
 * every number must be an integer literal. Depth is bounded.
 */
function checkKeys(text: string, shape: StrictJsonShape): void {
  const fieldByFold = new Map(shape.fields.map((field) => [foldKey(field), field]));
  // One entry per open object (its folded keys) or array (null).
  const open: (Map<string, string> | null)[] = [];
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === "{" || char === "[") {
      open.push(char === "{" ? new Map() : null);
      const limit = shape.maxDepth ?? MAX_DEPTH;
      if (open.length > limit) throw new AmbiguousJson(`it nests deeper than ${limit} levels`);
    } else if (char === "}" || char === "]") {
      open.pop();
    } else if (char === '"') {
      const end = endOfString(text, i);
      const raw = text.slice(i, end + 1);
      i = end;
      let next = end + 1;
      while (next < text.length && " \t\n\r".includes(text[next] as string)) next++;
      const keys = open.at(-1);
      if (text[next] === ":" && keys) checkKey(JSON.parse(raw) as string, keys, fieldByFold);
    } else if (char === "-" || (char !== undefined && char >= "0" && char <= "9")) {
      const literal = /^-?[0-9.eE+-]+/.exec(text.slice(i, i + 400))?.[0] ?? char;
      if (shape.integersOnly && !INTEGER.test(literal))
        throw new AmbiguousJson(`the number ${literal.slice(0, 40)} is not an integer literal`);
      i += literal.length - 1;
    }
  }
}

function endOfString(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === '"') return i;
  }
  throw new SyntaxError("unterminated string"); // unreachable after JSON.parse
}

function checkKey(key: string, keys: Map<string, string>, fieldByFold: Map<string, string>): void {
  if (LONE_SURROGATE.test(key)) {
    throw new AmbiguousJson(`the key ${JSON.stringify(key)} holds a lone surrogate`);
  }
  const folded = foldKey(key);
  const earlier = keys.get(folded);
  if (earlier === key) throw new AmbiguousJson(`the key ${JSON.stringify(key)} appears twice`);
  if (earlier !== undefined) {
    throw new AmbiguousJson(
      `the keys ${JSON.stringify(earlier)} and ${JSON.stringify(key)} differ only in case, and Go's JSON reader (OPA's) takes them for one`,
    );
  }
  const field = fieldByFold.get(folded);
  if (field !== undefined && field !== key) {
    throw new AmbiguousJson(
      `the key ${JSON.stringify(key)} is not spelled ${JSON.stringify(field)}, yet Go's JSON reader (OPA's) reads it as that field`,
    );
  }
  keys.set(folded, key);
}
