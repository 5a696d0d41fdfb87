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
  if (!PROTOTYPE_KEY.test(text)) return JSON.parse(text);
  return JSON.parse(text, (_key, value: unknown) => {
    if (typeof value === "object" && value !== null && !Array.isArray(value))
      Object.setPrototypeOf(value, null);
    return value;
  });
}
