import { describe, expect, it } from "vitest";
import { interpretResult, MAX_MESSAGE_BYTES, PolicyResultError } from "../../src/enforcer/decision.ts";

describe("Kong's decision rules", () => {
  it("maps booleans", () => {
    expect(interpretResult(true, true)).toEqual({
      allow: true,
      status: 200,
      headers: {},
      message: undefined,
    });
    expect(interpretResult(false, true)).toEqual({
      allow: false,
      status: 403,
      headers: {},
      message: "unauthorized",
    });
  });

  it("maps objects with defaults", () => {
    expect(interpretResult({ allow: true, headers: { "X-User": "alice", "x-n": 7 } }, true)).toMatchObject({
      allow: true,
      headers: { "x-user": "alice", "x-n": "7" },
    });
    expect(interpretResult({ allow: false }, true)).toMatchObject({ status: 403, message: "unauthorized" });
    expect(interpretResult({ allow: false, status: 451, message: { why: "law" } }, true)).toMatchObject({
      status: 451,
      message: { why: "law" },
    });
  });

  const refused: [string, unknown, RegExp][] = [
    ["undefined decision", undefined, /undefined/],
    ["a string", "yes", /not a boolean or an object/],
    ["a number", 1, /not a boolean or an object/],
    ["an array", [true], /not a boolean or an object/],
    ["null", null, /not a boolean or an object/],
    ["a non-boolean allow", { allow: "true" }, /allow must be a boolean/],
    ["a missing allow", { headers: {} }, /allow must be a boolean/],
    ["CR/LF in a header value", { allow: true, headers: { "x-a": "b\r\nx: y" } }, /control characters/],
    ["NUL in a header value", { allow: true, headers: { "x-a": "b\u0000" } }, /control characters/],
    ["a space in a header name", { allow: true, headers: { "x a": "b" } }, /invalid header name/],
    ["a colon in a header name", { allow: false, headers: { "x:a": "b" } }, /invalid header name/],
    ["an object header value", { allow: true, headers: { "x-a": { b: 1 } } }, /must be a string/],
    ["headers that are an array", { allow: true, headers: ["x"] }, /headers must be an object/],
    ["connection", { allow: true, headers: { Connection: "close" } }, /connection may not be set/],
    [
      "transfer-encoding",
      { allow: false, headers: { "transfer-encoding": "chunked" } },
      /transfer-encoding may not/,
    ],
    ["content-length", { allow: false, headers: { "content-length": "0" } }, /content-length may not/],
    ["host", { allow: true, headers: { host: "evil" } }, /host may not/],
    ["status 99", { allow: false, status: 99 }, /status must be an integer from 100 to 599/],
    ["status 600", { allow: false, status: 600 }, /status must be/],
    ["a fractional status", { allow: false, status: 403.5 }, /status must be/],
    ["a string status", { allow: false, status: "403" }, /status must be/],
    [
      "a huge message",
      { allow: false, message: "x".repeat(MAX_MESSAGE_BYTES + 1) },
      /over the 8192-byte limit/,
    ],
  ];
  for (const [name, result, message] of refused) {
    it(`refuses ${name}`, () => {
      expect(() => interpretResult(result, result !== undefined)).toThrow(PolicyResultError);
      expect(() => interpretResult(result, result !== undefined)).toThrow(message);
    });
  }
});
