/**
 * What could spell a key that reaches an object's prototype: the names themselves, or a \u escape of a
 * letter or an underscore (JSON.parse decodes "\u005f_proto__" to __proto__). Go's HTML escapes (\u003c,
 * \u0026, \u2028) do not match.
 */
const PROTOTYPE_KEY = /__proto__|constructor|prototype|\\u00[4-7]/;

/**
 * JSON text from a decision log parsed so that nothing in it can reach Object.prototype, however the value
 * is later copied, merged or walked: text that could hold `__proto__`, `constructor` or `prototype` is
 * parsed into objects without a prototype (where those are plain keys); other text cannot name them, and
 * takes JSON.parse's fast path (a reviver costs several times the parse on every line of a large log).
 */
export function parseNullPrototypeJson(text: string): unknown {
  const parsed = PROTOTYPE_KEY.test(text) ? JSON.parse(text, nullPrototypes) : JSON.parse(text);
  return mayHoldInexactNumber(text) ? withExactInputs(parsed, text) : parsed;
}

function nullPrototypes(_key: string, value: unknown): unknown {
  if (typeof value === "object" && value !== null && !Array.isArray(value))
    Object.setPrototypeOf(value, null);
  return value;
}

/** JSON.rawJSON and JSON.isRawJSON (Node 21+), which TypeScript's lib does not declare yet. */
const RawJson = JSON as unknown as {
  rawJSON(text: string): unknown;
  isRawJSON(value: unknown): boolean;
};

/** Whether `value` is a number kept as its logged text (JSON.stringify writes that text back verbatim). */
export function isExactNumber(value: unknown): boolean {
  return RawJson.isRawJSON(value);
}

/**
 * A number token where a JSON value can stand (after `:`, `,` or `[`, before `,`, `]` or `}`). Text inside a
 * string rarely looks like one (a timestamp's `:01.5Z` does not); when it does, the exact parse below only
 * costs time.
 */
const NUMBER_TOKEN = /[:,[]\s*(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)\s*(?=[,\]}])/g;

/** Whether the text holds a number JavaScript would not write back as logged (2^53 and past, 1.0, -0, 1e400). */
function mayHoldInexactNumber(text: string): boolean {
  NUMBER_TOKEN.lastIndex = 0;
  for (let match = NUMBER_TOKEN.exec(text); match; match = NUMBER_TOKEN.exec(text)) {
    const token = match[1] as string;
    if (JSON.stringify(Number(token)) !== token) return true;
  }
  return false;
}

/**
 * OPA decides on the number it was sent, as written (Go's json.Number): 9007199254740993 is not
 * 9007199254740992, 1.0 and -0 marshal as they are, 1e400 is not null. JavaScript's number would replay
 * another input, which can hide a flip or invent one. So each event's `input` is parsed again with every
 * such number kept as its logged text, and the replay sends that text back to opa verbatim. The rest of the
 * event (its recorded result, compared with opa's parsed answer) stays as JSON.parse reads it.
 */
function withExactInputs(parsed: unknown, text: string): unknown {
  const exact = JSON.parse(text, (key, value: unknown, context?: { source?: string }) => {
    const source = context?.source;
    if (typeof value === "number" && source !== undefined && JSON.stringify(value) !== source) {
      return RawJson.rawJSON(source);
    }
    return nullPrototypes(key, value);
  }) as unknown;
  const graft = (into: unknown, from: unknown) => {
    if (typeof into === "object" && into !== null && typeof from === "object" && from !== null) {
      if (Object.hasOwn(from, "input"))
        (into as { input?: unknown }).input = (from as { input?: unknown }).input;
    }
  };
  if (Array.isArray(parsed) && Array.isArray(exact)) {
    for (const [i, event] of parsed.entries()) graft(event, exact[i]);
  } else graft(parsed, exact);
  return parsed;
}
