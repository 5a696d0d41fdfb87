import { describe, expect, it } from "vitest";
import { createEnforcer, type EnforcerOptions } from "../../src/enforcer/index.ts";

const remote = { opa: { url: "http://127.0.0.1:8181", path: "authz/allow" } };
const candidate = { opa: { url: "http://127.0.0.1:8182", path: "authz/allow" } };

describe("createEnforcer refuses shadow options that would surprise", () => {
  const cases: [string, unknown, RegExp][] = [
    ["a shadow that is not an object", "http://127.0.0.1:8182", /shadow must be \{opa/],
    ["a shadow with no engine", { sampleRate: 1 }, /shadow needs exactly one engine/],
    [
      "a shadow with both engines",
      { ...candidate, bundle: "b.tar.gz", entrypoint: "authz/allow" },
      /shadow needs exactly one engine/,
    ],
    ["an unknown shadow option", { ...candidate, sampleRatio: 0.1 }, /shadow.sampleRatio is not an option/],
    ["a candidate URL that is not http(s)", { opa: { url: "file:///etc", path: "a/b" } }, /shadow.opa.url/],
    ["a candidate rule path with a dot", { opa: { url: candidate.opa.url, path: "a.b" } }, /shadow.opa.path/],
    ["an embedded candidate without an entrypoint", { bundle: "b.tar.gz" }, /shadow.entrypoint/],
    ["an embedded candidate with an empty bundle", { bundle: "", entrypoint: "a/b" }, /shadow.bundle/],
    [
      "a sample rate above 1",
      { ...candidate, sampleRate: 1.5 },
      /shadow.sampleRate must be a number from 0 to 1/,
    ],
    ["a sample rate that is NaN", { ...candidate, sampleRate: Number.NaN }, /shadow.sampleRate/],
    ["a zero queue", { ...candidate, maxQueue: 0 }, /shadow.maxQueue/],
    [
      "a fractional concurrency",
      { ...candidate, concurrency: 1.5 },
      /shadow.concurrency must be a whole number/,
    ],
    ["a timeout over setTimeout's ceiling", { ...candidate, timeoutMs: 2 ** 31 }, /shadow.timeoutMs/],
    ["workers on a remote candidate", { ...candidate, workers: 2 }, /shadow.inThread and shadow.workers/],
    [
      "inThread as a string",
      { bundle: "b.tar.gz", entrypoint: "a/b", inThread: "yes" },
      /shadow.inThread must be a boolean/,
    ],
    [
      "an embedded candidate in the event loop's own thread",
      { bundle: "b.tar.gz", entrypoint: "a/b", inThread: true },
      /shadow\.inThread: true would evaluate the candidate on the event loop/,
    ],
    ["a zero byte bound on the queue", { ...candidate, maxQueueBytes: 0 }, /shadow.maxQueueBytes/],
    [
      "a fractional byte bound on the queue",
      { ...candidate, maxQueueBytes: 10.5 },
      /shadow.maxQueueBytes must be a whole number/,
    ],
  ];
  for (const [name, shadow, message] of cases) {
    it(`rejects ${name} with a TypeError naming the option`, () => {
      const options = { ...remote, shadow } as EnforcerOptions;
      expect(() => createEnforcer(options)).toThrow(TypeError);
      expect(() => createEnforcer(options)).toThrow(message);
    });
  }

  it("rejects onShadow without a shadow, and an onShadow that is not a function", () => {
    expect(() => createEnforcer({ ...remote, onShadow: () => {} })).toThrow(/onShadow needs a shadow/);
    expect(() =>
      createEnforcer({ ...remote, shadow: candidate, onShadow: "log" as unknown as () => void }),
    ).toThrow(/onShadow must be a function/);
  });

  it("accepts a remote or an embedded candidate, and has no shadowStats without one", async () => {
    const plain = createEnforcer({ ...remote, log: () => {} });
    expect(plain.shadowStats()).toBeUndefined();
    await plain.close();
    for (const shadow of [candidate, { bundle: "b.tar.gz", entrypoint: "authz/allow", sampleRate: 0 }]) {
      const enforcer = createEnforcer({ ...remote, shadow, log: () => {} });
      expect(enforcer.shadowStats()).toEqual({ evaluated: 0, differed: 0, dropped: 0, errors: 0 });
      await enforcer.close();
    }
  });
});
