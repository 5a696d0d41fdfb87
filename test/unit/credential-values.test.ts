import { describe, expect, it } from "vitest";
import { MASKED, redact, secretsOf } from "../../src/enforcer/credential-values.ts";

describe("credential values", () => {
  it("masks a token copied percent-encoded into the path or query, with either case of hex", () => {
    const secrets = secretsOf(["Bearer tok+/=888"]);
    const shown = redact(
      { path: "/u/tok%2B%2F%3D888", query: "t=tok%2b%2f%3d888&x=1", raw: "tok+/=888" },
      secrets,
    );
    expect(shown).toEqual({ path: `/u/${MASKED}`, query: `t=${MASKED}&x=1`, raw: MASKED });
  });

  it("adds an encoded form only where encoding changes a secret", () => {
    const secrets = secretsOf(["Bearer abcdefgh12345678"]);
    // The token encodes to itself; the whole header value holds a space.
    expect(secrets.filter((secret) => secret.includes("%"))).toEqual(["Bearer%20abcdefgh12345678"]);
  });
});
