import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { replay } from "../../src/impact/evaluate.ts";
import { projectInput, readsOfBundle } from "../../src/impact/projection.ts";
import { type OfflineCapabilities, offlineCapabilities } from "../../src/opa/capabilities.ts";
import { toolPath } from "../helpers/tools.ts";

const opa = { path: toolPath("opa"), env: { PATH: process.env.PATH ?? "" } };
let dir: string;
let capabilities: OfflineCapabilities;
let built = 0;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "policyship-projection-"));
  capabilities = await offlineCapabilities(opa);
});
afterAll(async () => capabilities?.dispose());

/** A bundle of the given modules, built by the real opa. */
async function bundleOf(...modules: string[]): Promise<string> {
  const root = path.join(dir, `b${built++}`);
  await mkdir(root);
  for (const [i, source] of modules.entries()) await writeFile(path.join(root, `m${i}.rego`), source);
  const out = `${root}.tar.gz`;
  execFileSync(opa.path, ["build", "--bundle", root, "-o", out], { env: opa.env, stdio: "pipe" });
  return out;
}

const reads = async (...modules: string[]) =>
  JSON.parse(JSON.stringify(await readsOfBundle(opa, await bundleOf(...modules))));

describe("what policies can read of input, from opa's AST", () => {
  it("keeps only the static paths a policy names", async () => {
    expect(
      await reads(`package t
allow if { input.request.http.method == "GET"; input.request.http.headers["x-api-key"] == "k" }`),
    ).toEqual({ request: { http: { method: true, headers: { "x-api-key": true } } } });
  });

  it("keeps the whole subtree under a dynamic key, a number index, or a ref passed to a function", async () => {
    expect(
      await reads(`package t
allow if { some k; input.request.http.headers[k] == "x" }
deny if { input.list[0] == 1 }
f(x) := count(x)
n := f(input.passed)`),
    ).toEqual({ request: { http: { headers: true } }, list: true, passed: true });
  });

  it("keeps everything for input alone, input[x], walk(input), object.get(input, ...) and a function taking input", async () => {
    for (const body of [
      "x := input",
      "x if { some k; input[k] }",
      "x if { walk(input, [p, v]); v == 1 }",
      'x := object.get(input, ["a", "b"], 0)',
      "f(i) := i.a\nx := f(input)",
    ]) {
      expect(await reads(`package t\n${body}`), body).toBe(true);
    }
  });

  it("follows with, every, some ... in, comprehensions and imports", async () => {
    expect(
      await reads(
        `package t
import input.request.http as h
inner if input.b == 1
allow if { inner with input.a as 1 }
every_ok if { every x in input.hs { x > 1 } }
some_ok if { some y in input.ys; y == 2 }
comp := [z | z := input.zs[_].name]
setc := {k | input.obj[k]}
p := h.path`,
        `package u
q := data.t.allow`,
      ),
    ).toEqual({
      b: true,
      hs: true,
      ys: true,
      zs: true,
      obj: true,
      request: { http: true },
    });
  });

  it("reads nothing for a with target: it replaces input, and what is read under it is named on its own", async () => {
    expect(
      await reads(`package t
test_x if { data.t.allow with input as {"a": 1} }
allow if input.b.c
y if { allow with input.d as input.e }`),
    ).toEqual({ b: { c: true }, e: true });
  });

  it("keeps the whole input for a bundle without Rego source or one opa cannot parse", async () => {
    expect(await readsOfBundle(opa, path.join(dir, "missing.tar.gz"))).toBe(true);
  });
});

describe("projecting an input", () => {
  it("keeps the read paths, in the tree's order, and values that are not objects whole", () => {
    const tree = JSON.parse('{"a":{"x":{}},"b":true,"c":{"d":{}}}');
    expect(JSON.stringify(projectInput({ z: 1, b: [1, { q: 2 }], a: { y: 2, x: 3 }, c: "s" }, tree))).toBe(
      '{"a":{"x":3},"b":[1,{"q":2}],"c":"s"}',
    );
    expect(projectInput("scalar", tree)).toBe("scalar");
    expect(projectInput({ a: 1 }, true)).toEqual({ a: 1 });
  });
});

