/**
 * Reading JSON (and JSON-shaped values) that came from outside: bundles, store metadata, OPA and registry
 * answers, docker's config, policyship.yaml.
 *
 * Every object comes out with a null prototype; `__proto__`, `constructor` and `prototype` are not refused.
 * Why this rather than refusing the three keys: OPA treats them as ordinary keys and path segments (a
 * bundle may hold `constructor/data.json`, `data.prototype` is a valid Rego reference), so refusing them
 * would make diff, verify and the embedded engine disagree with what OPA deploys (see DESIGN.md, one
 * revision, one meaning). In a null-prototype object they are plain own properties: `value.__proto__ = x`
 * defines a key instead of swapping a prototype, and a read such as `body.token` can only find what the
 * document holds, never something inherited from a polluted `Object.prototype`.
 *
 * The rule that goes with it: never copy outside objects into ordinary ones with `Object.assign` or `=` on
 * an outside key; use `assignOwn` / `nullObject` below. Spreads (`{ ...value }`) define properties and are
 * safe, but they return an ordinary object again.
 */

export type JsonObject = Record<string, unknown>;

/** An empty object without a prototype: any key may be set on it, none is inherited. */
export function nullObject<T = unknown>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

function isPlainObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * JSON.parse whose every object has a null prototype. Throws JSON.parse's SyntaxError on bad JSON.
 * JSON.parse defines every key (even `__proto__`) as an own data property, so dropping each object's
 * prototype afterwards loses nothing. A walk with its own stack rather than a reviver: a reviver is ~5×
 * slower than JSON.parse on a large data.json and overflows the call stack on deep nesting that JSON.parse
 * itself reads; this walk is ~2× and has no depth limit.
 */
export function parseJson(text: string): unknown {
  const root: unknown = JSON.parse(text);
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value !== "object" || value === null) continue;
    if (Array.isArray(value)) {
      for (const item of value) if (typeof item === "object" && item !== null) pending.push(item);
      continue;
    }
    Object.setPrototypeOf(value, null);
    for (const key in value) {
      const inner = (value as JsonObject)[key];
      if (typeof inner === "object" && inner !== null) pending.push(inner);
    }
  }
  return root;
}

/** `parseJson` that answers undefined instead of throwing on text that is not JSON. */
export function tryParseJson(text: string): unknown {
  try {
    return parseJson(text);
  } catch {
    return undefined;
  }
}

/**
 * A deep copy of an already parsed value (YAML, an SDK's answer) with null-prototype objects; arrays stay
 * arrays, everything that is not an object or array is kept as it is. Depth is bounded by the caller's
 * parser (yaml and JSON.parse both are).
 */
export function withNullPrototypes(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withNullPrototypes);
  if (!isPlainObject(value)) return value;
  const copy = nullObject();
  for (const key of Object.keys(value)) copy[key] = withNullPrototypes(value[key]);
  return copy;
}

/** Copies `source`'s own enumerable keys onto `target` as own data properties, whatever their names. */
export function assignOwn(target: JsonObject, source: JsonObject): JsonObject {
  for (const key of Object.keys(source)) {
    Object.defineProperty(target, key, {
      value: source[key],
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return target;
}

/**
 * The object at `segments` under `root`, created as null-prototype objects where missing. Only own keys are
 * followed, so `__proto__` or `constructor` as a segment is a key of the tree, never Object.prototype.
 * Where a segment already holds something that is not an object, that value is replaced, as the later
 * document wins.
 */
export function objectAt(root: JsonObject, segments: readonly string[]): JsonObject {
  let node = root;
  for (const segment of segments) {
    const next = Object.hasOwn(node, segment) ? node[segment] : undefined;
    if (isPlainObject(next)) {
      node = next;
    } else {
      const created = nullObject();
      Object.defineProperty(node, segment, {
        value: created,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      node = created;
    }
  }
  return node;
}
