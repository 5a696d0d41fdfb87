import { describe, expect, it } from "vitest";
import { createEnforcer, type EnforcerOptions } from "../../src/enforcer/index.ts";

const remote = { opa: { url: "http://127.0.0.1:8181", path: "authz/allow" } };

describe("createEnforcer refuses options that would surprise", () => {
  const cases: [string, Partial<EnforcerOptions> & Record<string, unknown>, RegExp][] = [
    [
      "a timeout over setTimeout's ceiling",
      { timeoutMs: 2 ** 31 },
      /timeoutMs must be .* at most 2147483647/,
    ],
    ["a zero timeout", { timeoutMs: 0 }, /timeoutMs/],
    ["an infinite timeout", { timeoutMs: Number.POSITIVE_INFINITY }, /timeoutMs/],
    ["a string timeout", { timeoutMs: "500" as unknown as number }, /timeoutMs/],
    ["a fractional in-flight limit", { maxInFlight: 1.5 }, /maxInFlight must be a whole number/],
    ["a body limit over Buffer's ceiling", { maxBodyBytes: 2 ** 33 }, /maxBodyBytes/],
    ["a negative body limit", { maxBodyBytes: -1 }, /maxBodyBytes/],
    ["a refresh interval over the ceiling", { revisionRefreshMs: 2 ** 40 }, /revisionRefreshMs/],
    ["failOpen as a string", { failOpen: "false" as unknown as boolean }, /failOpen must be a boolean/],
    [
      "include as a string",
      { include: { body: "yes" as unknown as boolean } },
      /include.body must be a boolean/,
    ],
    ["workers on the remote engine", { workers: 2 }, /embedded engine/],
    ["zero connections", { opa: { ...remote.opa, connections: 0 } }, /opa.connections/],
  ];
  for (const [name, options, message] of cases) {
    it(`rejects ${name} with a TypeError naming the option`, () => {
      expect(() => createEnforcer({ ...remote, ...options })).toThrow(TypeError);
      expect(() => createEnforcer({ ...remote, ...options })).toThrow(message);
    });
  }

  it("rejects embedded worker counts out of range", () => {
    expect(() => createEnforcer({ bundle: "b.tar.gz", entrypoint: "authz/allow", workers: 0 })).toThrow(
      /workers/,
    );
    expect(() => createEnforcer({ bundle: "b.tar.gz", entrypoint: "authz/allow", workers: 1000 })).toThrow(
      /workers/,
    );
    expect(() => createEnforcer({ bundle: "b.tar.gz", entrypoint: "../x" })).toThrow(/entrypoint/);
  });
});