// ------------------------------------------------------------------ differential: projection changes nothing

/** A small deterministic PRNG (mulberry32), so a failure can be replayed from its seed. */
function random(seed: number) {
  let a = seed;
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KEYS = ["a", "b", "c"];

function randomPolicy(next: () => number): string {
  const pick = <T>(items: T[]) => items[Math.floor(next() * items.length)] as T;
  const ref = () => {
    const depth = 1 + Math.floor(next() * 3);
    return `input${Array.from({ length: depth }, () => `.${pick(KEYS)}`).join("")}`;
  };
  const expressions = [
    () => `${ref()} == ${pick(["1", '"s"', "true", "null"])}`,
    () => `some k; ${ref()}[k] == 1`,
    () => `count(${ref()}) > ${Math.floor(next() * 3)}`,
    () => `every v in ${ref()} { v != 2 }`,
    () => `some v in ${ref()}; v == 1`,
    () => `[x | x := ${ref()}[_]; x == 1] != []`,
    () => `is_object(${ref()})`,
    () => `f(${ref()})`,
    () => `inner with ${ref()} as 1`,
    () => `not ${ref()}`,
    () => `json.marshal(${ref()}) != ""`,
    () => `object.get(${ref()}, "${pick(KEYS)}", 0) == 1`,
    () => `input[${JSON.stringify(pick(KEYS))}]`,
    () => `some k; input[k] == ${pick(["1", '"s"'])}`,
    () => `count(input) == ${Math.floor(next() * 4)}`,
    () => `f(input)`,
  ];
  const rules = Array.from({ length: 1 + Math.floor(next() * 3) }, (_, i) => {
    const body = Array.from({ length: 1 + Math.floor(next() * 2) }, () => pick(expressions)());
    return `out contains ${i} if {\n  ${body.join("\n  ")}\n}`;
  });
  return `package d
f(x) if x.${pick(KEYS)} == 1
inner if ${ref()} == 1
${rules.join("\n")}
seen := {"out": out, "n": count(out)}`;
}

function randomValue(next: () => number, depth: number): unknown {
  const roll = next();
  if (depth > 2 || roll < 0.35) return [1, 2, "s", true, null][Math.floor(next() * 5)];
  if (roll < 0.5) return Array.from({ length: Math.floor(next() * 3) }, () => randomValue(next, depth + 1));
  const object: Record<string, unknown> = {};
  for (const key of KEYS) if (next() < 0.6) object[key] = randomValue(next, depth + 1);
  return object;
}

describe("projection never changes a result", () => {
  it("gives the unprojected replay's result for random policies and inputs", {
    timeout: 120_000,
  }, async () => {
    let projectedAway = 0;
    let policies = 0;
    for (let seed = 1; policies < 25; seed++) {
      const next = random(seed);
      const policy = randomPolicy(next);
      // Some generated policies do not compile (a with target opa refuses): those are not policies.
      const bundle = await bundleOf(policy).catch(() => undefined);
      if (!bundle) continue;
      policies++;
      const tree = await readsOfBundle(opa, bundle);
      const inputs = Array.from({ length: 60 }, () => randomValue(next, 0));
      const projected = inputs.map((input) => projectInput(input, tree));
      projectedAway += projected.filter((p, i) => JSON.stringify(p) !== JSON.stringify(inputs[i])).length;
      const options = { capabilities: capabilities.file };
      const [full, cut] = await Promise.all([
        replay(opa, bundle, "d/seen", inputs, options),
        replay(opa, bundle, "d/seen", projected, options),
      ]);
      expect(cut, `seed ${seed}\n${policy}`).toEqual(full);
    }
    // The test means something only if the projections dropped parts of the inputs.
    expect(projectedAway).toBeGreaterThan(100);
  });
});
