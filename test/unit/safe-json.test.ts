import { afterEach, describe, expect, it } from "vitest";
import { readBundle } from "../../src/bundle/read.ts";
import { dataOf } from "../../src/diff/compare.ts";
import { allowListed, childEnvironment } from "../../src/opa/environment.ts";
import { assignOwn, nullObject, objectAt, parseJson, withNullPrototypes } from "../../src/safe-json.ts";
import { tarball } from "../helpers/tarball.ts";

const PROTOTYPE_KEYS = Object.getOwnPropertyNames(Object.prototype).sort();

afterEach(() => {
  // A failing test must not poison the ones after it.
  for (const key of Object.getOwnPropertyNames(Object.prototype))
    if (!PROTOTYPE_KEYS.includes(key)) delete (Object.prototype as Record<string, unknown>)[key];
});

function expectCleanPrototype() {
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTOTYPE_KEYS);
  const probe: Record<string, unknown> = {};
  expect(probe.GIT_EXTERNAL_DIFF).toBeUndefined();
}

/** The key, not the accessor: reading it on a null-prototype object gives the data. */
const PROTO = "__proto__";
const HOSTILE =
  '{"__proto__": {"polluted": "yes"}, "constructor": {"prototype": {"polluted": "yes"}}, "a": [{"__proto__": {"x": 1}}]}';

describe("safe JSON", () => {
  it("parses every object, at every depth, with a null prototype and keeps the three names as data", () => {
    const value = parseJson(HOSTILE) as Record<string, Record<string, unknown>>;
    expectCleanPrototype();
    expect(Object.getPrototypeOf(value)).toBeNull();
    expect(Object.keys(value)).toEqual(["__proto__", "constructor", "a"]);
    expect(Object.getPrototypeOf(value[PROTO])).toBeNull();
    expect(value[PROTO]).toEqual({ polluted: "yes" });
    expect(Object.getPrototypeOf(value.constructor?.prototype)).toBeNull();
    const inArray = (value.a as unknown as Record<string, unknown>[])[0] as Record<string, unknown>;
    expect(Object.getPrototypeOf(inArray)).toBeNull();
    expect(Object.hasOwn(inArray, "__proto__")).toBe(true);
    // Nothing can be read that the document does not hold.
    expect((parseJson("{}") as Record<string, unknown>).toString).toBeUndefined();
    expect(JSON.parse(JSON.stringify(value))).toEqual(JSON.parse(HOSTILE));
  });

  it("reads nesting as deep as JSON.parse does, every level without a prototype", () => {
    const depth = 100_000;
    let node = parseJson(`${'[{"a":'.repeat(depth)}{}${"}]".repeat(depth)}`);
    for (let level = 0; level < depth; level++) {
      const object = (node as unknown[])[0] as Record<string, unknown>;
      if (Object.getPrototypeOf(object) !== null) throw new Error(`level ${level} has a prototype`);
      node = object.a;
    }
    expect(Object.getPrototypeOf(node)).toBeNull();
  });

  it("copies parsed YAML-like values into null-prototype objects, and merges by own keys only", () => {
    const copied = withNullPrototypes(JSON.parse(HOSTILE)) as Record<string, unknown>;
    expect(Object.getPrototypeOf(copied)).toBeNull();
    expect(Object.getPrototypeOf(copied[PROTO])).toBeNull();
    const root = nullObject();
    assignOwn(objectAt(root, ["__proto__", "constructor", "prototype"]), { polluted: "yes" });
    assignOwn(root, JSON.parse('{"__proto__": {"polluted": "yes"}}'));
    const ordinary = assignOwn({}, JSON.parse('{"__proto__": {"polluted": "yes"}}'));
    expect(Object.getPrototypeOf(ordinary)).toBe(Object.prototype);
    expect(Object.hasOwn(ordinary, "__proto__")).toBe(true);
    expectCleanPrototype();
  });

  it("diff's data tree takes __proto__/data.json and constructor/prototype/data.json as keys of the tree", async () => {
    const contents = await readBundle(
      tarball([
        { name: ".manifest", body: '{"revision": "hostile", "__proto__": {"revision": "planted"}}' },
        { name: "__proto__/data.json", body: '{"GIT_EXTERNAL_DIFF": "/tmp/evil.sh"}' },
        { name: "constructor/prototype/data.json", body: '{"polluted": "yes"}' },
        { name: "nested/data.json", body: '{"__proto__": {"shell": "/bin/sh"}}' },
        { name: "list/data.json", body: "[1, 2]" },
      ]),
      "all",
    );
    const data = dataOf(contents);
    expectCleanPrototype();
    expect(contents.manifest.revision).toBe("hostile");
    expect(Object.getPrototypeOf(contents.manifest)).toBeNull();
    // (A literal `__proto__:` would set the expectation's prototype, hence the JSON text.)
    expect(JSON.parse(JSON.stringify(data))).toEqual(
      JSON.parse(`{
        "__proto__": {"GIT_EXTERNAL_DIFF": "/tmp/evil.sh"},
        "constructor": {"prototype": {"polluted": "yes"}},
        "list": [1, 2],
        "nested": {"__proto__": {"shell": "/bin/sh"}}
      }`),
    );
  });

  it("builds child environments from own string values only, without a prototype", () => {
    (Object.prototype as Record<string, unknown>).GIT_EXTERNAL_DIFF = "/tmp/evil.sh";
    const parent: NodeJS.ProcessEnv = { PATH: "/usr/bin", SECRET: "s" };
    const picked = allowListed(parent, ["PATH", "GIT_EXTERNAL_DIFF"]);
    const copied = childEnvironment(parent);
    delete (Object.prototype as Record<string, unknown>).GIT_EXTERNAL_DIFF;
    for (const env of [picked, copied]) expect(Object.getPrototypeOf(env)).toBeNull();
    const inherited = (env: NodeJS.ProcessEnv) => {
      const names: string[] = [];
      for (const name in env) names.push(name);
      return names;
    };
    expect(inherited(picked)).toEqual(["PATH"]);
    expect(inherited(copied)).toEqual(["PATH", "SECRET"]);
  });
});
