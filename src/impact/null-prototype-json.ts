/**
 * JSON text from a decision log parsed into objects without a prototype, so that keys such as `__proto__`,
 * `constructor` or `prototype` are plain keys: nothing read from a log can reach Object.prototype, however
 * the parsed value is later copied, merged or walked.
 */
export function parseNullPrototypeJson(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown) => {
    if (typeof value === "object" && value !== null && !Array.isArray(value))
      Object.setPrototypeOf(value, null);
    return value;
  });
}
