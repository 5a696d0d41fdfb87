import { describe, expect, it } from "vitest";
import { InputMask, MASKED, redact } from "../../src/impact/mask.ts";

describe("the impact mask", () => {
  it("erases the credential headers whatever their case, and leaves the recorded input as it was", () => {
    const input = JSON.parse(
      '{"request":{"http":{"path":"/a","headers":{"Authorization":"Bearer tok-1234567890","COOKIE":"sid=abcdefgh12","accept":"*/*"}}}}',
    );
    const before = JSON.stringify(input);
    const masked = new InputMask().apply(input);
    expect(JSON.parse(JSON.stringify(masked.input))).toEqual({
      request: { http: { path: "/a", headers: { accept: "*/*" } } },
    });
    expect(JSON.stringify(input)).toBe(before);
    expect(masked.secrets).toEqual(
      expect.arrayContaining(["Bearer tok-1234567890", "tok-1234567890", "sid=abcdefgh12", "abcdefgh12"]),
    );
  });

  it("erases an x-api-key header with no --mask, as the enforcer does", () => {
    const input = {
      request: { http: { path: "/o/bob-key-1234", headers: { "x-api-key": "bob-key-1234" } } },
    };
    const masked = new InputMask().apply(input);
    expect(JSON.stringify(masked.input)).not.toContain("bob-key-1234");
  });

  it("masks the erased values wherever else they appear, in strings and keys", () => {
    const input = {
      request: { http: { path: "/t/key-0123456789", headers: { "x-api-key": "key-0123456789" } } },
    };
    const masked = new InputMask(["/input/request/http/headers/x-api-key"]).apply(input);
    expect((masked.input as typeof input).request.http.path).toBe(`/t/${MASKED}`);
    expect(redact({ "key-0123456789": ["a key-0123456789 b"] }, masked.secrets)).toEqual({
      [MASKED]: [`a ${MASKED} b`],
    });
  });

  it("copies a recorded __proto__ key as data, never onto a prototype", () => {
    const input = JSON.parse(
      '{"__proto__":{"polluted":true},"request":{"http":{"headers":{"cookie":"c=12345678"}}}}',
    );
    const masked = new InputMask().apply(input);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.hasOwn(masked.input as object, "__proto__")).toBe(true);
    expect(redact(masked.input, ["12345678"])).not.toHaveProperty("polluted");
  });
});
